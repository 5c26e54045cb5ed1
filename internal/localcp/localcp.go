// Package localcp runs an embedded local control plane (etcd and kube-apiserver, built by
// hack/envtest-binaries.sh) for `make run` and the tests, with the CRDs installed.
package localcp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"
)

// ControlPlane is a running local control plane.
type ControlPlane struct {
	env *envtest.Environment
	// Config is an admin (system:masters) client configuration.
	Config *rest.Config
	// Kubeconfig is the path of an admin kubeconfig file, for kubectl.
	Kubeconfig string
	// ServingCertDir holds tls.crt and tls.key for the query API server (with QueryPort).
	ServingCertDir string
	// WebhookHost, WebhookPort and WebhookCertDir are where the admission webhooks installed from
	// Options.WebhookDirectoryPaths are called (https://WebhookHost:WebhookPort) and the serving certificate
	// they expect (tls.crt, tls.key), for the manager's webhook server.
	WebhookHost    string
	WebhookPort    int
	WebhookCertDir string
	// WebhookClientCAName is the file in WebhookCertDir with the CA of the client certificate kube-apiserver
	// presents to webhooks (its admission configuration): the manager's webhook requires it, as
	// config/webhook-client-auth does in a cluster.
	WebhookClientCAName string

	certDir    string
	webhookCA  *keyPair
	wrapperDir string
	stateDir   string // kube-apiserver's certificates and etcd's data, kept across restarts
}

// Options configure the control plane.
type Options struct {
	// CRDDirectoryPaths hold the CRDs to install (config/crd/bases).
	CRDDirectoryPaths []string
	// BinaryAssetsDirectory holds kube-apiserver and etcd; KUBEBUILDER_ASSETS when empty.
	BinaryAssetsDirectory string
	// DieWithParent starts etcd and kube-apiserver with the parent-death signal set (Linux, through
	// util-linux's setpriv), so that they die with this process even when it is killed with SIGKILL.
	DieWithParent bool
	// Dir receives the kubeconfig file.
	Dir string
	// QueryPort, when set, wires the aggregation layer: kube-apiserver gets a front-proxy client
	// certificate and the requestheader flags, and the query API (query.playersessions.dev) is registered
	// as an APIService routed to https://localhost:QueryPort through an ExternalName Service.
	QueryPort int
	// Aggregation wires the aggregation layer (as QueryPort does) without registering the query API, for
	// tests that serve an API of their own with ServeAPIService.
	Aggregation bool
	// ManifestDirectoryPaths hold other objects to create once the control plane is up (config/policy:
	// the status-write admission policies), every .yaml file in them.
	ManifestDirectoryPaths []string
	// WebhookDirectoryPaths hold webhook configurations to install (config/webhook), rewritten to call
	// https://WebhookHost:WebhookPort with a generated serving certificate.
	WebhookDirectoryPaths []string
}

// Query API registration.
const (
	QueryNamespace   = "playersessions-system"
	QueryServiceName = "playersessions-query"
	QueryAPIService  = "v1alpha1.query.playersessions.dev"
)

// startTimeout bounds the start of etcd and of kube-apiserver, each.
const startTimeout = 2 * time.Minute

