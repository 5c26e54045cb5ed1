// Command benchgameservers measures the GameLift Server SDK endpoint with N connected game server processes
// on an embedded local control plane (real etcd and kube-apiserver, the manager in this process):
//
//  1. memory: the manager's heap in use and goroutine stacks per idle connection (the processes run in a
//     child process: this one holds the manager alone);
//  2. heartbeats: every process sends HeartbeatServerProcess each -heartbeat for -heartbeat-window; the
//     writes the manager makes to kube-apiserver meanwhile (its rest clients' counters), and its CPU time
//     per heartbeat;
//  3. placement: CreateGameSession (aws-sdk-go-v2, through the GameLift endpoint) at -rate per second, each
//     process activating the game session pushed to it at once (ActivateGameSession); from the call to the
//     game session ACTIVE as a watching client sees it, p50/p99;
//  4. AcceptPlayerSession: one RESERVED player session per game session, accepted by its process at
//     -accept-rate per second in all; the request's round trip on the process's connection, p50/p99;
//  5. placements: StartGameSessionPlacement at -placement-rate per second through a queue of the fleet,
//     each with two desired players, on the -placements processes phase 3 left idle; from the call to the
//     placement FULFILLED (the game session ACTIVE, its players reserved) as a watching client sees it.
//
// The processes speak the SDK's wire protocol by hand (the frames the official SDK sends, facts in
// docs/gamelift-game-servers.md), all in one child process (this program again, driven over its stdin): the
// SDK keeps one state per OS process, and a thousand game server processes would measure the machine, not
// the endpoint. See docs/benchmarks.md.
//
//	KUBEBUILDER_ASSETS=$(hack/envtest-binaries.sh) go run ./hack/benchgameservers -processes 1000
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	gl "github.com/aws/aws-sdk-go-v2/service/gamelift"
	gltypes "github.com/aws/aws-sdk-go-v2/service/gamelift/types"
	"github.com/gorilla/websocket"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/hack/benchutil"
	"github.com/playersessions/operator/internal/gamelift"
	"github.com/playersessions/operator/internal/localcp"
	"github.com/playersessions/operator/internal/manager"
)

const (
	ns         = "games"
	fleet      = "fleet-bench"
	perCompute = 50 // GameLift's most processes on one compute
)

