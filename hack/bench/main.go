// Command bench measures the operator core on an embedded local control plane (real etcd and
// kube-apiserver, with the admission webhook and policies as make run installs them), in one run:
//
//  1. the ceiling: plain creates of N PlayerSession objects with no controllers admitting them;
//  2. admissions: N creates, at the same concurrency, each until RESERVED, and the ratio to the ceiling;
//  3. how late the TIMEDOUT transitions of those N land after their deadlines;
//  4. CreatePlayerSession through the GameLift endpoint (aws-sdk-go-v2): one client alone, then many
//     concurrent clients (p50 / p99, calls per second), and CreatePlayerSessions of 10 players.
//
// See docs/benchmarks.md.
//
//	KUBEBUILDER_ASSETS=$(hack/envtest-binaries.sh) go run ./hack/bench -players 1000
//
// BENCH_KUBECONFIG_DIR=DIR writes an admin kubeconfig there, to profile kube-apiserver during a run.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	gl "github.com/aws/aws-sdk-go-v2/service/gamelift"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/controllers"
	"github.com/playersessions/operator/hack/benchutil"
	"github.com/playersessions/operator/internal/gamelift"
	"github.com/playersessions/operator/internal/ids"
	"github.com/playersessions/operator/internal/localcp"
	"github.com/playersessions/operator/internal/manager"
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
		webhook, skipTimeouts   bool
		twoWrites               bool
		glCalls, glClients      int
		pprofAddr               string
	)
	flag.IntVar(&players, "players", 1000, "Player sessions to create in the ceiling and admission phases (then left to time out).")
	flag.IntVar(&seats, "seats", 200, "Seats per game session (players/seats game sessions are created).")
	flag.IntVar(&writers, "writers", 32, "Concurrent clients creating player sessions (both phases).")
	flag.DurationVar(&timeout, "timeout", controllers.DefaultOptions().PlayerSessionTimeout, "The manager's --player-session-timeout.")
	flag.Float64Var(&qps, "kube-api-qps", 200, "The manager's client QPS (its --kube-api-qps).")
	flag.IntVar(&workers, "max-concurrent-reconciles", controllers.DefaultOptions().MaxConcurrentReconciles, "Workers per controller.")
	flag.DurationVar(&batch, "batch-window", controllers.DefaultOptions().BatchWindow, "The manager's --batch-window.")
	flag.BoolVar(&webhook, "webhook", true, "Install and serve the admission webhook, as make run does.")
	flag.BoolVar(&skipTimeouts, "skip-timeouts", false, "Skip the timeout-lateness phase.")
	flag.BoolVar(&twoWrites, "two-writes", false, "After the ceiling, also time the same creates each followed by the status write a reservation makes, with no controllers (the bound of any admission that writes the player session's status).")
	flag.IntVar(&glCalls, "gamelift-calls", 1000, "CreatePlayerSession calls under concurrency (0: skip the GameLift phase).")
	flag.IntVar(&glClients, "gamelift-clients", 32, "Concurrent GameLift clients.")
	flag.StringVar(&pprofAddr, "pprof", "", "Serve the manager's net/http/pprof here during the run.")
	flag.BoolVar(&timeline, "timeline", false, "Also print, per 500 ms from the first deadline, how many deadlines came due and how many TIMEDOUT transitions were stamped and seen.")
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.Level(zapcore.ErrorLevel)))

	lo := localcp.Options{ManifestDirectoryPaths: []string{"config/policy"}, Dir: os.Getenv("BENCH_KUBECONFIG_DIR")}
	if webhook {
		lo.WebhookDirectoryPaths = []string{"config/webhook"}
	}
	cp, stopCP, err := benchutil.ControlPlane(lo)
	if err != nil {
		return err
	}
	defer stopCP()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The observer: a separate client and informer that timestamps when each transition becomes visible.
	var mu sync.Mutex
	reservedAt := map[string]time.Time{}
	timedOutAt := map[string]time.Time{}
	c, err := benchutil.Observe(ctx, cp.Config, func(ps *gamev1.PlayerSession) {
		if ps.Namespace != benchNS {
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
	})
	if err != nil {
		return err
	}
	for _, ns := range []string{ceilingNS, benchNS, gameliftNS} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return err
		}
	}

	mcfg := *cp.Config
	mcfg.QPS, mcfg.Burst = float32(qps), int(2*qps)
	opts := benchutil.ManagerOptions()
	opts.DisableAgones, opts.SkipNameValidation = true, true
	opts.Controllers.PlayerSessionTimeout = timeout
	opts.Controllers.MaxConcurrentReconciles = workers
	opts.Controllers.BatchWindow = batch
	if webhook {
		opts.WebhookHost, opts.WebhookPort, opts.WebhookCertDir, opts.WebhookClientCAName = cp.WebhookHost, cp.WebhookPort, cp.WebhookCertDir, cp.WebhookClientCAName
	}
	fmt.Printf("players=%d seats=%d writers=%d timeout=%s manager-qps=%.0f workers=%d batch-window=%s webhook=%v\n", players, seats, writers, timeout, qps, workers, batch, webhook)

	// 1. The ceiling: the same creates, answered by the webhook (when on) but admitted by nobody.
	ceiling, err := startManager(ctx, &mcfg, opts, true)
	if err != nil {
		return err
	}
	plain, err := createAll(ctx, c, ceilingNS, players, writers, func(i int) string { return "nowhere" })
	ceiling()
	if err != nil {
		return err
	}
	plainRate := float64(players) / plain.Seconds()
	fmt.Printf("ceiling: %d plain creates from %d writers in %s: %.0f creates/s\n", players, writers, plain.Round(time.Millisecond), plainRate)
	if err := deleteAll(ctx, c, ceilingNS); err != nil {
		return fmt.Errorf("ceiling player sessions not deleted: %w", err)
	}

	// 1b. The bound of an admission that writes the player session's status: create, then the RESERVED
	// status (as the PlayerSession reconciler writes it), by the same writers, with no controllers.
	if twoWrites {
		bound, err := startManager(ctx, &mcfg, opts, true)
		if err != nil {
			return err
		}
		d, err := createAndReserveAll(ctx, c, ceilingNS, players, writers)
		bound()
		if err != nil {
			return err
		}
		rate := float64(players) / d.Seconds()
		fmt.Printf("two writes: %d creates each followed by its RESERVED status write in %s: %.0f/s = %.2f x the ceiling\n", players, d.Round(time.Millisecond), rate, rate/plainRate)
		if err := deleteAll(ctx, c, ceilingNS); err != nil {
			return fmt.Errorf("two-write player sessions not deleted: %w", err)
		}
	}

	// 2. Admissions, by the whole manager (controllers, webhook, GameLift endpoint).
	glAddr := ""
	if glCalls > 0 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		glAddr = l.Addr().String()
		_ = l.Close()
		opts.GameLiftAddr = glAddr
	}
	opts.PprofAddr = pprofAddr
	stop, err := startManager(ctx, &mcfg, opts, false)
	if err != nil {
		return err
	}
	defer stop()
	games := (players + seats - 1) / seats
	for i := range games {
		if err := createGameSession(ctx, c, benchNS, fmt.Sprintf("gs-%d", i), seats); err != nil {
			return err
		}
	}
	writesBefore := requestCounts(ctx, cp.Config)
	fmt.Println("admitting...")
	admitting, err := createAll(ctx, c, benchNS, players, writers, func(i int) string { return fmt.Sprintf("gs-%d", i%games) })
	if err != nil {
		return err
	}
	count := func(m map[string]time.Time) int { mu.Lock(); defer mu.Unlock(); return len(m) }
	start := time.Now().Add(-admitting)
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
	all := lastReserved.Sub(start)
	rate := float64(players) / all.Seconds()
	fmt.Printf("admissions: %d created in %s, all RESERVED after %s: %.0f admissions/s = %.2f x the ceiling\n", players, admitting.Round(time.Millisecond), all.Round(time.Millisecond), rate, rate/plainRate)
	fmt.Printf("  writes per admission (kube-apiserver's count; the create is the benchmark's): %s\n", perAdmission(writesBefore, requestCounts(ctx, cp.Config), players))

	// 3. Timeout lateness.
	if !skipTimeouts {
		if err := benchutil.WaitFor(ctx, timeout+5*time.Minute, func() bool { return count(timedOutAt) == players }); err != nil {
			return fmt.Errorf("only %d of %d timed out: %w", count(timedOutAt), players, err)
		}
		var list gamev1.PlayerSessionList
		if err := c.List(ctx, &list, client.InNamespace(benchNS)); err != nil {
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
		if early > 0 {
			return fmt.Errorf("%d transitions were early", early)
		}
	}

	// 4. The GameLift endpoint.
	if glCalls > 0 {
		if err := benchGameLift(ctx, c, glAddr, glCalls, glClients); err != nil {
			return err
		}
	}
	printReconcileTotals()
	return nil
}

