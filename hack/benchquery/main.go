// Command benchquery measures the query API against the alternatives, side by side in one run:
//
//	(a) the query API (query.playersessions.dev, through kube-apiserver's aggregator),
//	(b) a CRD field selector on kube-apiserver (spec.gameSessionName=..., spec.playerId=...),
//	(c) a list of everything plus a client-side filter,
//
// for "player sessions of one game session" and "sessions of one player", with N player sessions stored
// in a local control plane; then, in-process, the index alone at 10k, 100k and 1M and its heap per
// indexed session. See docs/benchmarks.md.
//
//	KUBEBUILDER_ASSETS=$(hack/envtest-binaries.sh) go run ./hack/benchquery -sizes 10000,100000
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	gl "github.com/aws/aws-sdk-go-v2/service/gamelift"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/hack/benchutil"
	"github.com/playersessions/operator/internal/gamelift"
	"github.com/playersessions/operator/internal/index"
	"github.com/playersessions/operator/internal/indexes"
	"github.com/playersessions/operator/internal/localcp"
	"github.com/playersessions/operator/internal/manager"
	"github.com/playersessions/operator/internal/query"
)

var (
	withStatus bool
	breakdown  *bool
	cpuProfile *string
)

const (
	ns             = "bench"
	perGameSession = 10 // player sessions per game session
	perPlayer      = 2  // player sessions per player
)

func main() {
	sizes := flag.String("sizes", "10000,100000", "Stored player sessions for the through-the-API-servers comparison.")
	inproc := flag.String("inprocess-sizes", "10000,100000,1000000", "Player sessions for the in-process index measurement.")
	iterations := flag.Int("iterations", 200, "Queries per measurement (list-all: at most 5).")
	cpuProfile = flag.String("cpuprofile", "", "With -breakdown: write a CPU profile of this process (the manager and the client) during the aggregated queries to this file.")
	breakdown = flag.Bool("breakdown", false, "Also split the query API's latency: kube-apiserver alone (/version, a CRD get by name) and the query server alone (straight to its port).")
	withGameLift := flag.Bool("gamelift", false, "Also measure DescribePlayerSessions through the GameLift endpoint (signed requests from aws-sdk-go-v2).")
	flag.BoolVar(&withStatus, "status", true, "Give every player session the status the controllers write (RESERVED, ids, endpoint, Admitted condition); false stores spec-only objects.")
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.Level(zapcore.ErrorLevel)))
	if *withGameLift && !withStatus {
		fmt.Fprintln(os.Stderr, "benchquery: -gamelift needs -status")
		os.Exit(2)
	}
	for _, n := range parseSizes(*sizes) {
		if err := throughAPIServers(n, *iterations, *withGameLift); err != nil {
			fmt.Fprintln(os.Stderr, "benchquery:", err)
			os.Exit(1)
		}
	}
	for _, n := range parseSizes(*inproc) {
		inProcess(n)
	}
}

func parseSizes(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out
}

// playerSession is the i-th benchmark player session, with the status the controllers write when they
// reserve its seat (every player session in a cluster has one within milliseconds of its creation).
func playerSession(i int) *gamev1.PlayerSession {
	gsName := fmt.Sprintf("gs-%06d", i/perGameSession)
	now := metav1.NowMicro()
	return &gamev1.PlayerSession{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("ps-%07d", i)},
		Spec: gamev1.PlayerSessionSpec{
			GameSessionName: gsName,
			PlayerID:        fmt.Sprintf("player-%07d", i/perPlayer),
		},
		Status: gamev1.PlayerSessionStatus{
			PlayerSessionID: fmt.Sprintf("psess-%07d", i),
			Status:          gamev1.PlayerSessionReserved,
			GameSessionID:   "arn:aws:gamelift:local::gamesession/fleet-bench/" + gsName,
			FleetID:         "fleet-bench",
			FleetArn:        "arn:aws:gamelift:local:000000000000:fleet/fleet-bench",
			CreationTime:    &now,
			Endpoint:        gamev1.Endpoint{IPAddress: "10.0.0.1", DNSName: "gs.example.com", Port: 7777},
			Conditions: []metav1.Condition{{
				Type: gamev1.AdmittedCondition, Status: metav1.ConditionTrue, Reason: gamev1.SeatReservedReason,
				Message: "Seat reserved in game session " + gsName, LastTransitionTime: metav1.Now(), ObservedGeneration: 1,
			}},
			ObservedGeneration: 1,
		},
	}
}

