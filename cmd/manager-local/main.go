// Command manager-local is what `make run` runs: an embedded local control plane (etcd and kube-apiserver
// from KUBEBUILDER_ASSETS, with the CRDs, the webhook configuration and the admission policies installed,
// and the query API aggregated) and the manager of cmd/manager on it, with the same flags. It prints the
// kubeconfig and, with the GameLift endpoint on, an access key for namespace default (a Secret in the key
// namespace, playersessions-system). The production binary, cmd/manager, does not link the local control
// plane.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/playersessions/operator/internal/gamelift"
	"github.com/playersessions/operator/internal/localcp"
	"github.com/playersessions/operator/internal/manager"
)

func main() {
	flags := manager.BindFlags(flag.CommandLine)
	var local localFlags
	flag.StringVar(&local.dir, "local-control-plane", "", "Folder for the local control plane's kubeconfig and state (required).")
	flag.StringVar(&local.crdDir, "crd-dir", "config/crd/bases", "CRDs to install into the local control plane.")
	flag.StringVar(&local.webhookDir, "webhook-config-dir", "config/webhook", "Webhook configurations to install into the local control plane.")
	flag.StringVar(&local.policyDir, "policy-dir", "config/policy", "Admission policies to install into the local control plane.")
	flag.Parse()
	if err := run(flags, local); err != nil {
		fmt.Fprintln(os.Stderr, "manager-local:", err)
		os.Exit(1)
	}
}

type localFlags struct{ dir, crdDir, webhookDir, policyDir string }

func run(flags *manager.Flags, local localFlags) error {
	if local.dir == "" {
		return fmt.Errorf("--local-control-plane is required")
	}
	o, err := flags.Options()
	if err != nil {
		return err
	}
	log := ctrl.Log.WithName("setup")
	ctx := ctrl.SetupSignalHandler()
	cp, err := localcp.Start(localcp.Options{CRDDirectoryPaths: []string{local.crdDir}, Dir: local.dir, QueryPort: o.QueryPort,
		WebhookDirectoryPaths: []string{local.webhookDir}, ManifestDirectoryPaths: []string{local.policyDir}, DieWithParent: true})
	if err != nil {
		return err
	}
	defer func() { _ = cp.Stop() }()
	o.QueryKubeconfig, o.QueryCertDir = cp.Kubeconfig, cp.ServingCertDir
	o.WebhookHost, o.WebhookPort, o.WebhookCertDir, o.WebhookClientCAName = cp.WebhookHost, cp.WebhookPort, cp.WebhookCertDir, cp.WebhookClientCAName
	log.Info("Local control plane is up", "kubeconfig", cp.Kubeconfig)
	fmt.Printf("\nLocal control plane is up. In another shell:\n\n  export KUBECONFIG=%s\n  kubectl get gamesessions,playersessions -A\n\n", cp.Kubeconfig)
	if o.GameLiftAddr != "" {
		keyID, secret, err := localAccessKey(ctx, cp.Config, o.GameLiftKeyNamespace, "default")
		if err != nil {
			return err
		}
		fmt.Printf("GameLift-compatible endpoint for namespace default:\n\n  export AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s AWS_DEFAULT_REGION=us-east-1\n  aws gamelift describe-player-sessions --endpoint-url %s --player-id alice\n\n", keyID, secret, endpointURL(o.GameLiftAddr))
		if o.GameLiftSDKAddr != "" {
			fmt.Printf("Game servers on the GameLift Server SDK v5 connect to ws://%s (docs/gamelift-game-servers.md).\n\n", strings.TrimPrefix(endpointURL(o.GameLiftSDKAddr), "http://"))
		}
	}
	mgr, _, err := manager.New(ctx, flags.Limit(rest.CopyConfig(cp.Config)), o)
	if err != nil {
		return err
	}
	log.Info("Starting manager", "playerSessionTimeout", o.Controllers.PlayerSessionTimeout, "retention", o.Controllers.Retention, "queryPort", o.QueryPort)
	return mgr.Start(ctx)
}

// localAccessKey creates (or reads) the local GameLift access key of namespace tenant, a Secret in
// keyNamespace (created when missing).
func localAccessKey(ctx context.Context, cfg *rest.Config, keyNamespace, tenant string) (string, string, error) {
	c, err := client.New(cfg, client.Options{Scheme: manager.Scheme()})
	if err != nil {
		return "", "", err
	}
	key := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: keyNamespace, Name: "gamelift-local-key"}, key); err == nil {
		return string(key.Data[gamelift.AccessKeyIDField]), string(key.Data[gamelift.SecretAccessKeyField]), nil
	}
	random := func(n int) string {
		b := make([]byte, n)
		_, _ = rand.Read(b)
		return strings.ToUpper(hex.EncodeToString(b))
	}
	keyID, secret := "AKIA"+random(8), random(20)
	return keyID, secret, gamelift.CreateAccessKey(ctx, c, keyNamespace, "gamelift-local-key", tenant, keyID, secret)
}

func endpointURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}
