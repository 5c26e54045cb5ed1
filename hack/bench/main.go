// Command bench measures the operator core on an embedded local control plane (real etcd and
// kube-apiserver): admissions per second for N concurrent reservations, then how late the TIMEDOUT
// transitions land after their deadlines. See docs/benchmarks.md.
//
//	KUBEBUILDER_ASSETS=$(hack/envtest-binaries.sh) go run ./hack/bench -players 1000
//
// BENCH_KUBECONFIG_DIR=DIR writes an admin kubeconfig there, to profile kube-apiserver during a run.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/controllers"
	"github.com/playersessions/operator/hack/benchutil"
	"github.com/playersessions/operator/internal/localcp"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		players, seats, writers int
		timeout                 time.Duration
		qps                     float64
		workers                 int
		batch                   time.Duration
	)
	flag.IntVar(&players, "players", 1000, "Player sessions to reserve and leave to time out.")
	flag.IntVar(&seats, "seats", 200, "Seats per game session (players/seats game sessions are created).")
	flag.IntVar(&writers, "writers", 32, "Concurrent clients creating player sessions.")
	flag.DurationVar(&timeout, "timeout", controllers.DefaultOptions().PlayerSessionTimeout, "The manager's --player-session-timeout.")
	flag.Float64Var(&qps, "kube-api-qps", 200, "The manager's client QPS (its --kube-api-qps).")
	flag.IntVar(&workers, "max-concurrent-reconciles", controllers.DefaultOptions().MaxConcurrentReconciles, "Workers per controller.")
	flag.DurationVar(&batch, "batch-window", controllers.DefaultOptions().BatchWindow, "The manager's --batch-window.")
	flag.BoolVar(&timeline, "timeline", false, "Also print, per 500 ms from the first deadline, how many deadlines came due and how many TIMEDOUT transitions were stamped and seen.")
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.Level(zapcore.WarnLevel)))

	cp, err := localcp.Start(localcp.Options{CRDDirectoryPaths: []string{"config/crd/bases"}, Dir: os.Getenv("BENCH_KUBECONFIG_DIR")})
	if err != nil {
		return err
	}
	defer func() { _ = cp.Stop() }()
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = gamev1.AddToScheme(scheme)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The manager under test.
	mcfg := *cp.Config
	mcfg.QPS, mcfg.Burst = float32(qps), int(2*qps)
	mgr, err := ctrl.NewManager(&mcfg, ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"},
		Cache: cache.Options{DefaultTransform: controllers.StripForCache}})
	if err != nil {
		return err
	}
	opts := controllers.DefaultOptions()
	opts.PlayerSessionTimeout = timeout
	opts.MaxConcurrentReconciles = workers
	opts.BatchWindow = batch
	if err := controllers.Setup(ctx, mgr, clock.RealClock{}, opts, nil); err != nil {
		return err
	}
	go func() { _ = mgr.Start(ctx) }()

	// The observer: a separate informer that timestamps when each transition becomes visible.
	ocfg := *cp.Config
	ocfg.QPS, ocfg.Burst = 1000, 2000
	c, err := client.New(&ocfg, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	obs, err := cache.New(&ocfg, cache.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	var mu sync.Mutex
	reservedAt := map[string]time.Time{}
	timedOutAt := map[string]time.Time{}
	inf, err := obs.GetInformer(ctx, &gamev1.PlayerSession{})
	if err != nil {
		return err
	}
	record := func(o any) {
		ps, ok := o.(*gamev1.PlayerSession)
		if !ok {
			return
		}
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		switch ps.Status.Status {
		case gamev1.PlayerSessionReserved:
			if _, ok := reservedAt[ps.Name]; !ok {
				reservedAt[ps.Name] = now
			}
		case gamev1.PlayerSessionTimedOut:
			if _, ok := timedOutAt[ps.Name]; !ok {
				timedOutAt[ps.Name] = now
			}
		}
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{AddFunc: record, UpdateFunc: func(_, o any) { record(o) }}); err != nil {
		return err
	}
	go func() { _ = obs.Start(ctx) }()
	obs.WaitForCacheSync(ctx)

	const ns = "bench"
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return err
	}
	games := (players + seats - 1) / seats
	for i := range games {
		gs := &gamev1.GameSession{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("gs-%d", i)},
			Spec: gamev1.GameSessionSpec{FleetID: "fleet-bench", MaximumPlayerSessionCount: int32(seats), IPAddress: "10.0.0.1", Port: 7777}}
		if err := c.Create(ctx, gs); err != nil {
			return err
		}
	}
	for i := range games {
		if err := benchutil.WaitFor(ctx, 30*time.Second, func() bool {
			var gs gamev1.GameSession
			return c.Get(ctx, client.ObjectKey{Namespace: ns, Name: fmt.Sprintf("gs-%d", i)}, &gs) == nil && gs.Status.Status == gamev1.GameSessionActive
		}); err != nil {
			return fmt.Errorf("game sessions did not activate: %w", err)
		}
	}

	fmt.Printf("players=%d game-sessions=%d seats=%d writers=%d timeout=%s manager-qps=%.0f workers=%d batch-window=%s\n", players, games, seats, writers, timeout, qps, workers, batch)
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= players {
					return
				}
				ps := &gamev1.PlayerSession{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("p-%05d", i)},
					Spec: gamev1.PlayerSessionSpec{GameSessionName: fmt.Sprintf("gs-%d", i%games), PlayerID: fmt.Sprintf("player-%d", i)}}
				if err := c.Create(ctx, ps); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	created := time.Since(start)
	count := func(m map[string]time.Time) int { mu.Lock(); defer mu.Unlock(); return len(m) }
	if err := benchutil.WaitFor(ctx, 5*time.Minute, func() bool { return count(reservedAt) == players }); err != nil {
		return fmt.Errorf("only %d of %d reserved: %w", count(reservedAt), players, err)
	}
	var lastReserved time.Time
	mu.Lock()
	for _, t := range reservedAt {
		if t.After(lastReserved) {
			lastReserved = t
		}
	}
	mu.Unlock()
	admitting := lastReserved.Sub(start)
	fmt.Printf("created %d player sessions in %s; all RESERVED after %s: %.0f admissions/s\n", players, created.Round(time.Millisecond), admitting.Round(time.Millisecond), float64(players)/admitting.Seconds())

	if err := benchutil.WaitFor(ctx, timeout+5*time.Minute, func() bool { return count(timedOutAt) == players }); err != nil {
		return fmt.Errorf("only %d of %d timed out: %w", count(timedOutAt), players, err)
	}
	var list gamev1.PlayerSessionList
	if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return err
	}
	var stamped, observed []time.Duration
	early := 0
	for i := range list.Items {
		ps := &list.Items[i]
		deadline := ps.Status.CreationTime.Add(timeout)
		if ps.Status.TerminationTime.Time.Before(deadline) {
			early++
		}
		stamped = append(stamped, ps.Status.TerminationTime.Sub(deadline))
		observed = append(observed, timedOutAt[ps.Name].Sub(deadline))
	}
	fmt.Printf("TIMEDOUT lateness after the deadline, as stamped by the controller (terminationTime): %s\n", benchutil.Summary(stamped))
	fmt.Printf("TIMEDOUT lateness after the deadline, as seen by a watching client:                   %s\n", benchutil.Summary(observed))
	fmt.Printf("early transitions: %d\n", early)
	if timeline {
		printTimeline(list.Items, timedOutAt, timeout)
	}
	printReconcileTotals()
	if early > 0 {
		return fmt.Errorf("%d transitions were early", early)
	}
	return nil
}