func main() {
	if os.Getenv(childEnv) != "" {
		if err := runChild(); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "benchgameservers:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		processes           int
		rate, acceptRate    float64
		heartbeat, hbWindow time.Duration
		qps                 float64
		placements          int
		placementRate       float64
	)
	flag.IntVar(&processes, "processes", 1000, "Connected game server processes (50 per compute).")
	flag.Float64Var(&rate, "rate", 50, "CreateGameSession calls per second.")
	flag.Float64Var(&acceptRate, "accept-rate", 200, "AcceptPlayerSession requests per second, in all.")
	flag.DurationVar(&heartbeat, "heartbeat", time.Second, "Each process's heartbeat interval during the heartbeat phase (the SDK's is 60 s).")
	flag.DurationVar(&hbWindow, "heartbeat-window", 20*time.Second, "How long the heartbeat phase lasts.")
	flag.Float64Var(&qps, "kube-api-qps", 200, "The manager's client QPS (its --kube-api-qps and --gamelift-kube-api-qps).")
	flag.IntVar(&placements, "placements", 200, "Game session placements (phase 5), on processes phase 3 leaves idle.")
	flag.Float64Var(&placementRate, "placement-rate", 20, "StartGameSessionPlacement calls per second.")
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.Level(zapcore.WarnLevel)))

	cp, stopCP, err := benchutil.ControlPlane(localcp.Options{})
	if err != nil {
		return err
	}
	defer stopCP()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	admin, err := benchutil.Observe(ctx, cp.Config, func(*gamev1.PlayerSession) {})
	if err != nil {
		return err
	}
	for _, n := range []string{ns, gamelift.DefaultKeyNamespace} {
		if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}}); err != nil {
			return err
		}
	}
	if err := gamelift.CreateAccessKey(ctx, admin, gamelift.DefaultKeyNamespace, "bench-key", ns, "AKIDBENCH", "bench-secret"); err != nil {
		return err
	}
	addr, err := benchutil.FreeAddr()
	if err != nil {
		return err
	}
	sdkAddr, err := benchutil.FreeAddr()
	if err != nil {
		return err
	}
	mcfg := *cp.Config
	mcfg.QPS, mcfg.Burst = float32(qps), int(2*qps)
	opts := benchutil.ManagerOptions()
	opts.GameLiftAddr, opts.GameLiftSDKAddr, opts.GameLiftQPS = addr, sdkAddr, float32(qps)
	opts.ReplicaName = "bench"
	opts.PprofAddr = os.Getenv("BENCH_PPROF") // e.g. 127.0.0.1:6060
	if _, err := benchutil.StartManager(ctx, &mcfg, opts); err != nil {
		return err
	}
	api := gl.New(gl.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + addr), RetryMaxAttempts: 10,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDBENCH", "bench-secret", "")})

	// Computes and their tokens, through the GameLift API.
	computes := (processes + perCompute - 1) / perCompute
	tokens := make([]string, computes)
	if err := benchutil.WaitFor(ctx, 30*time.Second, func() bool {
		_, err := api.ListCompute(ctx, &gl.ListComputeInput{FleetId: aws.String(fleet)})
		return err == nil
	}); err != nil {
		return fmt.Errorf("the access key did not reach the manager: %w", err)
	}
	for i := range computes {
		name := fmt.Sprintf("compute-%d", i)
		if _, err := api.RegisterCompute(ctx, &gl.RegisterComputeInput{FleetId: aws.String(fleet), ComputeName: aws.String(name), IpAddress: aws.String("10.0.0.1")}); err != nil {
			return err
		}
		out, err := api.GetComputeAuthToken(ctx, &gl.GetComputeAuthTokenInput{FleetId: aws.String(fleet), ComputeName: aws.String(name)})
		if err != nil {
			return err
		}
		tokens[i] = aws.ToString(out.AuthToken)
	}

	// The game sessions as a watching client sees them.
	obs, err := cache.New(cp.Config, cache.Options{Scheme: manager.Scheme()})
	if err != nil {
		return err
	}
	inf, err := obs.GetInformer(ctx, &gamev1.GameSession{})
	if err != nil {
		return err
	}
	var activeMu sync.Mutex
	active := map[string]time.Time{} // GameSessionId -> when seen ACTIVE
	seen := func(o any) {
		if gs, ok := o.(*gamev1.GameSession); ok && gs.Status.Status == gamev1.GameSessionActive {
			activeMu.Lock()
			if _, ok := active[gs.Status.GameSessionID]; !ok {
				active[gs.Status.GameSessionID] = time.Now()
			}
			activeMu.Unlock()
		}
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{AddFunc: seen, UpdateFunc: func(_, o any) { seen(o) }}); err != nil {
		return err
	}
	pinf, err := obs.GetInformer(ctx, &gamev1.GameSessionPlacement{})
	if err != nil {
		return err
	}
	fulfilled := map[string]time.Time{} // PlacementId -> when seen FULFILLED (under activeMu)
	seenPlacement := func(o any) {
		if p, ok := o.(*gamev1.GameSessionPlacement); ok && p.Status.Status != "" && p.Status.Status != gamev1.PlacementPending {
			activeMu.Lock()
			if _, ok := fulfilled[p.Spec.PlacementID]; !ok {
				fulfilled[p.Spec.PlacementID] = time.Now()
			}
			if p.Status.Status != gamev1.PlacementFulfilled {
				fmt.Fprintf(os.Stderr, "placement %s: %s: %s\n", p.Spec.PlacementID, p.Status.Status, p.Status.Message)
			}
			activeMu.Unlock()
		}
	}
	if _, err := pinf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{AddFunc: seenPlacement, UpdateFunc: func(_, o any) { seenPlacement(o) }}); err != nil {
		return err
	}
	go func() { _ = obs.Start(ctx) }()
	obs.WaitForCacheSync(ctx)

	// 1. Memory per idle connection: the processes connect from a child process.
	before := memory()
	child, err := startChild(sdkAddr, processes, tokens)
	if err != nil {
		return err
	}
	defer child.quit()
	time.Sleep(2 * time.Second) // the registrations' writes settle
	after := memory()
	fmt.Printf("processes: %d on %d computes, connected and registered (ProcessReady)\n", processes, computes)
	fmt.Printf("manager's memory per idle connection (heap in use + goroutine stacks): %.1f KiB (%.1f MiB for %d)\n",
		float64(after-before)/1024/float64(processes), float64(after-before)/(1<<20), processes)

	// 2. Heartbeats.
	writesBefore, cpuBefore := apiWrites(), cpuTime()
	beats, err := child.ask(fmt.Sprintf("heartbeat %s %s", heartbeat, hbWindow), "heartbeats")
	if err != nil {
		return err
	}
	n, _ := strconv.Atoi(beats[0])
	writes, detail := writesSince(writesBefore)
	cpu := cpuTime() - cpuBefore
	fmt.Printf("heartbeats: %d in %s (%.0f/s): %d writes to kube-apiserver meanwhile (%s); the manager's CPU: %.1f µs per heartbeat\n",
		n, hbWindow, float64(n)/hbWindow.Seconds(), writes, detail, float64(cpu.Microseconds())/float64(n))

	// 3. Placement: every process activates at once the game session pushed to it.
	if _, err := child.ask("activate", "activating"); err != nil {
		return err
	}
	writesBefore = apiWrites()
	serverBefore := apiserverDurations(ctx, cp.Config)
	started := make(map[string]time.Time, processes)
	var startedMu sync.Mutex
	var ids []string
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	begin := time.Now()
	var calls sync.WaitGroup
	var callErr atomic.Value
	games := processes - placements
	for range games {
		<-tick.C
		calls.Go(func() {
			t0 := time.Now()
			out, err := api.CreateGameSession(ctx, &gl.CreateGameSessionInput{FleetId: aws.String(fleet), MaximumPlayerSessionCount: aws.Int32(4)})
			if err != nil {
				callErr.Store(err)
				return
			}
			startedMu.Lock()
			id := aws.ToString(out.GameSession.GameSessionId)
			started[id] = t0
			ids = append(ids, id)
			startedMu.Unlock()
		})
	}
	tick.Stop()
	calls.Wait()
	if err, _ := callErr.Load().(error); err != nil {
		return fmt.Errorf("CreateGameSession: %w", err)
	}
	if err := benchutil.WaitFor(ctx, 2*time.Minute, func() bool {
		activeMu.Lock()
		defer activeMu.Unlock()
		return len(active) >= games
	}); err != nil {
		activeMu.Lock()
		n := len(active)
		activeMu.Unlock()
		var list gamev1.GameSessionList
		if lerr := admin.List(ctx, &list, client.InNamespace(ns)); lerr == nil {
			for _, gs := range list.Items {
				if gs.Status.Status != gamev1.GameSessionActive {
					fmt.Fprintf(os.Stderr, "not ACTIVE: %s %s process=%v conditions=%+v\n", gs.Name, gs.Status.Status, gs.Status.Process, gs.Status.Conditions)
				}
			}
		}
		return fmt.Errorf("%d of %d game sessions ACTIVE: %w", n, games, err)
	}
	var latencies []time.Duration
	activeMu.Lock()
	for id, t0 := range started {
		latencies = append(latencies, active[id].Sub(t0))
	}
	activeMu.Unlock()
	writes, detail = writesSince(writesBefore)
	fmt.Printf("placement: %d CreateGameSession at %.0f/s (%s), each to ACTIVE as a watcher sees it: %s; the manager's writes: %.1f per game session (%s)\n",
		games, rate, time.Since(begin).Round(time.Millisecond), benchutil.Summary(latencies), float64(writes)/float64(games), detail)
	fmt.Printf("  kube-apiserver's own mean time per write meanwhile: %s\n", apiserverDurationsSince(ctx, cp.Config, serverBefore))

	if os.Getenv("BENCH_DEBUG") != "" {
		families, _ := ctrlmetrics.Registry.Gather()
		for _, f := range families {
			if !strings.HasPrefix(f.GetName(), "controller_runtime_reconcile_total") && !strings.HasPrefix(f.GetName(), "workqueue_adds_total") {
				continue
			}
			for _, m := range f.GetMetric() {
				fmt.Fprintln(os.Stderr, f.GetName(), m.GetLabel(), m.GetCounter().GetValue())
			}
		}
	}

	// 4. AcceptPlayerSession: one player per game session, reserved first, accepted by its process.
	lines := make([]string, len(ids))
	if err := benchutil.Parallel(32, len(ids), func(i int) error {
		out, err := api.CreatePlayerSession(ctx, &gl.CreatePlayerSessionInput{GameSessionId: aws.String(ids[i]), PlayerId: aws.String(fmt.Sprint("player-", i))})
		if err != nil {
			return err
		}
		lines[i] = ids[i] + " " + aws.ToString(out.PlayerSession.PlayerSessionId)
		return nil
	}); err != nil {
		return err
	}
	answers, err := child.ask(fmt.Sprintf("accept %g\n%s\nend", acceptRate, strings.Join(lines, "\n")), "accepted")
	if err != nil {
		return err
	}
	var rtts []time.Duration
	for _, a := range strings.Fields(answers[0]) {
		ns, _ := strconv.ParseInt(a, 10, 64)
		rtts = append(rtts, time.Duration(ns))
	}
	fmt.Printf("AcceptPlayerSession: %d at %.0f/s, round trip on the process's connection: %s (%d refused or failed)\n",
		len(rtts), acceptRate, benchutil.Summary(rtts), len(ids)-len(rtts))
	if placements > 0 {
		return placePhase(ctx, api, cp.Config, placements, placementRate, &activeMu, fulfilled)
	}
	return nil
}

