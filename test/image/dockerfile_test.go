// Package image checks the Dockerfile without a container runtime: its Go build steps, run in a folder
// holding only what its COPY instructions bring in, build the manager and the example game server.
package image

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/playersessions/operator/internal/testenv"
)

// TestDockerfileBuilds runs the COPY and RUN instructions of the Dockerfile's Go stages (FROM golang, or
// FROM an earlier Go stage) in order, in an empty folder: a source the build needs and the Dockerfile does
// not copy (the GameLift Server SDK that go.mod replaces, a package of the game server) fails it, as it
// would fail `docker build`. A `go build ... -o NAME PACKAGE` runs as `go list -deps PACKAGE`, which
// resolves every package and module of the build from that folder without compiling again what the other
// tests compile (with -trimpath, a cold build of both binaries takes two minutes here). Stages FROM
// distroless only copy the binaries out.
func TestDockerfileBuilds(t *testing.T) {
	root := testenv.Path()
	f, err := os.Open(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	work := t.TempDir()
	goStages := map[string]bool{}
	inGo, built := false, []string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		switch fields[0] {
		case "FROM":
			inGo = strings.HasPrefix(fields[1], "golang:") || goStages[fields[1]]
			if len(fields) == 4 && strings.EqualFold(fields[2], "AS") && inGo {
				goStages[fields[3]] = true
			}
		case "COPY":
			if !inGo || strings.HasPrefix(fields[1], "--from") {
				continue
			}
			dst := fields[len(fields)-1]
			for _, src := range fields[1 : len(fields)-1] {
				target := filepath.Join(work, dst)
				if strings.HasSuffix(dst, "/") && !strings.HasSuffix(src, "/") {
					target = filepath.Join(work, dst, filepath.Base(src))
				}
				if out, err := exec.Command("cp", "-r", filepath.Join(root, src), target).CombinedOutput(); err != nil {
					if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
						t.Fatal(err)
					}
					if out, err = exec.Command("cp", "-r", filepath.Join(root, src), target).CombinedOutput(); err != nil {
						t.Fatalf("COPY %s %s: %v\n%s", src, dst, err, out)
					}
				}
			}
		case "RUN":
			if !inGo {
				continue
			}
			run := strings.TrimSpace(strings.TrimPrefix(s.Text(), "RUN"))
			if i := strings.Index(run, " -o "); i >= 0 && strings.Contains(run, "go build") {
				out := strings.Fields(run[i+4:])
				built = append(built, out[0])
				run = "go list -deps " + out[1] + " > " + out[0]
			}
			cmd := exec.Command("sh", "-c", run)
			cmd.Dir = work
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s (as %s): %v\n%s", s.Text(), run, err, out)
			}
		}
	}
	if len(built) != 2 {
		t.Fatalf("built %v, want the manager and the game server", built)
	}
	for _, b := range built {
		deps, err := os.ReadFile(filepath.Join(work, b))
		if err != nil {
			t.Fatal(err)
		}
		if b == "gameserver" && !strings.Contains(string(deps), "github.com/amazon-gamelift/amazon-gamelift-servers-go-server-sdk/v5/server") {
			t.Errorf("the game server is not built on the GameLift Server SDK:\n%s", deps)
		}
	}
}