var timeline bool

// printTimeline prints, per 500 ms from the first deadline, the deadlines that came due and the TIMEDOUT
// transitions stamped by the controller and seen by the watching client, with the backlog (due, not seen).
func printTimeline(items []gamev1.PlayerSession, seen map[string]time.Time, timeout time.Duration) {
	const step = 500 * time.Millisecond
	first := items[0].Status.CreationTime.Add(timeout)
	for i := range items {
		if d := items[i].Status.CreationTime.Add(timeout); d.Before(first) {
			first = d
		}
	}
	type row struct{ due, stamped, seen int }
	rows := map[int]*row{}
	last := 0
	at := func(t time.Time) *row {
		k := int(t.Sub(first) / step)
		last = max(last, k)
		if rows[k] == nil {
			rows[k] = &row{}
		}
		return rows[k]
	}
	for i := range items {
		ps := &items[i]
		at(ps.Status.CreationTime.Add(timeout)).due++
		at(ps.Status.TerminationTime.Time).stamped++
		at(seen[ps.Name]).seen++
	}
	fmt.Println("timeline (s after the first deadline): due stamped seen backlog")
	backlog := 0
	for k := 0; k <= last; k++ {
		r := rows[k]
		if r == nil {
			r = &row{}
		}
		backlog += r.due - r.seen
		fmt.Printf("  %5.1f  %4d %4d %4d %4d\n", float64(k)*step.Seconds(), r.due, r.stamped, r.seen, backlog)
	}
}

// printReconcileTotals prints the manager's reconcile counts, from controller-runtime's metrics registry.
func printReconcileTotals() {
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		return
	}
	for _, f := range families {
		switch f.GetName() {
		case "controller_runtime_reconcile_total", "controller_runtime_reconcile_errors_total":
		default:
			continue
		}
		for _, m := range f.GetMetric() {
			labels := ""
			for _, l := range m.GetLabel() {
				labels += l.GetName() + "=" + l.GetValue() + " "
			}
			if v := m.GetCounter().GetValue(); v > 0 {
				fmt.Printf("  %s{%s} %.0f\n", f.GetName(), labels, v)
			}
		}
	}
}