const (
	ceilingNS  = "ceiling"
	benchNS    = "bench"
	gameliftNS = "gamelift"
)

// startManager runs the manager (controllers off for the ceiling) until the returned stop.
func startManager(ctx context.Context, cfg *rest.Config, opts manager.Options, noControllers bool) (stop func(), err error) {
	opts.DisableControllers = noControllers
	m, err := benchutil.StartManager(ctx, cfg, opts)
	if err != nil {
		return nil, err
	}
	return m.Stop, nil
}

// deleteAll deletes the player sessions of ns and waits until they are gone.
func deleteAll(ctx context.Context, c client.Client, ns string) error {
	if err := c.DeleteAllOf(ctx, &gamev1.PlayerSession{}, client.InNamespace(ns)); err != nil {
		return err
	}
	return benchutil.WaitFor(ctx, 2*time.Minute, func() bool {
		var l gamev1.PlayerSessionList
		return c.List(ctx, &l, client.InNamespace(ns)) == nil && len(l.Items) == 0
	})
}

func createGameSession(ctx context.Context, c client.Client, ns, name string, seats int) error {
	gs := &gamev1.GameSession{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: gamev1.GameSessionSpec{FleetID: "fleet-bench", MaximumPlayerSessionCount: int32(seats), Endpoint: gamev1.Endpoint{IPAddress: "10.0.0.1", Port: 7777}}}
	if err := c.Create(ctx, gs); err != nil {
		return err
	}
	return benchutil.WaitFor(ctx, 30*time.Second, func() bool {
		return c.Get(ctx, client.ObjectKeyFromObject(gs), gs) == nil && gs.Status.Status == gamev1.GameSessionActive
	})
}

