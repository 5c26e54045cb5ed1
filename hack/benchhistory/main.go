// Command benchhistory measures the history store at scale (issue 13): N ended player sessions over 30
// days in a real PostgreSQL (hack/postgres.sh), then DescribePlayerSessions by player, by game session
// and by id through the GameLift endpoint, and the same questions through the query API (kube-apiserver's
// aggregator), p50 / p99; the store's archival rate with the controllers' pattern (one record per call,
// 16 at once); and kube-apiserver's and the manager's memory before and after the store grew.
//
//	KUBEBUILDER_ASSETS=$(hack/envtest-binaries.sh) go run ./hack/benchhistory -records 10000000
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	gl "github.com/aws/aws-sdk-go-v2/service/gamelift"
	"github.com/jackc/pgx/v5"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/hack/benchutil"
	"github.com/playersessions/operator/internal/gamelift"
	"github.com/playersessions/operator/internal/history"
	"github.com/playersessions/operator/internal/localcp"
	"github.com/playersessions/operator/internal/manager"
	queryv1 "github.com/playersessions/operator/internal/query/v1alpha1"
)

const ns = "history"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "benchhistory:", err)
		os.Exit(1)
	}
}

func run() error {
	records := flag.Int("records", 1000000, "Ended player sessions to store, over 30 days.")
	iterations := flag.Int("iterations", 200, "Calls per question.")
	loaders := flag.Int("loaders", 4, "Concurrent bulk loaders.")
	analyze := flag.Bool("analyze", true, "ANALYZE after the load, as autovacuum would before long, so the planner has statistics.")
	cpuProfile := flag.String("cpuprofile", "", "Write a CPU profile of this process (the managers and the clients) over the describe calls to this file.")
	liveN := flag.Int("live", 2000, "Live player sessions (custom resources, 10 per game session, 20 per player) for the live-only figures.")
	flag.Parse()
	totalPlayers = max(1, *records/players20)
	ctrl.SetLogger(zap.New(zap.Level(zapcore.ErrorLevel)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	port, err := benchutil.FreePort()
	if err != nil {
		return err
	}
	out, err := exec.Command("hack/postgres.sh", "start", strconv.Itoa(port)).Output()
	if err != nil {
		return fmt.Errorf("hack/postgres.sh: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	defer func() { _ = exec.Command("hack/postgres.sh", "stop", lines[0]).Run() }()
	url := lines[len(lines)-1]

	glAddr, err := benchutil.FreeAddr()
	if err != nil {
		return err
	}
	opts := readOnly(glAddr)
	opts.HistoryStore = url
	cp, stopCP, err := benchutil.ControlPlaneWithQueryAPI(localcp.Options{}, &opts)
	if err != nil {
		return err
	}
	defer stopCP()
	if _, err := benchutil.StartManager(ctx, cp.Config, opts); err != nil {
		return err
	}
	c, err := client.New(cp.Config, client.Options{Scheme: manager.Scheme()})
	if err != nil {
		return err
	}
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return err
	}
	if err := gamelift.CreateAccessKey(ctx, c, gamelift.DefaultKeyNamespace, "gamelift-key", ns, "AKIDHIST", "secret"); err != nil {
		return err
	}
	store, err := history.Open(ctx, url, clock.RealClock{}, 30*24*time.Hour)
	if err != nil {
		return err
	}
	defer store.Close()
	time.Sleep(10 * time.Second)
	before := memory(cp)

	// The controllers' pattern: one record per call, 16 at once (their workers), for 20 s.
	now := time.Now()
	var archived atomic.Int64
	stop := time.Now().Add(20 * time.Second)
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := 0; time.Now().Before(stop); i++ {
				if err := store.Archive(ctx, []history.Record{rec(*records+w*1_000_000+i, now)}); err != nil {
					fmt.Fprintln(os.Stderr, err)
					return
				}
				archived.Add(1)
			}
		})
	}
	wg.Wait()
	fmt.Printf("archival, one record per call, 16 concurrent: %.0f records/s\n", float64(archived.Load())/20)

	// The bulk: N records over 30 days, in batches.
	start := time.Now()
	const batch = 2000
	if err := benchutil.Parallel(*loaders, (*records+batch-1)/batch, func(b int) error {
		recs := make([]history.Record, 0, batch)
		for i := b * batch; i < min((b+1)*batch, *records); i++ {
			recs = append(recs, rec(i, now))
		}
		return store.Archive(ctx, recs)
	}); err != nil {
		return err
	}
	took := time.Since(start)
	if *analyze {
		// What autovacuum does some time after a bulk load: statistics for the planner.
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			return err
		}
		if _, err := conn.Exec(ctx, "ANALYZE"); err != nil {
			return err
		}
		_ = conn.Close(ctx)
	}
	fmt.Printf("loaded %d records in %s: %.0f records/s (batches of %d, %d loaders)\n", *records, took.Round(time.Second), float64(*records)/took.Seconds(), batch, *loaders)
	time.Sleep(10 * time.Second)
	after := memory(cp)
	fmt.Printf("kube-apiserver RSS %s -> %s; manager heap %s -> %s\n", mb(before[0]), mb(after[0]), mb(before[1]), mb(after[1]))

	sdk := gl.New(gl.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + glAddr),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDHIST", "secret", ""), RetryMaxAttempts: 1})
	if err := benchutil.WaitFor(ctx, 30*time.Second, func() bool {
		_, err := sdk.DescribePlayerSessions(ctx, &gl.DescribePlayerSessionsInput{PlayerId: aws.String("player-0")})
		return err == nil
	}); err != nil {
		return fmt.Errorf("GameLift endpoint: %w", err)
	}
	dyn := dynamic.NewForConfigOrDie(cp.Config).Resource(queryv1.SchemeGroupVersion.WithResource("playersessions")).Namespace(ns)
	if err := benchutil.WaitFor(ctx, 60*time.Second, func() bool {
		_, err := dyn.List(ctx, metav1.ListOptions{FieldSelector: "playerId=player-0"})
		return err == nil
	}); err != nil {
		return fmt.Errorf("query API: %w", err)
	}
	// Live-only figures in the same run, to compare with: live player sessions (custom resources with the
	// status the controllers write), asked of a second endpoint whose manager has no history store, and
	// of the first one, which asks the store too.
	liveSDK, err := liveOnly(ctx, cp, c, *liveN)
	if err != nil {
		return fmt.Errorf("live-only endpoint: %w", err)
	}
	if err := benchutil.WaitFor(ctx, 60*time.Second, func() bool {
		o, err := sdk.DescribePlayerSessions(ctx, &gl.DescribePlayerSessionsInput{PlayerSessionId: aws.String(livePSID(*liveN - 1))})
		return err == nil && len(o.PlayerSessions) == 1
	}); err != nil {
		return fmt.Errorf("live player sessions on the first endpoint: %w", err)
	}

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	players, games := *records/players20, *records/10
	type question struct {
		name  string
		input func(live bool) *gl.DescribePlayerSessionsInput
		query func() (int, error)
	}
	pick := func(n int) int { return rnd.IntN(n) }
	for _, q := range []question{
		{"one player (20)", func(live bool) *gl.DescribePlayerSessionsInput {
			if live {
				return &gl.DescribePlayerSessionsInput{PlayerId: aws.String(livePlayer(pick(*liveN / players20)))}
			}
			return &gl.DescribePlayerSessionsInput{PlayerId: aws.String(fmt.Sprintf("player-%d", pick(players)))}
		}, func() (int, error) {
			l, err := dyn.List(ctx, metav1.ListOptions{FieldSelector: fmt.Sprintf("playerId=player-%d", pick(players))})
			if err != nil {
				return 0, err
			}
			return len(l.Items), nil
		}},
		{"one game session (10)", func(live bool) *gl.DescribePlayerSessionsInput {
			if live {
				return &gl.DescribePlayerSessionsInput{GameSessionId: aws.String(liveGameID(pick(*liveN / 10)))}
			}
			return &gl.DescribePlayerSessionsInput{GameSessionId: aws.String(gameID(pick(games)))}
		}, func() (int, error) {
			l, err := dyn.List(ctx, metav1.ListOptions{FieldSelector: "gameSessionId=" + gameID(pick(games))})
			if err != nil {
				return 0, err
			}
			return len(l.Items), nil
		}},
		{"one player session (1)", func(live bool) *gl.DescribePlayerSessionsInput {
			if live {
				return &gl.DescribePlayerSessionsInput{PlayerSessionId: aws.String(livePSID(pick(*liveN)))}
			}
			return &gl.DescribePlayerSessionsInput{PlayerSessionId: aws.String(psID(pick(*records)))}
		}, func() (int, error) {
			l, err := dyn.List(ctx, metav1.ListOptions{FieldSelector: "playerSessionId=" + psID(pick(*records))})
			if err != nil {
				return 0, err
			}
			return len(l.Items), nil
		}},
	} {
		describe := func(c *gl.Client, live bool) func() (int, error) {
			return func() (int, error) { return lenOr(c.DescribePlayerSessions(ctx, q.input(live))) }
		}
		var lat [3][]time.Duration
		var n [3]float64
		for k, call := range []func() (int, error){describe(liveSDK, true), describe(sdk, true), describe(sdk, false)} {
			if lat[k], n[k], err = time200(*iterations, call); err != nil {
				return fmt.Errorf("%s, GameLift: %w", q.name, err)
			}
		}
		storeLat, nStore, err := time200(*iterations, func() (int, error) {
			in := q.input(false)
			recs, err := store.List(ctx, history.Query{Namespace: ns, PlayerID: aws.ToString(in.PlayerId),
				GameSessionID: aws.ToString(in.GameSessionId), PlayerSessionID: aws.ToString(in.PlayerSessionId)}, history.Key{}, 100)
			return len(recs), err
		})
		if err != nil {
			return fmt.Errorf("%s, store: %w", q.name, err)
		}
		qa, nq, err := time200(*iterations, q.query)
		if err != nil {
			return fmt.Errorf("%s, query API: %w", q.name, err)
		}
		ratio := float64(p50(lat[2])) / float64(p50(lat[0]))
		fmt.Printf("%s, GameLift:\n  live-only (no store)  %s (%.1f results)\n  live, store on        %s (%.1f results)\n  archived              %s (%.1f results): p50 %.1f x live-only\n", q.name, benchutil.Summary(lat[0]), n[0], benchutil.Summary(lat[1]), n[1], benchutil.Summary(lat[2]), n[2], ratio)
		fmt.Printf("  the store's share     %s (%.1f records; Store.List from this process)\n", benchutil.Summary(storeLat), nStore)
		fmt.Printf("  query API, archived   %s (%.1f results)\n", benchutil.Summary(qa), nq)
	}
	return nil
}