// placePhase is phase 5: StartGameSessionPlacement at rate through a queue of the fleet, two desired
// players each, until every placement has ended as a watcher sees it (fulfilled, under mu).
func placePhase(ctx context.Context, api *gl.Client, cfg *rest.Config, n int, rate float64, mu *sync.Mutex, fulfilled map[string]time.Time) error {
	if _, err := api.CreateGameSessionQueue(ctx, &gl.CreateGameSessionQueueInput{Name: aws.String("bench-queue"),
		Destinations: []gltypes.GameSessionQueueDestination{{DestinationArn: aws.String(fleet)}}}); err != nil {
		return err
	}
	if err := benchutil.WaitFor(ctx, 30*time.Second, func() bool {
		_, err := api.DescribeGameSessionQueues(ctx, &gl.DescribeGameSessionQueuesInput{Names: []string{"bench-queue"}})
		return err == nil
	}); err != nil {
		return fmt.Errorf("the queue did not reach the manager's cache: %w", err)
	}
	writesBefore := apiWrites()
	serverBefore := apiserverDurations(ctx, cfg)
	started := make(map[string]time.Time, n)
	var startedMu sync.Mutex
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	begin := time.Now()
	var calls sync.WaitGroup
	var callErr atomic.Value
	for i := range n {
		<-tick.C
		calls.Go(func() {
			id := fmt.Sprint("placement-", i)
			t0 := time.Now()
			if _, err := api.StartGameSessionPlacement(ctx, &gl.StartGameSessionPlacementInput{PlacementId: aws.String(id), GameSessionQueueName: aws.String("bench-queue"),
				MaximumPlayerSessionCount: aws.Int32(4), DesiredPlayerSessions: []gltypes.DesiredPlayerSession{{PlayerId: aws.String(id + "-a")}, {PlayerId: aws.String(id + "-b")}}}); err != nil {
				callErr.Store(err)
				return
			}
			startedMu.Lock()
			started[id] = t0
			startedMu.Unlock()
		})
	}
	tick.Stop()
	calls.Wait()
	if err, _ := callErr.Load().(error); err != nil {
		return fmt.Errorf("StartGameSessionPlacement: %w", err)
	}
	if err := benchutil.WaitFor(ctx, 2*time.Minute, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(fulfilled) >= n
	}); err != nil {
		return fmt.Errorf("placements not ended: %w", err)
	}
	var latencies []time.Duration
	mu.Lock()
	for id, t0 := range started {
		latencies = append(latencies, fulfilled[id].Sub(t0))
	}
	mu.Unlock()
	writes, detail := writesSince(writesBefore)
	fmt.Printf("placements: %d StartGameSessionPlacement at %.0f/s (%s), two players each, each to FULFILLED as a watcher sees it: %s; the manager's writes: %.1f per placement (%s)\n",
		n, rate, time.Since(begin).Round(time.Millisecond), benchutil.Summary(latencies), float64(writes)/float64(n), detail)
	fmt.Printf("  kube-apiserver's own mean time per write meanwhile: %s\n", apiserverDurationsSince(ctx, cfg, serverBefore))
	return nil
}

