// Command manager runs the playersessions operator in a cluster: the GameSession and PlayerSession
// controllers (on the elected leader only), and on every replica the query API server, the GameLift
// endpoint and the admission webhook, as their flags turn them on, all over one informer cache. It carries
// no test infrastructure: cmd/manager-local runs the same manager on an embedded local control plane.
package main

import (
	"flag"
	"fmt"
	"os"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/playersessions/operator/internal/manager"
)

func main() {
	flags := manager.BindFlags(flag.CommandLine)
	flag.Parse()
	if err := run(flags); err != nil {
		fmt.Fprintln(os.Stderr, "manager:", err)
		os.Exit(1)
	}
}

func run(flags *manager.Flags) error {
	o, err := flags.Options()
	if err != nil {
		return err
	}
	ctx := ctrl.SetupSignalHandler()
	mgr, _, err := manager.New(ctx, flags.Limit(ctrl.GetConfigOrDie()), o)
	if err != nil {
		return err
	}
	ctrl.Log.WithName("setup").Info("Starting manager", "playerSessionTimeout", o.Controllers.PlayerSessionTimeout, "retention", o.Controllers.Retention, "queryPort", o.QueryPort)
	return mgr.Start(ctx)
}