// createAll creates n player sessions in ns from writers concurrent clients and returns how long it took.
func createAll(ctx context.Context, c client.Client, ns string, n, writers int, game func(int) string) (time.Duration, error) {
	start := time.Now()
	err := benchutil.Parallel(writers, n, func(i int) error {
		return c.Create(ctx, &gamev1.PlayerSession{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("p-%05d", i)},
			Spec: gamev1.PlayerSessionSpec{GameSessionName: game(i), PlayerID: fmt.Sprintf("player-%d", i)}})
	})
	return time.Since(start), err
}

// createAndReserveAll creates n player sessions from writers clients, each followed by the status a
// reservation writes (status, ids, creation time, endpoint, the Admitted condition), as a merge patch.
func createAndReserveAll(ctx context.Context, c client.Client, ns string, n, writers int) (time.Duration, error) {
	start := time.Now()
	err := benchutil.Parallel(writers, n, func(i int) error {
		ps := &gamev1.PlayerSession{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("r-%05d", i)},
			Spec: gamev1.PlayerSessionSpec{GameSessionName: "nowhere", PlayerID: fmt.Sprintf("player-%d", i)}}
		if err := c.Create(ctx, ps); err != nil {
			return err
		}
		before := ps.DeepCopy()
		now := metav1.NewMicroTime(time.Now())
		ps.Status.Status = gamev1.PlayerSessionReserved
		ps.Status.PlayerSessionID = ids.PlayerSessionID(ps)
		ps.Status.GameSessionID = "arn:aws:gamelift:local::gamesession/fleet-bench/gsess-nowhere"
		ps.Status.FleetID = "fleet-bench"
		ps.Status.CreationTime = &now
		ps.Status.Endpoint = gamev1.Endpoint{IPAddress: "10.0.0.1", Port: 7777}
		ps.Status.Conditions = []metav1.Condition{{Type: gamev1.AdmittedCondition, Status: metav1.ConditionTrue, Reason: gamev1.SeatReservedReason,
			Message: "Seat reserved in game session nowhere", LastTransitionTime: metav1.NewTime(now.Time), ObservedGeneration: ps.Generation},
			{Type: gamev1.PlayerSessionReadyCondition, Status: metav1.ConditionTrue, Reason: gamev1.SeatReservedReason,
				Message: "Seat granted in game session nowhere; status.status tells the rest", LastTransitionTime: metav1.NewTime(now.Time), ObservedGeneration: ps.Generation}}
		ps.Status.ObservedGeneration = ps.Generation
		return c.Status().Patch(ctx, ps, client.MergeFrom(before))
	})
	return time.Since(start), err
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

