// Package docs keeps the README and docs/ true: it runs the README's tour, command by command, against a
// local control plane with the manager as make run starts it, and checks the other commands the pages
// show against the code (make targets, the manager's flags, what make run prints).
package docs

import (
	"flag"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/playersessions/operator/controllers"
	"github.com/playersessions/operator/internal/localcp"
	"github.com/playersessions/operator/internal/manager"
	"github.com/playersessions/operator/internal/testenv"
)

// step is what the test expects of one command of the tour.
type step struct {
	cmd string
	// want: words the output holds (waited for: the tour's reader waits a moment too).
	want []string
	// fails: the command is refused, with this in its output.
	fails string
	// mayFail: the command may also be refused with this (a race the README describes).
	mayFail string
	// skip says why the command is not run.
	skip string
}

// tour is the README's tour, in its order. TestREADMETour fails when the README's commands and these differ.
var tour = []step{
	{cmd: "kubectl apply -f config/samples/gamesession.yaml", want: []string{"gamesession.game.playersessions.dev/arena-1"}},
	{cmd: "kubectl apply -f config/samples/playersessions.yaml", want: []string{"alice-arena-1", "bob-arena-1"}, mayFail: "GameSessionFull"},
	{cmd: "kubectl get gamesessions", want: []string{"arena-1", "ACTIVE", "fleet-arena"}},
	{cmd: "kubectl get psess -o wide", want: []string{"alice-arena-1", "bob-arena-1", "RESERVED"}},
	{cmd: `kubectl patch psess alice-arena-1 --subresource=status --type=merge -p '{"status":{"status":"ACTIVE"}}'`, want: []string{"patched"}},
	{cmd: "kubectl get psess -w", skip: "a watch: it never ends"},
	{cmd: "kubectl get psess --field-selector spec.playerId=alice", want: []string{"alice-arena-1"}},
	{cmd: "kubectl get playersessions.query.playersessions.dev -A --field-selector playerId=alice", want: []string{"alice-arena-1", "ACTIVE"}},
	{cmd: "kubectl get playersessions.query.playersessions.dev -A --field-selector status=RESERVED,gameSessionName=arena-1 -o wide", want: []string{"bob-arena-1", "RESERVED"}},
	{cmd: "kubectl get playersessions.query.playersessions.dev -A --chunk-size=1", want: []string{"alice-arena-1", "bob-arena-1"}},
	{cmd: "kubectl get playersessions.query.playersessions.dev -A -w --field-selector playerId=bob", skip: "a watch: it never ends"},
	{cmd: `kubectl patch psess alice-arena-1 --subresource=status --type=merge -p '{"status":{"status":"RESERVED"}}'`, fails: "illegal player session status transition"},
	{cmd: `kubectl patch psess alice-arena-1 --subresource=status --type=merge -p '{"status":{"status":"COMPLETED"}}'`, want: []string{"patched"}},
	{cmd: `kubectl patch gsess arena-1 --subresource=status --type=merge -p '{"status":{"status":"TERMINATED"}}'`, want: []string{"patched"}},
	{cmd: "kubectl get psess -o custom-columns=NAME:.metadata.name,STATUS:.status.status,ENDED:.status.gameSessionTerminationTime", want: []string{"alice-arena-1", "bob-arena-1", "COMPLETED"}},
	{cmd: "kubectl get events --sort-by=.lastTimestamp", want: []string{"SeatsGranted", "Terminated"}},
}

// block returns the shell lines of the first ```sh block after the heading of file.
func block(t *testing.T, file, heading string) []string {
	t.Helper()
	b, err := os.ReadFile(testenv.Path(file))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("%s has no heading %q", file, heading)
	}
	_, rest, ok = strings.Cut(rest, "```sh\n")
	if !ok {
		t.Fatalf("%s: no sh block under %q", file, heading)
	}
	body, _, _ := strings.Cut(rest, "```")
	return strings.Split(body, "\n")
}

// trailingComment is a comment after a command: two spaces or more, then #.
var trailingComment = regexp.MustCompile(`\s{2,}#.*$`)