// players20: each player has about 20 sessions in the 30 days.
const players20 = 20

func gameID(g int) string {
	return fmt.Sprintf("arn:aws:gamelift:local::gamesession/fleet-h/gsess-%08d", g)
}
func psID(i int) string { return fmt.Sprintf("psess-%09d", i) }

// rec is ended player session i: game session i/10, player i%(records/20)... spread so that each player
// has about 20 sessions; game sessions end over the last 30 days.
func rec(i int, now time.Time) history.Record {
	g := i / 10
	ended := now.Add(-time.Duration(g%30)*24*time.Hour - time.Duration(g%86400)*time.Second)
	name := fmt.Sprintf("ps-%09d", i)
	player := fmt.Sprintf("player-%d", (i*7919)%totalPlayers)
	obj := fmt.Sprintf(`{"apiVersion":"game.playersessions.dev/v1alpha1","kind":"PlayerSession","metadata":{"name":%q,"namespace":%q,"uid":"00000000-0000-0000-0000-%012d","resourceVersion":"1","generation":1,"creationTimestamp":%q},"spec":{"gameSessionName":"gs-%08d","playerId":%q},"status":{"playerSessionId":%q,"status":"COMPLETED","gameSessionId":%q,"fleetId":"fleet-h","fleetArn":"arn:aws:gamelift:local:000000000000:fleet/fleet-h","creationTime":%q,"terminationTime":%q,"gameSessionTerminationTime":%q,"ipAddress":"10.0.0.1","port":7777,"observedGeneration":1}}`,
		name, ns, i, ended.UTC().Format(time.RFC3339), g, player, psID(i), gameID(g), micro(ended), micro(ended), micro(ended))
	return history.Record{Namespace: ns, Name: name, PlayerSessionID: psID(i), GameSessionID: gameID(g), PlayerID: player,
		Status: "COMPLETED", GameSessionEndedAt: ended, Object: []byte(obj)}
}