func throughAPIServers(n, iterations int, withGameLift bool) error {
	// The manager without its controllers' work: nothing reconciles, the index only follows the cache.
	opts := benchutil.ManagerOptions()
	opts.DisableControllers = true
	if withGameLift {
		var err error
		if opts.GameLiftAddr, err = benchutil.FreeAddr(); err != nil {
			return err
		}
	}
	cp, stopCP, err := benchutil.ControlPlaneWithQueryAPI(localcp.Options{}, &opts)
	if err != nil {
		return err
	}
	defer stopCP()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mgr, err := benchutil.StartManager(ctx, cp.Config, opts)
	if err != nil {
		return err
	}

	cfg := rest.CopyConfig(cp.Config)
	cfg.QPS, cfg.Burst = 5000, 10000
	if os.Getenv("BENCH_HTTP1") != "" {
		cfg.TLSClientConfig.NextProtos = []string{"http/1.1"}
	}
	c, err := client.New(cfg, client.Options{Scheme: manager.Scheme()})
	if err != nil {
		return err
	}
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return err
	}
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for range 48 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				ps := playerSession(i)
				status := ps.Status
				ps.Status = gamev1.PlayerSessionStatus{}
				if err := c.Create(ctx, ps); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				if withStatus { // what the controllers write when they reserve a seat
					ps.Status = status
					if err := c.Status().Update(ctx, ps); err != nil {
						firstErr.CompareAndSwap(nil, err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return err
	}
	fmt.Printf("\n== %d player sessions stored (created in %s); the query API's index holds them\n", n, time.Since(start).Round(time.Second))
	for mgr.Index.Len() < n {
		time.Sleep(100 * time.Millisecond)
	}
	rc, err := rest.UnversionedRESTClientFor(withJSON(cfg))
	if err != nil {
		return err
	}
	// read sends r and reads the whole body, as every measurement here does.
	read := func(r *rest.Request) (int, error) {
		body, err := r.Stream(ctx)
		if err != nil {
			return 0, err
		}
		defer body.Close()
		b, err := io.ReadAll(body)
		return len(b), err
	}
	get := func(path, fieldSelector string) (int, error) {
		req := rc.Get().AbsPath(path)
		if fieldSelector != "" {
			req = req.Param("fieldSelector", fieldSelector)
		}
		return read(req)
	}
	const (
		queryPath = "/apis/query.playersessions.dev/v1alpha1/playersessions"
		crdPath   = "/apis/game.playersessions.dev/v1alpha1/playersessions"
	)
	cases := []struct{ name, queryField, crdField, value string }{
		{"sessions of one game session", "gameSessionName", "spec.gameSessionName", fmt.Sprintf("gs-%06d", n/perGameSession/2)},
		{"sessions of one player", "playerId", "spec.playerId", fmt.Sprintf("player-%07d", n/perPlayer/2)},
	}
	// Warm up every path once (discovery, connections, watch cache).
	for _, cs := range cases {
		_, _ = get(queryPath, cs.queryField+"="+cs.value)
		_, _ = get(crdPath, cs.crdField+"="+cs.value)
	}
	for _, cs := range cases {
		a := measure(iterations, func() error { _, err := get(queryPath, cs.queryField+"="+cs.value); return err })
		b := measure(iterations, func() error { _, err := get(crdPath, cs.crdField+"="+cs.value); return err })
		var size int
		cl := measure(min(iterations, 5), func() error {
			var err error
			size, err = get(crdPath, "")
			return err
		})
		fmt.Printf("%-30s (a) query API      %s\n", cs.name, a)
		fmt.Printf("%-30s (b) CRD selector   %s  (%.0fx the query API at p50)\n", "", b, float64(b.p50)/float64(a.p50))
		fmt.Printf("%-30s (c) list all+filter %s  (%d MB per list)\n", "", cl, size>>20)
	}
	if *breakdown {
		direct := rest.CopyConfig(cfg)
		direct.Host = fmt.Sprintf("https://127.0.0.1:%d", opts.QueryPort)
		direct.TLSClientConfig.CAData, direct.TLSClientConfig.CAFile, direct.TLSClientConfig.Insecure = nil, "", true // the serving CA is only in the APIService
		drc, err := rest.UnversionedRESTClientFor(withJSON(direct))
		if err != nil {
			return err
		}
		cs := cases[0]
		for _, p := range []struct {
			name string
			req  func() *rest.Request
		}{
			{"kube-apiserver GET /version", func() *rest.Request { return rc.Get().AbsPath("/version") }},
			{"kube-apiserver CRD get by name", func() *rest.Request {
				return rc.Get().AbsPath(crdPath[:len(crdPath)-len("playersessions")] + "namespaces/" + ns + "/playersessions/ps-0000001")
			}},
			{"query API via aggregator", func() *rest.Request {
				return rc.Get().AbsPath(queryPath).Param("fieldSelector", cs.queryField+"="+cs.value)
			}},
			{"query server direct", func() *rest.Request {
				return drc.Get().AbsPath(queryPath).Param("fieldSelector", cs.queryField+"="+cs.value)
			}},
			{"query server direct /healthz", func() *rest.Request { return drc.Get().AbsPath("/healthz") }},
		} {
			_, _ = read(p.req())
			if *cpuProfile != "" && p.name == "query API via aggregator" {
				f, err := os.Create(*cpuProfile)
				if err != nil {
					return err
				}
				_ = pprof.StartCPUProfile(f)
				fmt.Printf("breakdown %-32s %s (profiled)\n", p.name, measure(iterations, func() error { _, err := read(p.req()); return err }))
				pprof.StopCPUProfile()
				_ = f.Close()
			}
			fmt.Printf("breakdown %-32s %s\n", p.name, measure(iterations, func() error { _, err := read(p.req()); return err }))
		}
	}
	if withGameLift {
		return benchGameLift(ctx, c, "http://"+opts.GameLiftAddr, n, iterations)
	}
	return nil
}

// stats are the latencies of n calls and the CPU time they cost, per call: this process's (the manager and
// the client) and the whole machine's (kube-apiserver and etcd too).
type stats struct {
	p50, p99, max       time.Duration
	selfCPU, machineCPU time.Duration
	gcs                 uint32 // garbage collections of this process during the calls
}

func (s stats) String() string {
	out := fmt.Sprintf("p50=%-9s p99=%-9s max=%-9s", s.p50.Round(10*time.Microsecond), s.p99.Round(10*time.Microsecond), s.max.Round(10*time.Microsecond))
	if s.selfCPU > 0 {
		out += fmt.Sprintf(" cpu/call: this process %s, machine %s; %d GC", s.selfCPU.Round(10*time.Microsecond), s.machineCPU.Round(10*time.Microsecond), s.gcs)
	}
	return out
}

// measure settles, then times n sequential calls of f.
func measure(n int, f func() error) stats {
	settle()
	d := make([]time.Duration, 0, n)
	self0, busy0 := processCPU(), machineBusy()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	gc0 := ms.NumGC
	for range n {
		t := time.Now()
		if err := f(); err != nil {
			fmt.Fprintln(os.Stderr, "benchquery:", err)
			os.Exit(1)
		}
		d = append(d, time.Since(t))
	}
	self, busy := processCPU()-self0, machineBusy()-busy0
	runtime.ReadMemStats(&ms)
	slices.Sort(d)
	return stats{p50: d[len(d)/2], p99: d[min(len(d)-1, len(d)*99/100)], max: d[len(d)-1],
		selfCPU: self / time.Duration(n), machineCPU: busy / time.Duration(n), gcs: ms.NumGC - gc0}
}

// processCPU is the CPU time (user and system) this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// machineBusy is the CPU time the machine's cores have been busy (/proc/stat counts 100 ticks a second).
func machineBusy() time.Duration {
	busy, _ := cpuTime()
	return time.Duration(busy) * 10 * time.Millisecond
}

// settle waits (at most a minute) until the machine is quiet, under 10 % of its CPU time busy over one
// second, after collecting this process's garbage, so that every measurement starts from the same state:
// after 100,000 creates etcd and kube-apiserver go on compacting and collecting garbage for a while, and a
// list of everything leaves tens of megabytes to collect in kube-apiserver and here.
func settle() {
	runtime.GC()
	busy := 0.0
	for start := time.Now(); time.Since(start) < time.Minute; {
		busy0, total0 := cpuTime()
		time.Sleep(time.Second)
		busy1, total1 := cpuTime()
		if total1 <= total0 {
			return
		}
		if busy = float64(busy1-busy0) / float64(total1-total0); busy < 0.10 {
			return
		}
	}
	fmt.Printf("(the machine was still %.0f %% busy after a minute; measuring anyway)\n", 100*busy)
}

// cpuTime reads the busy and total CPU time of the machine from /proc/stat, in clock ticks.
func cpuTime() (busy, total uint64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	fields := strings.Fields(line)
	for i, f := range fields[1:min(len(fields), 9)] { // user nice system idle iowait irq softirq steal
		v, _ := strconv.ParseUint(f, 10, 64)
		total += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, total
}

// inProcess loads the index directly with n player sessions (as the informer would, with the objects the
// cache transform leaves) and measures the same queries against it, and its heap per indexed session.
func inProcess(n int) {
	objs := make([]*gamev1.PlayerSession, n)
	time.Sleep(2 * time.Second) // let a manager stopped before this finish releasing its cache
	runtime.GC()
	runtime.GC()
	var m0, m1, m2 runtime.MemStats
	runtime.ReadMemStats(&m0)
	for i := range n {
		ps := playerSession(i)
		ps.ResourceVersion = strconv.Itoa(i + 1)
		ps.UID = "00000000-0000-0000-0000-000000000000"
		_, _ = indexes.StripForCache(ps)
		objs[i] = ps
	}
	runtime.GC()
	runtime.ReadMemStats(&m1)
	ix := index.NewIndex(clock.RealClock{}, 5*time.Minute)
	for _, ps := range objs {
		ix.Upsert(ps)
	}
	runtime.GC()
	runtime.ReadMemStats(&m2)
	objectBytes := float64(m1.HeapAlloc-m0.HeapAlloc) / float64(n)
	indexBytes := float64(m2.HeapAlloc-m1.HeapAlloc) / float64(n)
	tokens := index.NewTokens([]byte("k"))
	fmt.Printf("\n== in-process index, %d player sessions: index %.0f B/session on top of the cached objects (%.0f B/session)\n", n, indexBytes, objectBytes)
	for _, cs := range []struct {
		name string
		q    index.Query
	}{
		{"sessions of one game session", index.Query{Fields: map[string]string{index.FieldGameSessionName: fmt.Sprintf("gs-%06d", n/perGameSession/2)}}},
		{"sessions of one player", index.Query{Fields: map[string]string{index.FieldPlayerID: fmt.Sprintf("player-%07d", n/perPlayer/2)}}},
	} {
		var got int
		r := testing.Benchmark(func(b *testing.B) {
			for b.Loop() {
				p, _ := ix.List(context.Background(), cs.q, index.ListOptions{}, tokens)
				got = len(p.Items)
			}
		})
		fmt.Printf("%-30s index.List %8d ns/op %6d B/op (%d results)\n", cs.name, r.NsPerOp(), r.AllocedBytesPerOp(), got)
	}
	runtime.KeepAlive(objs)
}

func withJSON(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.AcceptContentTypes = "application/json"
	c.GroupVersion = &metav1.SchemeGroupVersion
	c.NegotiatedSerializer = query.Codecs.WithoutConversion()
	return c
}

// benchGameLift measures DescribePlayerSessions through the GameLift endpoint with aws-sdk-go-v2 (signed,
// RPC v2 CBOR): latency of sequential calls, then requests per second from 8 concurrent clients for 10 s.
func benchGameLift(ctx context.Context, c client.Client, url string, n, iterations int) error {
	if err := gamelift.CreateAccessKey(ctx, c, gamelift.DefaultKeyNamespace, "bench-key", ns, "AKIDBENCH", "bench-secret"); err != nil {
		return err
	}
	sdk := gl.New(gl.Options{Region: "us-east-1", BaseEndpoint: aws.String(url), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDBENCH", "bench-secret", "")})
	gsid := fmt.Sprintf("arn:aws:gamelift:local::gamesession/fleet-bench/gs-%06d", n/perGameSession/2)
	player := fmt.Sprintf("player-%07d", n/perPlayer/2)
	for start := time.Now(); ; {
		out, err := sdk.DescribePlayerSessions(ctx, &gl.DescribePlayerSessionsInput{GameSessionId: aws.String(gsid)})
		if err == nil && len(out.PlayerSessions) == perGameSession {
			break
		}
		if time.Since(start) > time.Minute {
			return fmt.Errorf("the GameLift endpoint does not answer: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, cs := range []struct {
		name string
		in   *gl.DescribePlayerSessionsInput
	}{
		{"sessions of one game session", &gl.DescribePlayerSessionsInput{GameSessionId: aws.String(gsid)}},
		{"sessions of one player", &gl.DescribePlayerSessionsInput{PlayerId: aws.String(player)}},
	} {
		call := func() error { _, err := sdk.DescribePlayerSessions(ctx, cs.in); return err }
		lat := measure(iterations, call)
		var done atomic.Int64
		var wg sync.WaitGroup
		stop := time.Now().Add(10 * time.Second)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(stop) {
					if call() == nil {
						done.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		fmt.Printf("%-30s (d) GameLift DescribePlayerSessions (Go SDK, signed, CBOR) %s; %d requests/s from 8 clients\n", cs.name, lat, done.Load()/10)
	}
	return nil
}