// Start starts etcd and kube-apiserver, installs the CRDs and writes an admin kubeconfig.
func Start(o Options) (*ControlPlane, error) {
	env := &envtest.Environment{
		CRDDirectoryPaths:     o.CRDDirectoryPaths,
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: o.BinaryAssetsDirectory,
		WebhookInstallOptions: envtest.WebhookInstallOptions{Paths: o.WebhookDirectoryPaths},
	}
	// envtest gives each process 20 s to come up; a machine busy compiling (a cold `make test` on two
	// cores) needs more. KUBEBUILDER_CONTROLPLANE_START_TIMEOUT still overrides.
	if os.Getenv("KUBEBUILDER_CONTROLPLANE_START_TIMEOUT") == "" {
		env.ControlPlaneStartTimeout = startTimeout
	}
	if env.BinaryAssetsDirectory == "" && os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return nil, fmt.Errorf("no kube-apiserver/etcd: set KUBEBUILDER_ASSETS to the folder hack/envtest-binaries.sh prints")
	}
	cp := &ControlPlane{env: env}
	if env.ControlPlane.Etcd == nil {
		env.ControlPlane.Etcd = &envtest.Etcd{}
	}
	if o.DieWithParent {
		assets := env.BinaryAssetsDirectory
		if assets == "" {
			assets = os.Getenv("KUBEBUILDER_ASSETS")
		}
		wrappers, err := dieWithParent(assets)
		if err != nil {
			return nil, err
		}
		// envtest would look in KUBEBUILDER_ASSETS before BinaryAssetsDirectory: name the binaries.
		cp.wrapperDir = wrappers
		env.ControlPlane.GetAPIServer().Path = filepath.Join(wrappers, "kube-apiserver")
		env.ControlPlane.Etcd.Path = filepath.Join(wrappers, "etcd")
	}
	// Named folders (envtest removes the ones it makes up when a process stops), so that kube-apiserver
	// restarts with its certificates and etcd with its data: see RestartAPIServer and RestartEtcd.
	stateDir, err := os.MkdirTemp("", "playersessions-cp-")
	if err != nil {
		return nil, err
	}
	cp.stateDir = stateDir
	env.ControlPlane.GetAPIServer().CertDir = filepath.Join(stateDir, "kube-apiserver")
	// A stop that takes longer (kube-apiserver drains its connections) ends with SIGKILL.
	env.ControlPlane.GetAPIServer().StopTimeout, env.ControlPlane.Etcd.StopTimeout = 5*time.Second, 5*time.Second
	env.ControlPlane.Etcd.DataDir = filepath.Join(stateDir, "etcd")
	for _, dir := range []string{env.ControlPlane.GetAPIServer().CertDir, env.ControlPlane.Etcd.DataDir} {
		if err := os.Mkdir(dir, 0o700); err != nil {
			return nil, err
		}
	}
	var servingCA *keyPair
	if o.QueryPort != 0 || o.Aggregation {
		var err error
		if servingCA, err = cp.configureAggregation(); err != nil {
			return nil, err
		}
	}
	if len(o.WebhookDirectoryPaths) > 0 {
		if err := cp.configureWebhookClient(); err != nil {
			return nil, err
		}
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting the local control plane: %w", err)
	}
	cp.Config = cfg
	fail := func(err error) (*ControlPlane, error) {
		_ = cp.Stop()
		return nil, err
	}
	if len(o.WebhookDirectoryPaths) > 0 {
		w := env.WebhookInstallOptions
		cp.WebhookHost, cp.WebhookPort, cp.WebhookCertDir = w.LocalServingHost, w.LocalServingPort, w.LocalServingCertDir
		cp.WebhookClientCAName = "client-ca.crt"
		if err := os.WriteFile(filepath.Join(cp.WebhookCertDir, cp.WebhookClientCAName), cp.webhookCA.certPEM(), 0o600); err != nil {
			return fail(err)
		}
	}
	if o.Dir != "" {
		user, err := env.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
		if err != nil {
			return fail(err)
		}
		kc, err := user.KubeConfig()
		if err != nil {
			return fail(err)
		}
		if err := os.MkdirAll(o.Dir, 0o700); err != nil {
			return fail(err)
		}
		cp.Kubeconfig = filepath.Join(o.Dir, "kubeconfig")
		if err := os.WriteFile(cp.Kubeconfig, kc, 0o600); err != nil {
			return fail(err)
		}
	}
	if o.QueryPort != 0 {
		if err := cp.registerQueryAPI(o.QueryPort, servingCA); err != nil {
			return fail(err)
		}
	}
	if err := cp.createManifests(o.ManifestDirectoryPaths); err != nil {
		return fail(err)
	}
	return cp, nil
}