// apiserverDurations are kube-apiserver's request duration sums and counts (apiserver_request_duration_seconds)
// of the writes of computes, process claims, game sessions and their status, by "VERB resource/subresource".
func apiserverDurations(ctx context.Context, cfg *rest.Config) map[string][2]float64 {
	out := map[string][2]float64{}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return out
	}
	body, err := c.RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(body), "\n") {
		sum := strings.HasPrefix(line, "apiserver_request_duration_seconds_sum{")
		count := strings.HasPrefix(line, "apiserver_request_duration_seconds_count{")
		if !sum && !count {
			continue
		}
		label := func(name string) string {
			_, rest, ok := strings.Cut(line, name+`="`)
			if !ok {
				return ""
			}
			v, _, _ := strings.Cut(rest, `"`)
			return v
		}
		verb, resource, sub := label("verb"), label("resource"), label("subresource")
		if (resource != "computes" && resource != "gamesessions" && resource != "processclaims" && resource != "gamesessionplacements" && resource != "playersessions") || (verb != "PATCH" && verb != "POST" && verb != "PUT") {
			continue
		}
		key := verb + " " + resource
		if sub != "" {
			key += "/" + sub
		}
		fields := strings.Fields(line)
		v, _ := strconv.ParseFloat(fields[len(fields)-1], 64)
		e := out[key]
		if sum {
			e[0] += v
		} else {
			e[1] += v
		}
		out[key] = e
	}
	return out
}

