// Command benchretention measures what retained player sessions (ended, kept for the 30 days after their
// game session ended) cost a control plane: etcd's database, kube-apiserver's resident memory and the
// manager's heap (its cache and the query index), per retained session, at each size; and so how many a
// control plane of a given memory holds before a history store is needed. See docs/benchmarks.md.
//
//	KUBEBUILDER_ASSETS=$(hack/envtest-binaries.sh) go run ./hack/benchretention -sizes 10000,100000
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/hack/benchutil"
	"github.com/playersessions/operator/internal/localcp"
	"github.com/playersessions/operator/internal/manager"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "benchretention:", err)
		os.Exit(1)
	}
}

func run() error {
	sizes := flag.String("sizes", "10000,100000", "Retained player sessions to store, one fresh control plane each.")
	writers := flag.Int("writers", 32, "Concurrent clients writing them.")
	settle := flag.Duration("settle", 20*time.Second, "How long to let memory settle before each reading.")
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.Level(zapcore.ErrorLevel)))
	fmt.Println("size  etcd-db-total  etcd-db-in-use  kube-apiserver-rss  manager-heap  | per session: etcd  kube-apiserver  manager")
	for _, f := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return err
		}
		if err := measure(n, *writers, *settle); err != nil {
			return err
		}
	}
	return nil
}

// reading is the control plane's memory and storage at one moment.
type reading struct{ dbTotal, dbInUse, apiserverRSS, managerHeap float64 }

func measure(n, writers int, settle time.Duration) error {
	cp, stopCP, err := benchutil.ControlPlane(localcp.Options{})
	if err != nil {
		return err
	}
	defer stopCP()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The manager as deployed (its cache, with the query index behind the GameLift endpoint), controllers
	// off: retained sessions give them nothing to do for 30 days, and their requeues are not what is measured.
	opts := benchutil.ManagerOptions()
	opts.DisableControllers, opts.DisableAgones, opts.SkipNameValidation = true, true, true
	if opts.GameLiftAddr, err = benchutil.FreeAddr(); err != nil {
		return err
	}
	mgr, err := benchutil.StartManager(ctx, cp.Config, opts)
	if err != nil {
		return err
	}
	index := mgr.Index
	cfg := *cp.Config
	cfg.QPS, cfg.Burst = 2000, 4000
	c, err := client.New(&cfg, client.Options{Scheme: manager.Scheme()})
	if err != nil {
		return err
	}
	const ns = "retained"
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return err
	}
	time.Sleep(settle)
	before, err := read(ctx, cp)
	if err != nil {
		return err
	}

	start := time.Now()
	if err := benchutil.Parallel(writers, n, func(i int) error { return retain(ctx, c, ns, i) }); err != nil {
		return err
	}
	if err := benchutil.WaitFor(ctx, 10*time.Minute, func() bool { return index.Len() >= n }); err != nil {
		return fmt.Errorf("the manager's index holds %d of %d: %w", index.Len(), n, err)
	}
	fmt.Fprintf(os.Stderr, "stored %d retained player sessions in %s\n", n, time.Since(start).Round(time.Second))
	time.Sleep(settle)
	after, err := read(ctx, cp)
	if err != nil {
		return err
	}
	per := func(a, b float64) string { return fmt.Sprintf("%.1f KB", (b-a)/float64(n)/1024) }
	fmt.Printf("%-6d %-14s %-15s %-19s %-13s | %s  %s  %s\n", n, mb(after.dbTotal), mb(after.dbInUse), mb(after.apiserverRSS), mb(after.managerHeap),
		per(before.dbTotal, after.dbTotal), per(before.apiserverRSS, after.apiserverRSS), per(before.managerHeap, after.managerHeap))
	return nil
}

func mb(b float64) string { return fmt.Sprintf("%.0f MB", b/1024/1024) }

// retain stores player session i as the controllers leave it once its game session ended: COMPLETED, with
// its ids, times, endpoint and conditions (three writes, as in its life: create, RESERVED, COMPLETED).
func retain(ctx context.Context, c client.Client, ns string, i int) error {
	game := fmt.Sprintf("gs-%05d", i/10)
	ps := &gamev1.PlayerSession{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("ps-%07d", i)},
		Spec:       gamev1.PlayerSessionSpec{GameSessionName: game, PlayerID: fmt.Sprintf("player-%07d", i/2)},
	}
	if err := c.Create(ctx, ps); err != nil {
		return err
	}
	before := ps.DeepCopy()
	now := metav1.NowMicro()
	ps.Status = gamev1.PlayerSessionStatus{
		PlayerSessionID:    fmt.Sprintf("psess-%07d-0123456789abcdef", i),
		Status:             gamev1.PlayerSessionReserved,
		GameSessionID:      "arn:aws:gamelift:local::gamesession/fleet-bench/" + game,
		FleetID:            "fleet-bench",
		FleetArn:           "arn:aws:gamelift:local:000000000000:fleet/fleet-bench",
		CreationTime:       &now,
		Endpoint:           gamev1.Endpoint{IPAddress: "10.0.0.1", DNSName: "gs.example.com", Port: 7777},
		ObservedGeneration: 1,
	}
	meta.SetStatusCondition(&ps.Status.Conditions, metav1.Condition{Type: gamev1.AdmittedCondition, Status: metav1.ConditionTrue,
		Reason: gamev1.SeatReservedReason, Message: "Seat reserved in game session " + game, ObservedGeneration: 1})
	meta.SetStatusCondition(&ps.Status.Conditions, metav1.Condition{Type: gamev1.PlayerSessionReadyCondition, Status: metav1.ConditionTrue,
		Reason: gamev1.SeatReservedReason, Message: "Seat granted in game session " + game + "; status.status tells the rest", ObservedGeneration: 1})
	if err := c.Status().Patch(ctx, ps, client.MergeFrom(before)); err != nil {
		return err
	}
	// A player session starts as RESERVED (a CEL rule): then it completes with its game session.
	before = ps.DeepCopy()
	ps.Status.Status = gamev1.PlayerSessionCompleted
	ps.Status.TerminationTime, ps.Status.GameSessionTerminationTime = &now, &now
	return c.Status().Patch(ctx, ps, client.MergeFrom(before))
}

// read takes one reading: etcd's database size from its metrics, kube-apiserver's resident memory from
// /proc, and this process's Go heap in use after a collection (the manager's cache and index; the load
// generator holds nothing between writes).
func read(ctx context.Context, cp *localcp.ControlPlane) (reading, error) {
	var r reading
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(cp.EtcdURL(), "/")+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return r, err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, line := range strings.Split(string(body), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		v, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "etcd_mvcc_db_total_size_in_bytes":
			r.dbTotal = v
		case "etcd_mvcc_db_total_size_in_use_in_bytes":
			r.dbInUse = v
		}
	}
	if r.apiserverRSS = benchutil.RSSOf("kube-apiserver", "--etcd-servers="+cp.EtcdURL()); r.apiserverRSS == 0 {
		return r, fmt.Errorf("no kube-apiserver process found")
	}
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r.managerHeap = float64(ms.HeapInuse)
	return r, nil
}