// createManifests creates every object of the .yaml files in dirs (kustomization.yaml excepted).
func (cp *ControlPlane) createManifests(dirs []string) error {
	c, err := client.New(cp.Config, client.Options{})
	if err != nil {
		return err
	}
	for _, dir := range dirs {
		files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
		if err != nil {
			return err
		}
		for _, f := range files {
			if filepath.Base(f) == "kustomization.yaml" {
				continue
			}
			data, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			for _, doc := range strings.Split(string(data), "\n---\n") {
				u := &unstructured.Unstructured{}
				if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
					return fmt.Errorf("%s: %w", f, err)
				}
				if len(u.Object) == 0 {
					continue
				}
				if err := c.Create(context.Background(), u); err != nil {
					return fmt.Errorf("%s: creating %s %s: %w", f, u.GetKind(), u.GetName(), err)
				}
			}
		}
	}
	return nil
}

// certs is the folder of the control plane's generated certificates, created on first use.
func (cp *ControlPlane) certs() (string, error) {
	if cp.certDir == "" {
		dir, err := os.MkdirTemp("", "playersessions-certs-")
		if err != nil {
			return "", err
		}
		cp.certDir = dir
	}
	return cp.certDir, nil
}

// configureWebhookClient gives kube-apiserver a client certificate for every webhook it calls (its admission
// configuration, as a cluster admin sets it up for config/webhook-client-auth), issued by a CA the manager's
// webhook then requires.
func (cp *ControlPlane) configureWebhookClient() error {
	dir, err := cp.certs()
	if err != nil {
		return err
	}
	if cp.webhookCA, err = newCA("playersessions-webhook-client-ca"); err != nil {
		return err
	}
	clientCert, err := cp.webhookCA.issue("kube-apiserver-webhook-client", x509.ExtKeyUsageClientAuth, nil, nil)
	if err != nil {
		return err
	}
	certFile, keyFile, err := clientCert.write(dir, "webhook-client")
	if err != nil {
		return err
	}
	kubeconfig := filepath.Join(dir, "webhook-client.kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(fmt.Sprintf(webhookClientKubeconfig, certFile, keyFile)), 0o600); err != nil {
		return err
	}
	admissionConfig := filepath.Join(dir, "admission.yaml")
	if err := os.WriteFile(admissionConfig, []byte(fmt.Sprintf(webhookAdmissionConfig, kubeconfig, kubeconfig)), 0o600); err != nil {
		return err
	}
	cp.env.ControlPlane.GetAPIServer().Configure().Set("admission-control-config-file", admissionConfig)
	return nil
}

// The admission configuration docs/security.md shows for a cluster: one client certificate for every
// webhook ('*'), for the validating and the mutating webhook plugins.
const (
	webhookClientKubeconfig = `apiVersion: v1
kind: Config
users:
- name: '*'
  user:
    client-certificate: %s
    client-key: %s
`
	webhookAdmissionConfig = `apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: ValidatingAdmissionWebhook
  configuration:
    apiVersion: apiserver.config.k8s.io/v1
    kind: WebhookAdmissionConfiguration
    kubeConfigFile: %s
- name: MutatingAdmissionWebhook
  configuration:
    apiVersion: apiserver.config.k8s.io/v1
    kind: WebhookAdmissionConfiguration
    kubeConfigFile: %s
`
)

