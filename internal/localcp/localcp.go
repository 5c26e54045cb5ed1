// Package localcp runs an embedded local control plane (etcd and kube-apiserver, built by
// hack/envtest-binaries.sh) for `make run` and the tests, with the CRDs installed.
package localcp

import (
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// ControlPlane is a running local control plane.
type ControlPlane struct {
	env *envtest.Environment
	// Config is an admin (system:masters) client configuration.
	Config *rest.Config
	// Kubeconfig is the path of an admin kubeconfig file, for kubectl.
	Kubeconfig string
}

// Options configure the control plane.
type Options struct {
	// CRDDirectoryPaths hold the CRDs to install (config/crd/bases).
	CRDDirectoryPaths []string
	// BinaryAssetsDirectory holds kube-apiserver and etcd; KUBEBUILDER_ASSETS when empty.
	BinaryAssetsDirectory string
	// Dir receives the kubeconfig file.
	Dir string
}

// Start starts etcd and kube-apiserver, installs the CRDs and writes an admin kubeconfig.
func Start(o Options) (*ControlPlane, error) {
	env := &envtest.Environment{
		CRDDirectoryPaths:     o.CRDDirectoryPaths,
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: o.BinaryAssetsDirectory,
	}
	if env.BinaryAssetsDirectory == "" && os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return nil, fmt.Errorf("no kube-apiserver/etcd: set KUBEBUILDER_ASSETS to the folder hack/envtest-binaries.sh prints")
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting the local control plane: %w", err)
	}
	cp := &ControlPlane{env: env, Config: cfg}
	if o.Dir != "" {
		user, err := env.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
		if err != nil {
			_ = env.Stop()
			return nil, err
		}
		kc, err := user.KubeConfig()
		if err != nil {
			_ = env.Stop()
			return nil, err
		}
		if err := os.MkdirAll(o.Dir, 0o700); err != nil {
			_ = env.Stop()
			return nil, err
		}
		cp.Kubeconfig = filepath.Join(o.Dir, "kubeconfig")
		if err := os.WriteFile(cp.Kubeconfig, kc, 0o600); err != nil {
			_ = env.Stop()
			return nil, err
		}
	}
	return cp, nil
}

// Stop stops the control plane and removes its data.
func (cp *ControlPlane) Stop() error {
	return cp.env.Stop()
}