// micro is t as a MicroTime in JSON.
func micro(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z07:00") }

// totalPlayers is records/20, set once the flag is read.
var totalPlayers int

func lenOr(o *gl.DescribePlayerSessionsOutput, err error) (int, error) {
	if err != nil {
		return 0, err
	}
	return len(o.PlayerSessions), nil
}

func time200(n int, f func() (int, error)) ([]time.Duration, float64, error) {
	var d []time.Duration
	total := 0
	for range n {
		start := time.Now()
		k, err := f()
		if err != nil {
			return nil, 0, err
		}
		d = append(d, time.Since(start))
		total += k
	}
	return d, float64(total) / float64(n), nil
}

// memory is kube-apiserver's resident memory and this process's heap in use after a collection.
func memory(cp *localcp.ControlPlane) [2]float64 {
	var out [2]float64
	out[0] = benchutil.RSSOf("kube-apiserver", "--etcd-servers="+cp.EtcdURL())
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	out[1] = float64(ms.HeapInuse)
	return out
}

func mb(b float64) string { return fmt.Sprintf("%.0f MB", b/1024/1024) }

// The live player sessions: live-ps-i in game session i/10, player i%(live/20), each with a GameLift id.
func livePSID(i int) string { return fmt.Sprintf("psess-live-%07d", i) }
func liveGameID(g int) string {
	return fmt.Sprintf("arn:aws:gamelift:local::gamesession/fleet-live/gsess-live-%06d", g)
}
func livePlayer(p int) string { return fmt.Sprintf("live-player-%d", p) }

// liveOnly creates n live player sessions with the status the controllers write when they reserve a
// seat, starts a second manager (GameLift endpoint only, no history store, no controllers) and returns a
// client of its endpoint once its index holds them all.
func liveOnly(ctx context.Context, cp *localcp.ControlPlane, c client.Client, n int) (*gl.Client, error) {
	players := max(1, n/players20)
	now := metav1.NowMicro()
	if err := benchutil.Parallel(16, n, func(i int) error {
		gsName := fmt.Sprintf("live-gs-%06d", i/10)
		ps := &gamev1.PlayerSession{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("live-ps-%07d", i)},
			Spec:       gamev1.PlayerSessionSpec{GameSessionName: gsName, PlayerID: livePlayer(i % players)},
		}
		if err := c.Create(ctx, ps); err != nil {
			return err
		}
		ps.Status = gamev1.PlayerSessionStatus{
			PlayerSessionID: livePSID(i), Status: gamev1.PlayerSessionReserved, GameSessionID: liveGameID(i / 10),
			FleetID: "fleet-live", FleetArn: "arn:aws:gamelift:local:000000000000:fleet/fleet-live", CreationTime: &now,
			Endpoint: gamev1.Endpoint{IPAddress: "10.0.0.1", DNSName: "gs.example.com", Port: 7777},
			Conditions: []metav1.Condition{{Type: gamev1.AdmittedCondition, Status: metav1.ConditionTrue, Reason: gamev1.SeatReservedReason,
				Message: "Seat reserved in game session " + gsName, LastTransitionTime: metav1.Now(), ObservedGeneration: 1}},
			ObservedGeneration: 1,
		}
		return c.Status().Update(ctx, ps)
	}); err != nil {
		return nil, err
	}
	addr, err := benchutil.FreeAddr()
	if err != nil {
		return nil, err
	}
	if _, err := benchutil.StartManager(ctx, cp.Config, readOnly(addr)); err != nil {
		return nil, err
	}
	sdk := gl.New(gl.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + addr),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDHIST", "secret", ""), RetryMaxAttempts: 1})
	return sdk, benchutil.WaitFor(ctx, 60*time.Second, func() bool {
		o, err := sdk.DescribePlayerSessions(ctx, &gl.DescribePlayerSessionsInput{PlayerSessionId: aws.String(livePSID(n - 1))})
		return err == nil && len(o.PlayerSessions) == 1
	})
}

// readOnly is a manager that serves the GameLift endpoint at addr from its cache and index, without
// controllers or Agones: the read path alone.
func readOnly(addr string) manager.Options {
	opts := benchutil.ManagerOptions()
	opts.DisableControllers, opts.DisableAgones, opts.GameLiftAddr = true, true, addr
	return opts
}

// p50 sorts d and returns its median, as Summary prints it.
func p50(d []time.Duration) time.Duration {
	slices.Sort(d)
	return d[len(d)/2]
}
