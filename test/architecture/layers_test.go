// Package architecture checks the layers of the code (docs/development.md, "Layers") with go list: each
// package imports only packages of lower layers, the endpoint, the webhook and the query server never
// reach the reconcilers, and the production binary carries no test infrastructure.
package architecture

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/playersessions/operator/internal/testenv"
)

const module = "github.com/playersessions/operator/"

// layers are docs/development.md's, by package path under the module. A package of the module that is
// not listed fails the test: place it when you add it.
var layers = map[string]int{
	"api/v1alpha1":                 1,
	"internal/admission":           2,
	"internal/ids":                 2,
	"internal/indexes":             2,
	"internal/agones":              2,
	"internal/history":             2,
	"internal/serversdk":           2,
	"internal/computes":            3,
	"internal/replicas":            2,
	"internal/search":              2,
	"internal/gameservers":         5,
	"internal/localcp":             1,
	"internal/relists":             1,
	"internal/redact":              1,
	"internal/query/openapi":       1,
	"internal/query/v1alpha1":      2,
	"internal/metrics":             3,
	"internal/index":               3,
	"internal/transitions":         4,
	"controllers":                  5,
	"internal/webhook":             5,
	"internal/gamelift":            5,
	"internal/query":               5,
	"internal/manager":             6,
	"cmd/manager":                  7,
	"cmd/manager-local":            7,
	"internal/testenv":             7,
	"internal/agones/agonestest":   3,
	"internal/history/historytest": 1,
	"hack/benchutil":               7,
	"hack/bench":                   8,
	"hack/benchagones":             8,
	"hack/benchgameservers":        8,
	"hack/benchhistory":            8,
	"hack/benchquery":              8,
	"hack/benchretention":          8,
	"hack/benchsearch":             8,
	"hack/dashboard":               8,
	"hack/chart":                   8,
	"hack/image":                   8,
	"test/architecture":            8,
	"test/gameserver/game":         1,
	"test/gameserver/gametest":     2,
	"test/gameserver":              8,
	"test/docs":                    8,
	"test/alerts":                  8,
	"test/dashboard":               8,
	"test/helm":                    8,
	"test/gitops":                  8,
	"test/history":                 8,
	"test/image":                   8,
	"test/replicas":                8,
	"test/soak":                    8,
	"test/security":                8,
}

// goList runs go list in the repository with args and returns its lines.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Dir = testenv.Path()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v", args, err)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

// TestLayers: every import between the module's packages goes to a lower layer (tests excluded: they
// stand above what they test).
func TestLayers(t *testing.T) {
	for _, line := range goList(t, "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "./...") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], module)
		layer, ok := layers[pkg]
		if !ok {
			t.Errorf("%s has no layer: add it to docs/development.md and to this test", pkg)
			continue
		}
		for _, imp := range fields[1:] {
			dep, ours := strings.CutPrefix(imp, module)
			if !ours {
				continue
			}
			if l, ok := layers[dep]; ok && l >= layer {
				t.Errorf("%s (layer %d) imports %s (layer %d): imports go to lower layers only", pkg, layer, dep, l)
			}
		}
	}
}

// TestNoReachUp: what serves requests on every replica (the GameLift endpoint, the webhook, the query
// server and its index) does not depend on the reconcilers, and the production binary links neither the
// local control plane nor envtest nor any test helper.
func TestNoReachUp(t *testing.T) {
	for _, pkg := range []string{"./internal/gamelift", "./internal/webhook", "./internal/query", "./internal/index", "./internal/serversdk"} {
		for _, dep := range goList(t, "-deps", pkg) {
			if dep == module+"controllers" {
				t.Errorf("%s depends on the reconcilers (controllers)", pkg)
			}
		}
	}
	for _, dep := range goList(t, "-deps", "./cmd/manager") {
		for _, banned := range []string{"sigs.k8s.io/controller-runtime/pkg/envtest", module + "internal/localcp", module + "internal/testenv",
			module + "internal/agones/agonestest", module + "internal/history/historytest", "testing"} {
			if dep == banned {
				t.Errorf("cmd/manager links %s", dep)
			}
		}
		// The GameLift Server SDK is the client of internal/serversdk, for tests and the example game server.
		if strings.HasPrefix(dep, "github.com/amazon-gamelift/amazon-gamelift-servers-go-server-sdk") || strings.HasPrefix(dep, module+"test/") {
			t.Errorf("cmd/manager links %s", dep)
		}
	}
}