// configureAggregation creates the front-proxy CA, kube-apiserver's proxy client certificate and the query
// server's serving certificate, and sets kube-apiserver's aggregation flags. It returns the serving CA.
func (cp *ControlPlane) configureAggregation() (*keyPair, error) {
	dir, err := cp.certs()
	if err != nil {
		return nil, err
	}
	frontProxyCA, err := newCA("front-proxy-ca")
	if err != nil {
		return nil, err
	}
	proxyClient, err := frontProxyCA.issue("front-proxy-client", x509.ExtKeyUsageClientAuth, nil, nil)
	if err != nil {
		return nil, err
	}
	servingCA, err := newCA("playersessions-query-ca")
	if err != nil {
		return nil, err
	}
	serving, err := servingCA.issue("playersessions-query", x509.ExtKeyUsageServerAuth,
		[]string{"localhost", QueryServiceName + "." + QueryNamespace + ".svc"}, []net.IP{net.ParseIP("127.0.0.1")})
	if err != nil {
		return nil, err
	}
	caFile := filepath.Join(dir, "front-proxy-ca.crt")
	if err := os.WriteFile(caFile, frontProxyCA.certPEM(), 0o600); err != nil {
		return nil, err
	}
	proxyCert, proxyKey, err := proxyClient.write(dir, "front-proxy-client")
	if err != nil {
		return nil, err
	}
	cp.ServingCertDir = filepath.Join(dir, "serving")
	if err := os.MkdirAll(cp.ServingCertDir, 0o700); err != nil {
		return nil, err
	}
	if _, _, err := serving.write(cp.ServingCertDir, "tls"); err != nil {
		return nil, err
	}
	args := cp.env.ControlPlane.GetAPIServer().Configure()
	args.Set("requestheader-client-ca-file", caFile)
	args.Set("requestheader-allowed-names", "front-proxy-client")
	args.Set("requestheader-username-headers", "X-Remote-User")
	args.Set("requestheader-group-headers", "X-Remote-Group")
	args.Set("requestheader-extra-headers-prefix", "X-Remote-Extra-")
	args.Set("proxy-client-cert-file", proxyCert)
	args.Set("proxy-client-key-file", proxyKey)
	return servingCA, nil
}

// registerQueryAPI routes query.playersessions.dev to https://localhost:port: an ExternalName Service (an
// Endpoints object cannot hold a loopback address) and an APIService trusting the serving CA.
func (cp *ControlPlane) registerQueryAPI(port int, servingCA *keyPair) error {
	c, err := client.New(cp.Config, client.Options{})
	if err != nil {
		return err
	}
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: QueryNamespace}}
	if err := c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: QueryNamespace, Name: QueryServiceName},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "localhost",
			Ports: []corev1.ServicePort{{Name: "https", Port: int32(port)}}},
	}
	if err := c.Create(ctx, svc); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return c.Create(ctx, apiServiceObject("query.playersessions.dev", "v1alpha1", QueryServiceName, port, servingCA.certPEM()))
}

func apiServiceObject(group, version, service string, port int, caBundle []byte) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1",
		"kind":       "APIService",
		"metadata":   map[string]any{"name": version + "." + group},
		"spec": map[string]any{
			"group": group, "version": version,
			"groupPriorityMinimum": int64(1000), "versionPriority": int64(15),
			"service":  map[string]any{"namespace": QueryNamespace, "name": service, "port": int64(port)},
			"caBundle": base64.StdEncoding.EncodeToString(caBundle),
		},
	}}
}