// apiserverDurationsSince formats the mean duration of each kind of write since before.
func apiserverDurationsSince(ctx context.Context, cfg *rest.Config, before map[string][2]float64) string {
	var parts []string
	for key, e := range apiserverDurations(ctx, cfg) {
		if n := e[1] - before[key][1]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %.0f ms (%d)", key, (e[0]-before[key][0])/n*1000, int(n)))
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

// memory is this process's heap in use and goroutine stacks, after a collection.
func memory() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// cpuTime is this process's CPU time (user and system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// apiWrites are the write requests this process's rest clients (the manager's) have made, by method.
func apiWrites() map[string]float64 {
	families, _ := ctrlmetrics.Registry.Gather()
	by := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "rest_client_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "method" && l.GetValue() != "GET" {
					by[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	return by
}

// writesSince are the writes since before, in all and by method.
func writesSince(before map[string]float64) (int, string) {
	total, parts := 0, []string{}
	for method, n := range apiWrites() {
		if d := int(n - before[method]); d > 0 {
			total += d
			parts = append(parts, fmt.Sprintf("%s %d", method, d))
		}
	}
	slices.Sort(parts)
	return total, strings.Join(parts, ", ")
}

// process is one game server process's connection, speaking the SDK's protocol.
type process struct {
	conn    *websocket.Conn
	writeMu sync.Mutex
	mu      sync.Mutex
	n       int
	waiting map[string]chan map[string]any
	onPush  func(map[string]any)
}

func dial(addr, compute, pID, token string) (*process, error) {
	conn, _, err := websocket.DefaultDialer.Dial(fmt.Sprintf("ws://%s/?pID=%s&sdkVersion=5.6.0&sdkLanguage=Go&FleetId=%s&ComputeId=%s&IdempotencyToken=%s&Authorization=%s",
		addr, pID, fleet, compute, pID, token), nil)
	if err != nil {
		return nil, err
	}
	p := &process{conn: conn, waiting: map[string]chan map[string]any{}}
	go p.read()
	return p, nil
}

func (p *process) read() {
	for {
		var m map[string]any
		if err := p.conn.ReadJSON(&m); err != nil {
			return
		}
		id, _ := m["RequestId"].(string)
		p.mu.Lock()
		ch, ok := p.waiting[id]
		delete(p.waiting, id)
		push := p.onPush
		p.mu.Unlock()
		switch {
		case ok:
			ch <- m
		case id == "" && push != nil:
			push(m)
		}
	}
}

// call sends a request and waits for its answer.
func (p *process) call(action string, fields map[string]any) (map[string]any, error) {
	p.mu.Lock()
	p.n++
	id := fmt.Sprint(action, "-", p.n)
	ch := make(chan map[string]any, 1)
	p.waiting[id] = ch
	p.mu.Unlock()
	fields["Action"], fields["RequestId"] = action, id
	b, err := json.Marshal(fields)
	if err != nil {
		return nil, err
	}
	p.writeMu.Lock()
	err = p.conn.WriteMessage(websocket.TextMessage, b)
	p.writeMu.Unlock()
	if err != nil {
		return nil, err
	}
	select {
	case m := <-ch:
		if m["StatusCode"] != float64(200) {
			return m, fmt.Errorf("%s: %v %v", action, m["StatusCode"], m["ErrorMessage"])
		}
		return m, nil
	case <-time.After(30 * time.Second):
		return nil, fmt.Errorf("%s: no answer in 30 s", action)
	}
}

func (p *process) close() { _ = p.conn.Close() }

// The child process: the game server processes, driven over stdin, answering on stdout.

// childEnv marks the child; its settings come in the environment.
const childEnv = "BENCH_GAMESERVERS_CHILD"

// child is the running child process, as the parent drives it.
type child struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

// startChild starts the child, which connects the processes and registers them (ProcessReady).
func startChild(sdkAddr string, processes int, tokens []string) (*child, error) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"=1", "BENCH_SDK_ADDR="+sdkAddr, fmt.Sprint("BENCH_PROCESSES=", processes), "BENCH_TOKENS="+strings.Join(tokens, ","))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	c.out.Buffer(make([]byte, 1<<20), 64<<20)
	if _, err := c.ask("", "ready"); err != nil {
		return nil, err
	}
	return c, nil
}

// ask sends a command (none when empty) and waits for the answer line starting with word; it returns the
// rest of that line.
func (c *child) ask(command, word string) ([]string, error) {
	if command != "" {
		if _, err := fmt.Fprintln(c.in, command); err != nil {
			return nil, err
		}
	}
	for c.out.Scan() {
		if rest, ok := strings.CutPrefix(c.out.Text(), word); ok {
			return []string{strings.TrimSpace(rest)}, nil
		}
		if rest, ok := strings.CutPrefix(c.out.Text(), "error "); ok {
			return nil, fmt.Errorf("child: %s", rest)
		}
	}
	return nil, fmt.Errorf("child: no %q answer: %v", word, c.out.Err())
}

func (c *child) quit() {
	_, _ = fmt.Fprintln(c.in, "quit")
	_ = c.cmd.Wait()
}

// runChild is the child: it connects the processes, registers them, and serves the parent's commands.
func runChild() error {
	addr := os.Getenv("BENCH_SDK_ADDR")
	processes, _ := strconv.Atoi(os.Getenv("BENCH_PROCESSES"))
	tokens := strings.Split(os.Getenv("BENCH_TOKENS"), ",")
	procs := make([]*process, processes)
	if err := benchutil.Parallel(32, processes, func(i int) error {
		p, err := dial(addr, fmt.Sprintf("compute-%d", i/perCompute), fmt.Sprintf("proc-%d", i), tokens[i/perCompute])
		procs[i] = p
		return err
	}); err != nil {
		return err
	}
	if err := benchutil.Parallel(32, processes, func(i int) error {
		_, err := procs[i].call("ActivateServerProcess", map[string]any{"SdkVersion": "5.6.0", "SdkLanguage": "Go", "Port": 7000 + i%perCompute, "LogPaths": []string{}})
		return err
	}); err != nil {
		return err
	}
	byGame := sync.Map{} // GameSessionId -> *process
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 64<<20)
	for in.Scan() {
		fields := strings.Fields(in.Text())
		if len(fields) == 0 {
			continue
		}
		switch fields[0] {
		case "heartbeat":
			every, _ := time.ParseDuration(fields[1])
			window, _ := time.ParseDuration(fields[2])
			fmt.Println("heartbeats", heartbeats(procs, every, window))
		case "activate":
			for _, p := range procs {
				p.mu.Lock()
				p.onPush = func(m map[string]any) {
					if m["Action"] == "CreateGameSession" {
						id, _ := m["GameSessionId"].(string)
						byGame.Store(id, p)
						go func() { _, _ = p.call("ActivateGameSession", map[string]any{"GameSessionId": id}) }()
					}
				}
				p.mu.Unlock()
			}
			fmt.Println("activating")
		case "accept":
			rate, _ := strconv.ParseFloat(fields[1], 64)
			var players [][2]string
			for in.Scan() && in.Text() != "end" {
				if f := strings.Fields(in.Text()); len(f) == 2 {
					players = append(players, [2]string{f[0], f[1]})
				}
			}
			fmt.Println("accepted", strings.Join(accept(&byGame, players, rate), " "))
		case "quit":
			for _, p := range procs {
				p.close()
			}
			return nil
		}
	}
	return in.Err()
}

