package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/playersessions/operator/internal/testenv"
)

// TestImageWithoutDaemon builds the manager's image with hack/image (go-containerregistry, no container
// engine) as an OCI layout, and checks it: the user, working directory and entrypoint of the Dockerfile's
// final stage; the binary built as the Dockerfile builds it (static, -trimpath, -ldflags="-s -w"); the
// extracted filesystem runs `/manager --help`; and the binary holds no test code (the local control
// plane, envtest, the test helpers, the vendored Server SDK).
func TestImageWithoutDaemon(t *testing.T) {
	root := testenv.Path()
	out := filepath.Join(t.TempDir(), "oci")
	cmd := exec.Command("go", "run", "./hack/image", "-o", out)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hack/image: %v\n%s", err, b)
	}
	p, err := layout.FromPath(out)
	if err != nil {
		t.Fatal(err)
	}
	index, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := index.IndexManifest()
	if err != nil || len(manifest.Manifests) != 1 {
		t.Fatalf("the layout's index: %v, %+v", err, manifest)
	}
	img, err := index.Image(manifest.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}

	// In step with the Dockerfile's final stage.
	want := finalStage(t, filepath.Join(root, "Dockerfile"))
	if got := cfg.Config.User; got != want["USER"] {
		t.Errorf("user %q, the Dockerfile's %q", got, want["USER"])
	}
	if got := cfg.Config.WorkingDir; got != want["WORKDIR"] {
		t.Errorf("working directory %q, the Dockerfile's %q", got, want["WORKDIR"])
	}
	var entrypoint []string
	if err := json.Unmarshal([]byte(want["ENTRYPOINT"]), &entrypoint); err != nil {
		t.Fatalf("the Dockerfile's ENTRYPOINT %q: %v", want["ENTRYPOINT"], err)
	}
	if !slices.Equal(cfg.Config.Entrypoint, entrypoint) {
		t.Errorf("entrypoint %q, the Dockerfile's %q", cfg.Config.Entrypoint, entrypoint)
	}

	// The filesystem, extracted as a runtime would lay it out.
	fs := t.TempDir()
	extract(t, mutate.Extract(img), fs)
	for _, f := range []string{"etc/passwd", "etc/ssl/certs/ca-certificates.crt", "tmp"} {
		if _, err := os.Stat(filepath.Join(fs, f)); err != nil {
			t.Errorf("the base lacks %s: %v", f, err)
		}
	}
	manager := filepath.Join(fs, strings.TrimPrefix(entrypoint[0], "/"))
	help, err := exec.Command(manager, "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(help), "-gamelift-bind-address") {
		st, _ := os.Stat(manager)
		t.Errorf("%s --help (%d bytes): %v\n%s", entrypoint[0], st.Size(), err, help)
	}

	// Built as the Dockerfile builds it.
	info, err := exec.Command("go", "version", "-m", manager).Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, setting := range []string{"CGO_ENABLED=0", "-trimpath=true"} {
		if !strings.Contains(string(info), setting) {
			t.Errorf("the image's binary is not built with %s:\n%s", setting, info)
		}
	}
	if bin, err := elf.Open(manager); err != nil {
		t.Error(err)
	} else { // -ldflags="-s -w" (not in the build information with -trimpath): no symbol table, no DWARF
		if bin.Section(".symtab") != nil || bin.Section(".debug_info") != nil {
			t.Error(`the image's binary is not stripped (-ldflags="-s -w")`)
		}
		bin.Close()
	}
	dockerfile, _ := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if !strings.Contains(string(dockerfile), `CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o manager ./cmd/manager`) {
		t.Error("the Dockerfile builds the manager otherwise than hack/image: keep them in step")
	}

	// No test code: function names survive -s -w (the runtime needs them), so packages show.
	binary, err := os.ReadFile(manager)
	if err != nil {
		t.Fatal(err)
	}
	for _, pkg := range []string{"sigs.k8s.io/controller-runtime/pkg/envtest.", "operator/internal/localcp.", "operator/internal/testenv.",
		"operator/internal/agones/agonestest.", "operator/internal/history/historytest.", "github.com/onsi/gomega", "amazon-gamelift-servers-go-server-sdk"} {
		if bytes.Contains(binary, []byte(pkg)) {
			t.Errorf("the image's binary holds %s", pkg)
		}
	}
	if !bytes.Contains(binary, []byte("operator/internal/gamelift.")) {
		t.Error("the check above would not see a package: internal/gamelift's names are not in the binary either")
	}
}

// finalStage is the USER, WORKDIR and ENTRYPOINT of the Dockerfile's last stage.
func finalStage(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stage := map[string]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		instr, rest, _ := strings.Cut(line, " ")
		switch instr {
		case "FROM":
			stage = map[string]string{"WORKDIR": "/"}
		case "USER", "WORKDIR", "ENTRYPOINT":
			stage[instr] = strings.TrimSpace(rest)
		}
	}
	return stage
}

// extract writes a flattened image's tar stream into dir (directories and regular files).
func extract(t *testing.T, rc io.ReadCloser, dir string) {
	t.Helper()
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, filepath.Clean("/"+h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(path, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, body, os.FileMode(h.Mode).Perm()); err != nil {
				t.Fatal(err)
			}
		}
	}
}