// benchGameLift measures CreatePlayerSession through the GameLift endpoint with aws-sdk-go-v2 (AWS JSON
// 1.1 is what the SDK sends for GameLift; the endpoint's codec is not what is measured): one client alone,
// then clients concurrent clients, then CreatePlayerSessions of 10 players by one client.
func benchGameLift(ctx context.Context, c client.Client, addr string, calls, clients int) error {
	keyID, secret := "AKIDBENCH", "bench-secret"
	if err := gamelift.CreateAccessKey(ctx, c, gamelift.DefaultKeyNamespace, "gamelift-key", gameliftNS, keyID, secret); err != nil {
		return err
	}
	const alone, groups, groupSize = 200, 50, 10
	seats := alone + calls + groups*groupSize
	var ids []string
	for i := 0; i*200 < seats; i++ {
		name := fmt.Sprintf("gl-%d", i)
		if err := createGameSession(ctx, c, gameliftNS, name, 200); err != nil {
			return err
		}
		var gs gamev1.GameSession
		if err := c.Get(ctx, client.ObjectKey{Namespace: gameliftNS, Name: name}, &gs); err != nil {
			return err
		}
		ids = append(ids, gs.Status.GameSessionID)
	}
	newClient := func() *gl.Client {
		return gl.New(gl.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + addr),
			Credentials: credentials.NewStaticCredentialsProvider(keyID, secret, ""), RetryMaxAttempts: 1})
	}
	// The key reaches the endpoint's cache asynchronously.
	probe := newClient()
	if err := benchutil.WaitFor(ctx, 30*time.Second, func() bool {
		_, err := probe.DescribeGameSessions(ctx, &gl.DescribeGameSessionsInput{GameSessionId: aws.String(ids[0])})
		return err == nil
	}); err != nil {
		return fmt.Errorf("the GameLift endpoint does not answer: %w", err)
	}
	var seat atomic.Int64
	gameFor := func(n int) string { return ids[(int(seat.Add(int64(n)))-n)/200] }
	one := func(cl *gl.Client, i int) (time.Duration, error) {
		start := time.Now()
		_, err := cl.CreatePlayerSession(ctx, &gl.CreatePlayerSessionInput{GameSessionId: aws.String(gameFor(1)), PlayerId: aws.String(fmt.Sprintf("gl-player-%d", i))})
		return time.Since(start), err
	}

	var lat []time.Duration
	for i := range alone {
		d, err := one(probe, i)
		if err != nil {
			return fmt.Errorf("CreatePlayerSession alone: %w", err)
		}
		lat = append(lat, d)
	}
	fmt.Printf("GameLift CreatePlayerSession, 1 client, %d calls: %s\n", alone, benchutil.Summary(lat))

	lat = make([]time.Duration, calls)
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Int64
	start := time.Now()
	for range clients {
		cl := newClient()
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= calls {
					return
				}
				d, err := one(cl, alone+i)
				if err != nil {
					failed.Add(1)
				}
				lat[i] = d
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	fmt.Printf("GameLift CreatePlayerSession, %d clients, %d calls: %s, %.0f calls/s, %d failed\n", clients, calls, benchutil.Summary(lat), float64(calls)/took.Seconds(), failed.Load())

	lat = lat[:0]
	for i := range groups {
		players := make([]string, groupSize)
		for j := range players {
			players[j] = fmt.Sprintf("group-%d-player-%d", i, j)
		}
		start := time.Now()
		if _, err := probe.CreatePlayerSessions(ctx, &gl.CreatePlayerSessionsInput{GameSessionId: aws.String(gameFor(groupSize)), PlayerIds: players}); err != nil {
			return fmt.Errorf("CreatePlayerSessions: %w", err)
		}
		lat = append(lat, time.Since(start))
	}
	fmt.Printf("GameLift CreatePlayerSessions of %d players, 1 client, %d calls: %s\n", groupSize, groups, benchutil.Summary(lat))
	return nil
}

// requestCounts reads kube-apiserver's apiserver_request_total for the operator's resources and Events,
// by resource, subresource and verb.
func requestCounts(ctx context.Context, cfg *rest.Config) map[string]float64 {
	out := map[string]float64{}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return out
	}
	raw, err := cs.RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return out
	}
	label := func(line, name string) string {
		i := strings.Index(line, name+`="`)
		if i < 0 {
			return ""
		}
		rest := line[i+len(name)+2:]
		return rest[:strings.IndexByte(rest, '"')]
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(line, "apiserver_request_total{") {
			continue
		}
		res := label(line, "resource")
		if res != "playersessions" && res != "gamesessions" && res != "events" {
			continue
		}
		verb := label(line, "verb")
		if verb == "LIST" || verb == "WATCH" || verb == "GET" {
			continue
		}
		key := res
		if sub := label(line, "subresource"); sub != "" {
			key += "/" + sub
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err == nil {
			out[key+" "+verb] += v
		}
	}
	return out
}

// perAdmission prints the writes per admission between two readings of requestCounts.
func perAdmission(before, after map[string]float64, n int) string {
	var parts []string
	for k, v := range after {
		if d := v - before[k]; d > 0 {
			parts = append(parts, fmt.Sprintf("%s %.2f", k, d/float64(n)))
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}
