// Command image builds the manager's container image without a container engine, with
// go-containerregistry: the static manager binary (CGO_ENABLED=0, -trimpath, as the Dockerfile builds
// it) on a minimal base laid down here (what distroless/static holds that the manager needs: the nonroot
// user and group, CA certificates from this machine, /tmp), written as an OCI image layout. Its user,
// working directory and entrypoint are the Dockerfile's (test/image checks they stay in step).
//
//	go run ./hack/image -o bin/manager-oci [-tag playersessions/manager:dev]
//
// Push the layout with any OCI tool (crane push, skopeo copy oci:bin/manager-oci docker://...).
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image's user, working directory and entrypoint: the Dockerfile's final stage.
const (
	user       = "65532:65532"
	workingDir = "/"
	entrypoint = "/manager"
)

// caBundle is where Debian (and most distributions) keep the CA certificates the base carries.
const caBundle = "/etc/ssl/certs/ca-certificates.crt"

func main() {
	out := flag.String("o", "bin/manager-oci", "the OCI image layout to write (replaced)")
	tag := flag.String("tag", "playersessions/manager:dev", "the image's name, as the layout's org.opencontainers.image.ref.name")
	flag.Parse()
	if err := build(*out, *tag); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
	fmt.Println(*out)
}

func build(out, tag string) error {
	work, err := os.MkdirTemp("", "playersessions-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	bin := filepath.Join(work, "manager")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./cmd/manager")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building the manager: %w", err)
	}
	manager, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	certs, err := os.ReadFile(caBundle)
	if err != nil {
		return fmt.Errorf("the base's CA certificates: %w", err)
	}
	base, err := layer([]file{
		{name: "etc/", dir: true, mode: 0o755},
		{name: "etc/passwd", mode: 0o644, body: []byte("root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{name: "etc/group", mode: 0o644, body: []byte("root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n")},
		{name: "etc/ssl/", dir: true, mode: 0o755},
		{name: "etc/ssl/certs/", dir: true, mode: 0o755},
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, body: certs},
		{name: "home/", dir: true, mode: 0o755},
		{name: "home/nonroot/", dir: true, mode: 0o700, uid: 65532},
		{name: "tmp/", dir: true, mode: 0o1777},
	})
	if err != nil {
		return err
	}
	app, err := layer([]file{{name: "manager", mode: 0o755, body: manager}})
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), base, app)
	if err != nil {
		return err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", runtime.GOARCH
	cfg.Config.User, cfg.Config.WorkingDir, cfg.Config.Entrypoint = user, workingDir, []string{entrypoint}
	cfg.Config.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "SSL_CERT_FILE=" + caBundle}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return err
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	if err := os.RemoveAll(out); err != nil {
		return err
	}
	p, err := layout.Write(out, empty.Index)
	if err != nil {
		return err
	}
	return p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag}),
		layout.WithPlatform(v1.Platform{OS: "linux", Architecture: runtime.GOARCH}))
}

// file is an entry of a layer.
type file struct {
	name string
	dir  bool
	mode int64
	uid  int
	body []byte
}

// layer is a gzipped tar layer of files, with a fixed time (the same inputs give the same digest).
func layer(files []file) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, Uid: f.uid, Gid: f.uid, ModTime: epoch, Typeflag: tar.TypeReg, Size: int64(len(f.body))}
		if f.dir {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	raw := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil },
		tarball.WithMediaType(types.OCILayer))
}