// heartbeats sends each process's heartbeat every interval, spread over it, for window; it returns how many
// were answered.
func heartbeats(procs []*process, every, window time.Duration) int64 {
	var beats atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), window)
	defer cancel()
	var wg sync.WaitGroup
	for i, p := range procs {
		wg.Go(func() {
			select {
			case <-time.After(time.Duration(i) * every / time.Duration(len(procs))):
			case <-ctx.Done():
				return
			}
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				if _, err := p.call("HeartbeatServerProcess", map[string]any{"HealthStatus": true}); err == nil {
					beats.Add(1)
				}
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		})
	}
	wg.Wait()
	return beats.Load()
}

// accept has each player's process accept it, at rate per second in all; it returns the round trips
// (nanoseconds) of those answered 200.
func accept(byGame *sync.Map, players [][2]string, rate float64) []string {
	var mu sync.Mutex
	var rtts []string
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	var wg sync.WaitGroup
	for _, pl := range players {
		<-tick.C
		v, ok := byGame.Load(pl[0])
		if !ok {
			continue
		}
		p := v.(*process)
		wg.Go(func() {
			t0 := time.Now()
			if _, err := p.call("AcceptPlayerSession", map[string]any{"GameSessionId": pl[0], "PlayerSessionId": pl[1]}); err != nil {
				return
			}
			mu.Lock()
			rtts = append(rtts, strconv.FormatInt(int64(time.Since(t0)), 10))
			mu.Unlock()
		})
	}
	wg.Wait()
	return rtts
}