// ServeAPIService serves handler over HTTPS on a free loopback port and registers it with the aggregation
// layer as group/version (the control plane must have been started with Aggregation or QueryPort), as a
// cluster would route an aggregated API to its Service. The handler sees the requests kube-apiserver
// proxies; it does not authenticate them. It returns a function that stops the server.
func (cp *ControlPlane) ServeAPIService(group, version string, handler http.Handler) (stop func(), err error) {
	service := strings.ReplaceAll(group, ".", "-")
	ca, err := newCA(service + "-ca")
	if err != nil {
		return nil, err
	}
	serving, err := ca.issue(service, x509.ExtKeyUsageServerAuth, []string{"localhost", service + "." + QueryNamespace + ".svc"}, []net.IP{net.ParseIP("127.0.0.1")})
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, TLSConfig: &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{serving.cert.Raw}, PrivateKey: serving.key}},
	}}
	go func() { _ = srv.ServeTLS(l, "", "") }()
	stop = func() { _ = srv.Close() }
	port := l.Addr().(*net.TCPAddr).Port
	c, err := client.New(cp.Config, client.Options{})
	if err != nil {
		stop()
		return nil, err
	}
	ctx := context.Background()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: QueryNamespace}}); err != nil && !apierrors.IsAlreadyExists(err) {
		stop()
		return nil, err
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: QueryNamespace, Name: service},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "localhost",
			Ports: []corev1.ServicePort{{Name: "https", Port: int32(port)}}},
	}
	if err := c.Create(ctx, svc); err != nil {
		stop()
		return nil, err
	}
	if err := c.Create(ctx, apiServiceObject(group, version, service, port, ca.certPEM())); err != nil {
		stop()
		return nil, err
	}
	return stop, nil
}

// Stop stops the control plane and removes its data.
func (cp *ControlPlane) Stop() error {
	err := cp.env.Stop()
	for _, dir := range []string{cp.certDir, cp.wrapperDir, cp.stateDir} {
		if dir != "" {
			_ = os.RemoveAll(dir)
		}
	}
	return err
}

// dieWithParent writes, into a new folder, kube-apiserver and etcd wrappers that exec the binaries of
// assets with the parent-death signal SIGKILL (kept across exec): the parent is this process, which starts
// them, so they cannot outlive it.
func dieWithParent(assets string) (string, error) {
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		return "", fmt.Errorf("setpriv (util-linux) is needed to tie etcd and kube-apiserver to this process: %w", err)
	}
	dir, err := os.MkdirTemp("", "playersessions-bin-")
	if err != nil {
		return "", err
	}
	for _, name := range []string{"kube-apiserver", "etcd"} {
		script := fmt.Sprintf("#!/bin/sh\nexec '%s' --pdeathsig KILL -- '%s' \"$@\"\n", setpriv, filepath.Join(assets, name))
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// RestartAPIServer stops kube-apiserver (SIGTERM; SIGKILL after 5 s), waits down, and starts it again
// with the same certificates, port and flags; clients keep their configuration. It returns once it serves
// again.
func (cp *ControlPlane) RestartAPIServer(down time.Duration) error {
	s := cp.env.ControlPlane.GetAPIServer()
	_ = s.Stop() // an error is a stop that took too long: it was killed
	time.Sleep(down)
	return s.Start()
}

// RestartEtcd stops etcd (SIGTERM; SIGKILL after 5 s), waits down, and starts it again with its data, on
// the same client URL. It returns once etcd is healthy.
func (cp *ControlPlane) RestartEtcd(down time.Duration) error {
	e := cp.env.ControlPlane.Etcd
	_ = e.Stop()
	time.Sleep(down)
	return e.Start()
}

// EtcdURL is the client URL of the control plane's etcd (its /metrics too), for benchmarks.
func (cp *ControlPlane) EtcdURL() string {
	if e := cp.env.ControlPlane.Etcd; e != nil && e.URL != nil {
		return e.URL.String()
	}
	return ""
}

// AddUser provisions a user with a client certificate (and groups) and returns its client configuration.
func (cp *ControlPlane) AddUser(u envtest.User) (*rest.Config, error) {
	au, err := cp.env.AddUser(u, nil)
	if err != nil {
		return nil, err
	}
	return au.Config(), nil
}

// AddUserKubeconfig provisions a user like AddUser and writes a kubeconfig for it (for kubectl) to path.
func (cp *ControlPlane) AddUserKubeconfig(u envtest.User, path string) error {
	au, err := cp.env.AddUser(u, nil)
	if err != nil {
		return err
	}
	kc, err := au.KubeConfig()
	if err != nil {
		return err
	}
	return os.WriteFile(path, kc, 0o600)
}