// commands are the command lines of a shell block: no comments, no blank lines.
func commands(lines []string) []string {
	var out []string
	for _, l := range lines {
		l = strings.TrimSpace(trailingComment.ReplaceAllString(l, ""))
		if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

// TestREADMETour runs the README's tour against a local control plane with the webhook, the admission
// policies and the query API, and the manager as make run configures it, the way a reader would: each
// command in turn, waiting a moment for what it should show.
func TestREADMETour(t *testing.T) {
	if _, err := exec.LookPath("kubectl"); err != nil {
		t.Fatal("kubectl is needed on the PATH: the test runs the README's commands")
	}
	cmds := commands(block(t, "README.md", "## A five-minute tour"))
	if len(cmds) == 0 || !strings.HasPrefix(cmds[0], "export KUBECONFIG=") {
		t.Fatalf("the tour should start by exporting KUBECONFIG, got %q", cmds)
	}
	cmds = cmds[1:] // the test's kubeconfig stands in for make run's
	var want []string
	for _, s := range tour {
		want = append(want, s.cmd)
	}
	if !slices.Equal(cmds, want) {
		t.Fatalf("the README's tour and this test differ; update the test's table with the README.\nREADME:\n%s\ntest:\n%s", strings.Join(cmds, "\n"), strings.Join(want, "\n"))
	}

	queryPort := testenv.FreePort(t)
	cp := testenv.ControlPlane(t, localcp.Options{QueryPort: queryPort, WebhookDirectoryPaths: []string{testenv.Path("config", "webhook")}})
	opts := manager.Options{Controllers: controllers.DefaultOptions(), MetricsAddr: "0", ProbeAddr: "0", DisableAgones: true,
		QueryPort: queryPort, QueryBindAddress: net.ParseIP("127.0.0.1"), QueryCertDir: cp.ServingCertDir, QueryKubeconfig: cp.Kubeconfig,
		WebhookHost: cp.WebhookHost, WebhookPort: cp.WebhookPort, WebhookCertDir: cp.WebhookCertDir, WebhookClientCAName: cp.WebhookClientCAName}
	m := testenv.StartManager(t, cp, opts)
	run := func(cmd string) (string, error) {
		c := exec.Command("bash", "-c", cmd)
		c.Dir = testenv.Path()
		c.Env = append(os.Environ(), "KUBECONFIG="+cp.Kubeconfig)
		out, err := c.CombinedOutput()
		return string(out), err
	}
	// make run is up: the webhook answers and the query API is served through the aggregation layer.
	g := NewWithT(t)
	g.Eventually(func() error { return m.GetWebhookServer().StartedChecker()(nil) }).WithTimeout(30 * time.Second).Should(Succeed())
	g.Eventually(func() error {
		_, err := run("kubectl get playersessions.query.playersessions.dev -A")
		return err
	}).WithTimeout(60 * time.Second).Should(Succeed())

	for _, s := range tour {
		if s.skip != "" {
			t.Logf("skipped (%s): %s", s.skip, s.cmd)
			continue
		}
		g.Eventually(func(g Gomega) {
			out, err := run(s.cmd)
			switch {
			case s.fails != "":
				g.Expect(err).To(HaveOccurred(), "%s succeeded:\n%s", s.cmd, out)
				g.Expect(out).To(ContainSubstring(s.fails))
				return
			case err != nil && s.mayFail != "" && strings.Contains(out, s.mayFail):
			default:
				g.Expect(err).NotTo(HaveOccurred(), "%s:\n%s", s.cmd, out)
			}
			for _, w := range s.want {
				g.Expect(out).To(ContainSubstring(w), s.cmd)
			}
		}).WithTimeout(30*time.Second).WithPolling(500*time.Millisecond).Should(Succeed(), s.cmd)
	}
}

// TestREADMECommands checks the README's other commands against the code: the make targets exist, and
// the aws CLI line is the one make run prints for its endpoint.
func TestREADMECommands(t *testing.T) {
	for _, cmd := range commands(block(t, "README.md", "## The two commands")) {
		target, ok := strings.CutPrefix(cmd, "make ")
		if !ok || !hasTarget(t, target) {
			t.Errorf("README, the two commands: %q is not a make target", cmd)
		}
	}
	b, _ := os.ReadFile(testenv.Path("README.md"))
	const line = "aws gamelift describe-player-sessions --endpoint-url http://127.0.0.1:9090 --player-id alice"
	if !strings.Contains(string(b), line) {
		t.Errorf("README does not show %q", line)
	}
	main, _ := os.ReadFile(testenv.Path("cmd", "manager-local", "main.go"))
	run, _ := os.ReadFile(testenv.Path("hack", "run.sh"))
	if !strings.Contains(string(main), "aws gamelift describe-player-sessions --endpoint-url %s --player-id alice") ||
		!strings.Contains(string(run), "GAMELIFT_ADDR:-127.0.0.1:9090") {
		t.Errorf("make run no longer prints %q", line)
	}
}

// makeRef is a make command in a page: `make TARGET` in code.
var makeRef = regexp.MustCompile("(?m)(?:^|`)make ([a-z][a-z-]*)")

// TestDocsMakeTargets: every `make TARGET` in README.md and docs/ is a target of the Makefile.
func TestDocsMakeTargets(t *testing.T) {
	pages, _ := filepath.Glob(testenv.Path("docs", "*.md"))
	for _, page := range append(pages, testenv.Path("README.md")) {
		b, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range makeRef.FindAllStringSubmatch(string(b), -1) {
			if !hasTarget(t, m[1]) {
				t.Errorf("%s: make %s is not a target of the Makefile", filepath.Base(page), m[1])
			}
		}
	}
}

func hasTarget(t *testing.T, target string) bool {
	t.Helper()
	b, err := os.ReadFile(testenv.Path("Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	return regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(strings.Fields(target)[0]) + `:`).Match(b)
}

// flagRef is a flag in docs/reference.md's table.
var flagRef = regexp.MustCompile("`--([a-z][a-z-]*)")

// TestReferenceFlags: docs/reference.md's table and the manager's flags (manager.BindFlags, what both
// binaries take) are the same set.
func TestReferenceFlags(t *testing.T) {
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	manager.BindFlags(fs)
	code := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) { code[f.Name] = true })
	b, err := os.ReadFile(testenv.Path("docs", "reference.md"))
	if err != nil {
		t.Fatal(err)
	}
	table := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "| `--") {
			continue
		}
		first, _, _ := strings.Cut(strings.TrimPrefix(line, "| "), " | ")
		for _, m := range flagRef.FindAllStringSubmatch(first, -1) {
			table[m[1]] = true
		}
	}
	for name := range code {
		if !table[name] {
			t.Errorf("--%s is a flag of the manager but not in docs/reference.md", name)
		}
	}
	for name := range table {
		if !code[name] {
			t.Errorf("docs/reference.md lists --%s, which the manager does not take", name)
		}
	}
}
