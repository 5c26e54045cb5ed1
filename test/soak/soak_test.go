package soak

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
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

	"github.com/anishathalye/porcupine"
	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/gamelift"
	"github.com/aws/smithy-go"
	"github.com/jackc/pgx/v5"
	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/controllers"
	"github.com/playersessions/operator/internal/agones"
	"github.com/playersessions/operator/internal/agones/agonestest"
	gl "github.com/playersessions/operator/internal/gamelift"
	"github.com/playersessions/operator/internal/history/historytest"
	"github.com/playersessions/operator/internal/localcp"
	"github.com/playersessions/operator/internal/manager"
	queryv1 "github.com/playersessions/operator/internal/query/v1alpha1"
	"github.com/playersessions/operator/internal/testenv"
	"github.com/playersessions/operator/test/gameserver/game"
	"github.com/playersessions/operator/test/gameserver/gametest"
)

// The soak's settings: SOAK_DURATION (a Go duration; default 40 s per seed) and SOAK_SEED (a fixed seed
// alone; default: seed 1 and one random seed, as `make test` runs it). SOAK_REPORT names a file the summary
// is appended to.
const (
	ns            = "soak"
	keyID, secret = "AKIDSOAK", "soak-secret"
	psTimeout     = 3 * time.Second // the reservation timeout, short
	lease         = 2 * time.Second
	gameSessions  = 6
	workers       = 6
	rotation      = 4 * time.Second // two of the six game sessions replaced: each in use for about 12 s
	historyGrace  = 2 * time.Second // ended player sessions move to PostgreSQL that long after their game session ended
	callTimeout   = 20 * time.Second
)

// TestSoak runs the operator under a mixed workload and random faults, recording every client call, and
// checks the histories for linearizability and a watch of every revision for the invariants.
func TestMain(m *testing.M) {
	game.RunIfAsked() // the SDK game servers are subprocesses of this test binary
	os.Exit(m.Run())
}

func TestSoak(t *testing.T) {
	duration := 40 * time.Second
	if raceEnabled {
		duration = 25 * time.Second
	}
	if d, err := time.ParseDuration(os.Getenv("SOAK_DURATION")); err == nil {
		duration = d
	}
	seeds := []uint64{1, rand.Uint64()}
	if s, err := strconv.ParseUint(os.Getenv("SOAK_SEED"), 10, 64); err == nil {
		seeds = []uint64{s}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint("seed-", seed), func(t *testing.T) {
			t.Logf("seed %d (reproduce: make soak SEED=%d DURATION=%s)", seed, seed, duration)
			soak(t, seed, duration)
		})
	}
}

// replica is one manager and its GameLift endpoint.
type replica struct {
	*testenv.Manager
	name    string
	url     string
	api     *gamelift.Client
	query   dynamic.NamespaceableResourceInterface // its own query API server
	webhook string                                 // its admission webhook's address
	sdk     string                                 // its Server SDK WebSocket's address
	link    *Proxy                                 // its connection to kube-apiserver
}

type run struct {
	t        *testing.T
	cp       *localcp.ControlPlane
	pg       *historytest.Server
	webhook  *Proxy // where kube-apiserver calls the admission webhook: a live replica's
	sdk      *Proxy // where game server processes connect (the Server SDK's WebSocket): a live replica's
	admin    client.WithWatch
	hist     *History
	obs      *Observer
	rng      *rand.Rand
	mu       sync.Mutex
	replicas []*replica
	started  int
	games    map[string]string // GameSessionId -> object name
	current  []string          // the GameSessionIds the workers use now (rotated, so that each history stays short)
	inflight map[string]int    // object name -> calls on it not answered yet (a game session ends once none is)
	procs    sync.Map          // SDK process id -> its game server (*gametest.Process)
	info     map[string]*gameInfo
	conns    sync.Map       // "game/player" -> the player's connection to an SDK game server
	moving   sync.Map       // player -> *sync.Mutex, held during a game server's move of the player
	ended    sync.WaitGroup // game sessions being ended
	max      sync.Map       // object name -> maximum (int)
	players  sync.Map       // player id -> playerRecord
	faults   map[string]int
	errs     map[string]int
	work     map[string]int // the workload by path
	gameSeq  int
}

type playerRecord struct {
	game, gameID, psID string
}

func soak(t *testing.T, seed uint64, duration time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cp := testenv.ControlPlane(t, localcp.Options{WebhookDirectoryPaths: []string{testenv.Path("config", "webhook")},
		CRDDirectoryPaths: []string{testenv.Path("test", "crds", "agones")}})
	admin, err := client.NewWithWatch(cp.Config, client.Options{Scheme: manager.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	r := &run{t: t, cp: cp, pg: historytest.Start(t), admin: admin, hist: NewHistory(), obs: &Observer{Timeout: psTimeout}, rng: rand.New(rand.NewPCG(seed, 99)),
		games: map[string]string{}, inflight: map[string]int{}, info: map[string]*gameInfo{}, faults: map[string]int{}, errs: map[string]int{}, work: map[string]int{}}
	if r.sdk, err = NewProxy("127.0.0.1:0", r.liveAddr(func(rep *replica) string { return rep.sdk })); err != nil {
		t.Fatal(err)
	}
	defer r.sdk.Close()
	if r.webhook, err = NewProxy(net.JoinHostPort(cp.WebhookHost, strconv.Itoa(cp.WebhookPort)), r.liveAddr(func(rep *replica) string { return rep.webhook })); err != nil {
		t.Fatal(err)
	}
	defer r.webhook.Close()
	if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	if err := gl.CreateAccessKey(ctx, admin, gl.DefaultKeyNamespace, "soak-key", ns, keyID, secret); err != nil {
		t.Fatal(err)
	}
	r.start()
	r.start()
	if err := r.newGameSessions(ctx, gameSessions); err != nil {
		t.Fatal(err)
	}
	watched := make(chan struct{})
	go r.watch(ctx, watched)
	sampled := make(chan struct{})
	go r.sampleRevisions(ctx, sampled)
	res := &resources{}
	go res.sample(ctx, r)
	// Each game session's history is checked as soon as it is complete (its game session ended), one at a
	// time while the run goes on; the rest at the end.
	dir := os.Getenv("SOAK_ARTIFACTS") // where violations are saved (default: the test's temporary directory)
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Error(err)
	}
	checkTimeout := time.Minute
	if raceEnabled {
		checkTimeout = 20 * time.Second
	}
	// A quarter of the time each during the run: one not decided then is checked again at the end, with
	// what the watch resolved and the whole time.
	r.hist.CheckSealed(dir, checkTimeout/4)
	go func() { // a long run says how its check keeps up
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(5 * time.Minute):
			}
			n, failed, longest := r.hist.Checked()
			t.Logf("checked during the run: %d histories, %d not linearizable or undecided; the longest: %s", n, failed, longest)
		}
	}()

	// The workload and the faults, for duration.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var clientID atomic.Int32
	for w := range workers {
		seed := r.rng.Uint64()
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			id := int(clientID.Add(1)) - 1
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				r.operate(ctx, rng, id, fmt.Sprintf("p%d-%d", id, n))
				pace := 5 + rng.IntN(20) // a client's pace, in ms
				if raceEnabled {
					pace *= 3
				}
				time.Sleep(time.Duration(pace) * time.Millisecond)
			}
		})
	}
	faultsDone := make(chan struct{})
	wg.Go(func() { r.injectFaults(ctx, stop, faultsDone) })
	wg.Go(func() { r.rotate(ctx, stop) })
	wg.Go(func() { r.replace(stop) })
	time.Sleep(duration)
	close(stop)
	wg.Wait()
	<-faultsDone

	// The end: every reservation has timed out, been accepted or completed; both replicas list the same
	// pages at one resourceVersion; then every game session ends, its player sessions move to PostgreSQL,
	// and each player is found, once, in a final state.
	time.Sleep(max(psTimeout+2*time.Second, 6*time.Second+lease)) // the last fault (a stall: 6 s at most) is over too
	// A replica partitioned by the last fault may have lost its Lease and exited after replace stopped
	// watching: restart it, as its pod would be, before the replicas are compared.
	r.restartExited()
	r.comparePages(ctx)
	r.endAll(ctx)
	lost := r.finalDescribes(ctx)
	lost += r.checkArchive(ctx)
	// Once the watch holds what the API server holds (nothing changes any more: the game sessions ended,
	// their player sessions moved to the history store, the refused ones kept), it has seen every revision:
	// what it saw resolves the reservations that got no answer.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var list gamev1.PlayerSessionList
		if err := r.admin.List(ctx, &list, client.InNamespace(ns)); err != nil {
			continue
		}
		statuses := map[string]string{}
		for _, ps := range list.Items {
			statuses[ps.Name] = string(ps.Status.Status)
		}
		if r.obs.Holds(ns, statuses) {
			r.hist.Resolve(r.obs.Sighting)
			r.count(r.faults, "end: reservations without an answer resolved from the watch")
			break
		}
	}
	cancel()
	<-watched
	<-sampled

	var violations []Violation
	last := time.Now()
	progress := func(checked, of int, longest string) { // a long run's check takes minutes: say how far it is
		if time.Since(last) > 30*time.Second || checked == of {
			last = time.Now()
			t.Logf("checked %d of %d histories; the longest: %s", checked, of, longest)
		}
	}
	for _, v := range r.hist.Check(dir, checkTimeout, progress) {
		if v.Result != porcupine.Illegal { // the checker ran out of time: undecided, reported
			r.count(r.faults, "a history the checker could not decide in time (not a violation; reported)")
			continue
		}
		violations = append(violations, v)
		t.Errorf("not linearizable: %s", v)
	}
	for _, v := range r.obs.Violations() {
		t.Errorf("invariant: %s", v)
	}
	if os.Getenv("SOAK_ARTIFACTS") != "" { // what the test process's goroutines are, by stack: a slope's cause
		if f, err := os.Create(filepath.Join(dir, "goroutines.txt")); err == nil {
			_ = pprof.Lookup("goroutine").WriteTo(f, 1)
			_ = f.Close()
		}
	}
	r.report(seed, duration, res, len(violations)+len(r.obs.Violations())+lost)
}

// liveAddr is an address of a live replica (as a Service in front of the replicas picks a ready pod): its
// webhook's or its Server SDK WebSocket's; none is refused.
func (r *run) liveAddr(addr func(*replica) string) func() string {
	return func() string {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, rep := range r.replicas {
			select {
			case <-rep.Done:
			default:
				return addr(rep)
			}
		}
		return "127.0.0.1:1"
	}
}

// sampleRevisions reads etcd's revision every 20 ms, for the history's reads (see History).
func (r *run) sampleRevisions(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{r.cp.EtcdURL()}, DialTimeout: 5 * time.Second})
	if err != nil {
		r.t.Error(err)
		return
	}
	defer c.Close()
	for ctx.Err() == nil {
		sent := time.Now()
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		resp, err := c.Get(cctx, "revision-probe")
		cancel()
		if err == nil {
			r.hist.Revision(sent, uint64(resp.Header.Revision))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// start starts one more replica: its connection to kube-apiserver through a proxy of its own (for the
// network faults), its query API server, admission webhook and GameLift endpoint on ports of its own, the
// history store on.
func (r *run) start() {
	r.mu.Lock()
	r.started++
	name := fmt.Sprint("m", r.started)
	r.mu.Unlock()
	apiserver, err := url.Parse(r.cp.Config.Host)
	if err != nil || apiserver.Host == "" {
		apiserver = &url.URL{Host: r.cp.Config.Host}
	}
	link, err := NewProxy("127.0.0.1:0", func() string { return apiserver.Host })
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(link.Close)
	cp := *r.cp
	cp.Config = rest.CopyConfig(r.cp.Config)
	cp.Config.Host = "https://" + link.Addr()
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(r.t))
	queryPort, webhookPort, sdkAddr := testenv.FreePort(r.t), testenv.FreePort(r.t), fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(r.t))
	opts := manager.Options{
		Controllers: controllers.DefaultOptions(), MetricsAddr: "0", ProbeAddr: "0",
		LeaderElect: true, LeaderElectionNamespace: "default",
		LeaseDuration: lease, RenewDeadline: lease * 3 / 4, RetryPeriod: 200 * time.Millisecond,
		GameLiftAddr: addr, GameLiftRatePerKey: 10000, GameLiftBurstPerKey: 10000,
		GameLiftSDKAddr: sdkAddr, GameLiftSDKEndpoint: "ws://" + r.sdk.Addr(),
		QueryPort: queryPort, QueryBindAddress: net.ParseIP("127.0.0.1"), QueryCertDir: r.t.TempDir(), QueryKubeconfig: r.cp.Kubeconfig,
		QueryTokenKeySecret: types.NamespacedName{Namespace: "default", Name: "query-token-key"},
		QuerySnapshotWindow: time.Minute, QueryFreshnessTimeout: 3 * time.Second,
		WebhookHost: "127.0.0.1", WebhookPort: webhookPort, WebhookCertDir: r.cp.WebhookCertDir, WebhookClientCAName: r.cp.WebhookClientCAName,
		HistoryStore: r.pg.URL,
		ReplicaName:  name, // unique among the running replicas, as a pod's name is
	}
	opts.Controllers.PlayerSessionTimeout = psTimeout
	opts.Controllers.HistoryGrace = historyGrace
	var m *testenv.Manager
	for attempt := 0; ; attempt++ { // kube-apiserver may be down (a fault): try again, as a restarted pod does
		if m, err = testenv.TryStartManager(r.t, &cp, opts); err == nil {
			break
		}
		if attempt == 60 {
			r.t.Errorf("replica %s did not start in a minute: %v", name, err)
			return
		}
		time.Sleep(time.Second)
	}
	// Its own query API server, reached directly as the Service reaches one pod.
	direct := rest.CopyConfig(r.cp.Config)
	direct.Host = fmt.Sprintf("https://127.0.0.1:%d", queryPort)
	direct.TLSClientConfig.Insecure, direct.TLSClientConfig.CAData, direct.TLSClientConfig.CAFile = true, nil, ""
	rep := &replica{Manager: m, name: name, url: "http://" + addr, link: link, sdk: sdkAddr, webhook: fmt.Sprintf("127.0.0.1:%d", webhookPort),
		query: dynamic.NewForConfigOrDie(direct).Resource(queryv1.SchemeGroupVersion.WithResource("playersessions")),
		api: gamelift.New(gamelift.Options{
			Region: "us-east-1", BaseEndpoint: aws.String("http://" + addr),
			Credentials: credentials.NewStaticCredentialsProvider(keyID, secret, ""), RetryMaxAttempts: 1,
		})}
	r.mu.Lock()
	r.replicas = append(r.replicas, rep)
	r.mu.Unlock()
}

func (r *run) pick(rng *rand.Rand) *replica {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.replicas[rng.IntN(len(r.replicas))]
}

// replace starts a replica in the place of one that stopped on its own (a leader that could not renew
// its Lease through a partition exits, as a pod's container would, and is restarted).
func (r *run) replace(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(200 * time.Millisecond):
		}
		r.restartExited()
	}
}

// restartExited starts a replica in the place of each one that exited on its own.
func (r *run) restartExited() {
	r.mu.Lock()
	var gone []*replica
	r.replicas = slices.DeleteFunc(r.replicas, func(rep *replica) bool {
		select {
		case <-rep.Done:
			gone = append(gone, rep)
			return true
		default:
			return false
		}
	})
	r.mu.Unlock()
	for _, rep := range gone {
		rep.link.Close() // its proxy to kube-apiserver goes with it, as a pod's network does
		r.count(r.faults, "a replica exited on its own (its Lease lost through a fault) and was restarted")
		r.start()
	}
}

// Faults the scheduler picks from.
var faultKinds = []string{
	"leader killed (Lease not released), a replica started in its place",
	"etcd compacted to its newest revision",
	"kube-apiserver restarted",
	"etcd restarted",
	"a replica partitioned from kube-apiserver (its connections stalled 2-6 s)",
	"a replica's link to kube-apiserver slowed (50-200 ms a chunk, 5 s)",
	"a replica's connections to kube-apiserver dropped",
	"PostgreSQL stopped for 1-4 s, then started",
	"the admission webhook unreachable for 2-6 s",
}

// injectFaults injects a fault every 3 to 8 s, picked by a scheduler seeded from the run's seed.
func (r *run) injectFaults(ctx context.Context, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	rng := rand.New(rand.NewPCG(r.rng.Uint64(), 7))
	for {
		select {
		case <-stop:
			return
		case <-time.After(time.Duration(3000+rng.IntN(5000)) * time.Millisecond):
		}
		kind := rng.IntN(len(faultKinds))
		secs := func(lo, hi int) time.Duration {
			return time.Duration(lo*1000+rng.IntN((hi-lo)*1000)) * time.Millisecond
		}
		var err error
		switch kind {
		case 0:
			r.mu.Lock()
			var leader *replica
			for i, rep := range r.replicas {
				select {
				case <-rep.Elected():
					leader = rep
					r.replicas = slices.Delete(r.replicas, i, i+1)
				default:
				}
				if leader != nil {
					break
				}
			}
			r.mu.Unlock()
			if leader == nil {
				continue
			}
			leader.Stop()
			leader.link.Close()
			r.start()
		case 1:
			err = r.compact(ctx)
		case 2:
			err = r.cp.RestartAPIServer(500 * time.Millisecond)
		case 3:
			err = r.cp.RestartEtcd(500 * time.Millisecond)
		case 4:
			r.pick(rng).link.Stall(secs(2, 6))
		case 5:
			r.pick(rng).link.Slow(time.Duration(50+rng.IntN(150))*time.Millisecond, 5*time.Second)
		case 6:
			r.pick(rng).link.Drop()
		case 7:
			if err = r.pg.Down(); err == nil {
				time.Sleep(secs(1, 4))
				err = r.pg.Up()
			}
		case 8:
			r.webhook.Refuse(secs(2, 6))
		}
		if err != nil {
			r.count(r.faults, faultKinds[kind]+": failed: "+err.Error())
			continue
		}
		r.count(r.faults, faultKinds[kind])
	}
}

func (r *run) compact(ctx context.Context) error {
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{r.cp.EtcdURL()}, DialTimeout: 5 * time.Second})
	if err != nil {
		return err
	}
	defer c.Close()
	resp, err := c.Get(ctx, "compact-probe")
	if err != nil {
		return err
	}
	_, err = c.Compact(ctx, resp.Header.Revision)
	return err
}

func (r *run) count(m map[string]int, key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m[key]++
}

// operate makes one random call, recorded: a reservation (GameLift, or kubectl now and then), an accept or
// a remove by the game server, a describe.
func (r *run) operate(ctx context.Context, rng *rand.Rand, client int, player string) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	r.mu.Lock()
	gameID := r.current[rng.IntN(len(r.current))]
	game := r.games[gameID]
	r.inflight[game]++
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.inflight[game]--
		r.mu.Unlock()
	}()
	key := ns + "/" + game
	switch x := rng.IntN(100); {
	case x < 40:
		rec := playerRecord{game: game, gameID: gameID}
		done := r.hist.Invoke(client, key, Input{Op: OpReserve, PS: player})
		if x < 4 { // kubectl: created, then decided by admission; the call returns when the decision is seen
			ps := &gamev1.PlayerSession{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: strings.ToLower(player)}, Spec: gamev1.PlayerSessionSpec{GameSessionName: game, PlayerID: player}}
			result := OutUnknown
			if err := r.admin.Create(ctx, ps); err != nil {
				r.count(r.errs, "kubectl create: "+errorKind(err))
				if refused(err) {
					result = OutRejected
				}
			} else {
				result, rec.psID = r.decided(ctx, ps)
			}
			done(Output{Result: result})
			r.players.Store(player, rec)
			return
		}
		if x >= 36 { // a group of two or three, all or none
			r.group(ctx, rng, client, key, gameID, game, player, 2+rng.IntN(2))
			return
		}
		out, err := r.pick(rng).api.CreatePlayerSession(ctx, &gamelift.CreatePlayerSessionInput{GameSessionId: aws.String(gameID), PlayerId: aws.String(player)})
		if err == nil {
			rec.psID = aws.ToString(out.PlayerSession.PlayerSessionId)
		} else {
			r.count(r.errs, "CreatePlayerSession: "+errorKind(err))
		}
		done(Output{Result: reservation(err)})
		r.players.Store(player, rec)
	case x < 60, x < 75:
		rec, name, ok := r.somePlayer(rng, game)
		if !ok {
			return
		}
		op, action := OpAccept, "AcceptPlayerSession"
		if x >= 60 {
			op, action = OpRemove, "RemovePlayerSession"
		}
		r.mu.Lock()
		info := *r.info[game]
		r.mu.Unlock()
		switch info.kind {
		case kindAgones:
			r.agonesPlayer(ctx, client, key, info, op, name, rec)
			return
		case kindSDK:
			r.sdkPlayer(ctx, client, key, info, op, name, rec)
			return
		}
		done := r.hist.Invoke(client, key, Input{Op: op, PS: name})
		err := r.gameServer(ctx, r.pick(rng), action, rec)
		if err != nil {
			r.count(r.errs, action+": "+errorKind(err))
		}
		result := outcome(err)
		if op == OpRemove && result == "TIMEDOUT" {
			result = OutRefused
		}
		done(Output{Result: result})
	case x < 80:
		r.list(ctx, rng, client, game)
	default:
		rec, name, ok := r.somePlayer(rng, game)
		if !ok {
			return
		}
		r.describe(ctx, rng, client, name, rec)
	}
}

// list records a list of the game session's player sessions through the query API, two at a time, each
// page from a replica picked at random (the continue token carries the snapshot from one to the next).
func (r *run) list(ctx context.Context, rng *rand.Rand, client int, game string) {
	done := r.hist.InvokeRead(client, ns+"/"+game, Input{Op: OpList})
	statuses := map[string]string{}
	opts := metav1.ListOptions{FieldSelector: "spec.gameSessionName=" + game, Limit: 2}
	var rv uint64
	var served []string // each page: replica@answered (index revision when asked) items
	for {
		rep := r.pick(rng)
		asked := rep.Index.RV()
		page, err := rep.query.Namespace(ns).List(ctx, opts)
		if err != nil {
			r.count(r.errs, "query API list: "+errorKind(err))
			done(Output{Result: OutRejected}, 0) // a read that failed changed nothing and taught nothing
			return
		}
		served = append(served, fmt.Sprintf("%s@%s(ix %d) %d", rep.name, page.GetResourceVersion(), asked, len(page.Items)))
		if rv == 0 {
			rv, _ = strconv.ParseUint(page.GetResourceVersion(), 10, 64)
		}
		for _, it := range page.Items {
			player, _, _ := unstructured.NestedString(it.Object, "spec", "playerId")
			if !refusedObject(it.Object) { // an undecided one is listed without a status
				statuses[player], _, _ = unstructured.NestedString(it.Object, "status", "status")
			}
		}
		if opts.Continue = page.GetContinue(); opts.Continue == "" {
			break
		}
	}
	done(Output{Result: ListResult(statuses), Served: strings.Join(served, "; ")}, rv)
}

// refusedObject reports whether a player session (as the query API serves it) was refused by admission.
func refusedObject(obj map[string]any) bool {
	conditions, _, _ := unstructured.NestedSlice(obj, "status", "conditions")
	for _, c := range conditions {
		if c, ok := c.(map[string]any); ok && c["type"] == gamev1.AdmittedCondition && c["status"] == string(metav1.ConditionFalse) {
			return true
		}
	}
	return false
}

// group reserves seats for n players at once with CreatePlayerSessions, recorded as one operation.
func (r *run) group(ctx context.Context, rng *rand.Rand, client int, key, gameID, game, player string, n int) {
	var ids []string
	for i := range n {
		ids = append(ids, fmt.Sprintf("%s-g%d", player, i))
	}
	done := r.hist.Invoke(client, key, Input{Op: OpGroup, PS: strings.Join(ids, ",")})
	out, err := r.pick(rng).api.CreatePlayerSessions(ctx, &gamelift.CreatePlayerSessionsInput{GameSessionId: aws.String(gameID), PlayerIds: ids})
	if err != nil {
		r.count(r.errs, "CreatePlayerSessions: "+errorKind(err))
	}
	done(Output{Result: reservation(err)})
	psIDs := map[string]string{}
	if err == nil {
		for _, ps := range out.PlayerSessions {
			psIDs[aws.ToString(ps.PlayerId)] = aws.ToString(ps.PlayerSessionId)
		}
	}
	for _, id := range ids {
		r.players.Store(id, playerRecord{game: game, gameID: gameID, psID: psIDs[id]})
	}
}

// decided waits (5 s at most) for admission's decision on a player session created with kubectl: RESERVED
// (ok, with its id) or refused (full).
func (r *run) decided(ctx context.Context, ps *gamev1.PlayerSession) (string, string) {
	for range 100 {
		if err := r.admin.Get(ctx, client.ObjectKeyFromObject(ps), ps); err == nil {
			if ps.Status.Status != "" {
				return OutOK, ps.Status.PlayerSessionID
			}
			for _, c := range ps.Status.Conditions {
				if c.Type == gamev1.AdmittedCondition && c.Status == metav1.ConditionFalse {
					return OutFull, ""
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return OutUnknown, ""
}

// newGameSessions creates n game sessions (1 to 4 seats, an endpoint: ACTIVE at once), waits for them to be
// ACTIVE, and makes them the newest of the workers' current ones (the oldest leave it: their histories end).
func (r *run) newGameSessions(ctx context.Context, n int) error {
	var names []string
	for range n {
		r.mu.Lock()
		r.gameSeq++
		name := fmt.Sprint("game-", r.gameSeq)
		max := 1 + r.rng.IntN(4)
		r.mu.Unlock()
		kind := kindPlain
		switch r.rng.IntN(6) {
		case 0:
			kind = kindAgones
		case 1:
			kind = kindSDK
		}
		name, err := r.createGame(ctx, name, max, kind)
		if err != nil {
			return err
		}
		r.max.Store(name, max)
		r.hist.GameSession(ns+"/"+name, max)
		names = append(names, name)
	}
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var ids []string
		for _, name := range names {
			gs := &gamev1.GameSession{}
			if err := r.admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, gs); err == nil && gs.Status.Status == gamev1.GameSessionActive {
				ids = append(ids, gs.Status.GameSessionID)
				r.mu.Lock()
				r.info[name].port = gs.Status.Port // an SDK game server's: the process it was placed on
				r.mu.Unlock()
			}
		}
		if len(ids) < len(names) {
			continue
		}
		r.mu.Lock()
		for i, id := range ids {
			r.games[id] = names[i]
		}
		r.current = append(r.current, ids...)
		var retired []string
		if len(r.current) > gameSessions {
			retired = slices.Clone(r.current[:len(r.current)-gameSessions])
			r.current = r.current[len(r.current)-gameSessions:]
		}
		r.mu.Unlock()
		for _, id := range retired {
			r.mu.Lock()
			name := r.games[id]
			r.mu.Unlock()
			r.ended.Go(func() { r.end(ctx, name) })
		}
		return nil
	}
	var why []string
	for _, name := range names { // they are ended, never used
		gs := &gamev1.GameSession{}
		if err := retried(ctx, func() error { return r.admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, gs) }); err != nil {
			r.t.Logf("game session %s: not read: %v", name, err)
		}
		if gs.Status.Status == gamev1.GameSessionActive {
			continue
		}
		r.mu.Lock()
		kind := r.info[name].kind
		r.mu.Unlock()
		var conds []string
		for _, c := range gs.Status.Conditions {
			conds = append(conds, c.Type+"="+string(c.Status)+" "+c.Reason)
		}
		why = append(why, fmt.Sprintf("%s (%s): %q %v", name, kind, gs.Status.Status, conds))
		r.t.Logf("game session %s (%s) not ACTIVE within 60 s: %s %v at resourceVersion %s; %s", name, kind, gs.Status.Status, conds, gs.ResourceVersion, r.caches(ctx, name))
		r.mu.Lock()
		if p := r.info[name].proc; p != nil {
			r.t.Logf("its game server's output (the end, heartbeats left out):\n%s", gameServerOutput(p))
		}
		r.mu.Unlock()
		if kind == kindSDK { // where the fleet's processes are, and who claimed them
			var computes gamev1.ComputeList
			if err := retried(ctx, func() error { return r.admin.List(ctx, &computes, client.InNamespace(ns)) }); err != nil {
				r.t.Logf("computes not listed: %v", err)
			}
			for _, c := range computes.Items {
				processes, _ := json.Marshal(c.Status.Processes) // with each connection's replica, run and times
				r.t.Logf("compute %s: %s", c.Name, processes)
			}
			var claims gamev1.ProcessClaimList
			if err := retried(ctx, func() error { return r.admin.List(ctx, &claims, client.InNamespace(ns)) }); err != nil {
				r.t.Logf("claims not listed: %v", err)
			}
			for _, c := range claims.Items {
				r.t.Logf("claim %s: %+v", c.Name, c.Spec)
				if p, ok := r.procs.Load(c.Spec.ProcessID); ok && c.Spec.GameSessionName == name { // the process it was placed on
					r.t.Logf("the output of %s, where it was placed (the end, heartbeats left out):\n%s", c.Spec.ProcessID, gameServerOutput(p.(*gametest.Process)))
				}
			}
		}
	}
	for _, name := range names {
		r.ended.Go(func() { r.end(ctx, name) })
	}
	return fmt.Errorf("game sessions not ACTIVE within 60 s: %s", strings.Join(why, "; "))
}

// gameServerOutput is the end of a game server's output, without the SDK's heartbeats and health checks,
// which would fill it.
func gameServerOutput(p *gametest.Process) string {
	var lines []string
	for line := range strings.Lines(p.Out.String()) {
		if !strings.Contains(line, "HeartbeatServerProcess") && !strings.Contains(line, "OnHealthCheck") && !strings.Contains(line, "health response") {
			lines = append(lines, line)
		}
	}
	return strings.Join(lines[max(0, len(lines)-40):], "")
}

// caches says, for each replica, whether it leads and what its cache shows of the game session: a leader
// whose cache lacks a game session kube-apiserver holds has an informer behind (after repeated faults
// client-go's reflector waits 30 to 60 s between attempts).
func (r *run) caches(ctx context.Context, name string) string {
	r.mu.Lock()
	replicas := slices.Clone(r.replicas)
	r.mu.Unlock()
	var out []string
	for _, rep := range replicas {
		role := "follower"
		select {
		case <-rep.Elected():
			role = "leader"
		default:
		}
		gs := &gamev1.GameSession{}
		seen := "its cache lacks it"
		if err := rep.GetCache().Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, gs); err == nil {
			seen = fmt.Sprintf("its cache shows %q at resourceVersion %s", gs.Status.Status, gs.ResourceVersion)
		}
		out = append(out, fmt.Sprintf("replica %s (%s): %s", rep.name, role, seen))
	}
	return strings.Join(out, "; ")
}

// retried tries read again, a second apart, for up to 30 s: a report is made while the faults restart
// kube-apiserver, and a read that failed once would report nothing (the eighth 60-minute run reported two
// game sessions so, with an empty status).
func retried(ctx context.Context, read func() error) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := read()
		if err == nil || ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(time.Second)
	}
}

// end ends a game session the workers no longer use, as its game server would (TERMINATED), once no call
// on it is waiting for an answer: its history is complete.
func (r *run) end(ctx context.Context, name string) {
	for deadline := time.Now().Add(2 * callTimeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		r.mu.Lock()
		n := r.inflight[name]
		r.mu.Unlock()
		if n == 0 {
			break
		}
	}
	r.hist.Seal(ns + "/" + name)
	r.mu.Lock()
	info := *r.info[name]
	r.mu.Unlock()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		switch info.kind {
		case kindAgones: // Agones shuts its GameServer down
			if err := agonestest.SetState(ctx, r.admin, ns, info.server, agones.StateShutdown); err == nil {
				return
			}
			continue
		case kindSDK: // the game ends: ProcessEnding
			if info.port == 0 {
				break // never placed: ended by a status write
			}
			if err := r.tell(info.port, "END"); err == nil {
				r.conns.Range(func(k, v any) bool {
					if strings.HasPrefix(k.(string), name+"/") {
						_ = v.(net.Conn).Close()
						r.conns.Delete(k)
					}
					return true
				})
				return
			}
			continue
		}
		gs := &gamev1.GameSession{}
		if err := r.admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, gs); err != nil {
			continue
		}
		before := gs.DeepCopy()
		gs.Status.Status = gamev1.GameSessionTerminated
		if err := r.admin.Status().Patch(ctx, gs, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err == nil {
			return
		}
	}
	r.t.Logf("game session %s (%s, game server port %d): not ended within 60 s", name, info.kind, info.port)
	r.count(r.errs, "ending a game session: not done within 60 s")
}

// rotate replaces two of the workers' game sessions with new ones every rotation, so that no game
// session's history grows past what the checker decides quickly.
func (r *run) rotate(ctx context.Context, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(rotation):
		}
		if err := r.newGameSessions(ctx, 2); err != nil {
			r.count(r.errs, "creating game sessions: "+err.Error())
		}
	}
}

// somePlayer is a player of the game session whose reservation was answered.
func (r *run) somePlayer(rng *rand.Rand, game string) (playerRecord, string, bool) {
	var names []string
	r.players.Range(func(k, v any) bool {
		if rec := v.(playerRecord); rec.game == game && rec.psID != "" {
			names = append(names, k.(string))
		}
		return true
	})
	if len(names) == 0 {
		return playerRecord{}, "", false
	}
	slices.Sort(names)
	name := names[rng.IntN(len(names))]
	v, _ := r.players.Load(name)
	return v.(playerRecord), name, true
}

// describe records a DescribePlayerSessions of the player's session in its game session, from a replica
// picked at random, as a read served from that replica's index at least as new as it was at the call.
func (r *run) describe(ctx context.Context, rng *rand.Rand, client int, player string, rec playerRecord) {
	rep := r.pick(rng)
	rv := rep.Index.RV()
	done := r.hist.InvokeRead(client, ns+"/"+rec.game, Input{Op: OpDescribe, PS: player})
	out, err := rep.api.DescribePlayerSessions(ctx, &gamelift.DescribePlayerSessionsInput{PlayerId: aws.String(player)})
	if err != nil {
		r.count(r.errs, "DescribePlayerSessions: "+errorKind(err))
		done(Output{Result: OutUnknown}, rv)
		return
	}
	status := ""
	if len(out.PlayerSessions) > 0 {
		status = string(out.PlayerSessions[0].Status)
	}
	done(Output{Result: status, Served: fmt.Sprintf("%s (ix %d)", rep.name, rv)}, rv)
}

// gameServer calls one of the game server's actions, signed, as a game server without an SDK does.
func (r *run) gameServer(ctx context.Context, rep *replica, action string, rec playerRecord) error {
	// A nonce, as the SDKs send one: two identical requests signed in the same second would have one
	// signature, and the endpoint serves a signature once (replays are refused).
	body, _ := json.Marshal(map[string]string{"PlayerSessionId": rec.psID, "GameSessionId": rec.gameID, "ClientToken": strconv.FormatUint(rand.Uint64(), 36)})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, rep.url+"/", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "GameLift."+action)
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, aws.Credentials{AccessKeyID: keyID, SecretAccessKey: secret}, req, hex.EncodeToString(sum[:]), "gamelift", "us-east-1", time.Now()); err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	var e struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}
	_ = json.Unmarshal(raw, &e)
	return &smithy.GenericAPIError{Code: e.Type[strings.LastIndex(e.Type, "#")+1:], Message: e.Message, Fault: fault(resp.StatusCode)}
}

func fault(status int) smithy.ErrorFault {
	if status >= 500 {
		return smithy.FaultServer
	}
	return smithy.FaultClient
}

// outcome is the model's reading of a call's error: none; a refusal (full; a timed-out reservation; the
// wrong state); rejected before it was considered (unauthorized, throttled, a concurrent change to retry:
// nothing applied); or no answer (a server error, a lost connection: applied or not).
func outcome(err error) string {
	if err == nil {
		return OutOK
	}
	if refused(err) {
		return OutRejected
	}
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorFault() == smithy.FaultServer || code(api) == "InternalServiceException" {
		return OutUnknown
	}
	switch {
	case code(api) == "UnauthorizedException" || code(api) == "ThrottlingException" || strings.Contains(api.ErrorMessage(), "concurrently"):
		return OutRejected
	case code(api) == "NotFoundException":
		// The replica does not hold what the call names yet (a player session created through the other
		// replica: it waits 2 s for it, a partitioned one may not catch up): nothing applied, nothing learnt.
		return OutRejected
	case code(api) == "GameSessionFullException":
		return OutFull
	case strings.Contains(api.ErrorMessage(), "TIMEDOUT"):
		return "TIMEDOUT"
	}
	return OutRefused
}

// reservation is the outcome of a CreatePlayerSession(s): a game session the replica does not know yet, or
// not yet ACTIVE (its cache behind another replica's write: it waits 2 s for it, a partitioned one may not
// catch up in time) turned the call away before any seat was considered: nothing applied, nothing learnt
// of the seats.
func reservation(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) && code(api) == "InvalidGameSessionStatusException" {
		return OutRejected
	}
	if result := outcome(err); result != "TIMEDOUT" {
		return result
	}
	return OutRefused
}

// refused: the connection was refused, so the request was never sent (a replica or kube-apiserver down).
func refused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// code is an API error's code without the namespace some protocols prefix it with.
func code(api smithy.APIError) string {
	c := api.ErrorCode()
	return c[strings.LastIndex(c, "#")+1:]
}

// retryability says whether a client should try an error's call again: retryable (no answer, a refused
// connection, a server error, throttling: an AWS SDK retries them), or final (a refusal: full, the wrong
// state, invalid).
func retryability(kind string) string {
	for _, r := range []string{"no answer", "connection refused", "InternalServiceException", "ThrottlingException", "connecting",
		"Internal service exception", "Throttling exception"} { // the last two: as the Server SDK names them
		if strings.Contains(kind, r) {
			return "retryable"
		}
	}
	return "final"
}

func errorKind(err error) string {
	if refused(err) {
		return "connection refused"
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		if code(api) == "InvalidRequestException" || code(api) == "InvalidGameSessionStatusException" {
			m := api.ErrorMessage()
			if i := strings.Index(m, "psess-"); i >= 0 { // the id varies: the rest is the kind
				m = m[:i] + "psess-…" + m[min(len(m), i+42):]
			}
			return code(api) + " (" + m + ")"
		}
		return code(api)
	}
	return "no answer"
}

// watch observes every revision of the namespace's player sessions, in order, until ctx ends; after a 410
// (a compaction) it lists and watches again.
func (r *run) watch(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	for ctx.Err() == nil {
		var list gamev1.PlayerSessionList
		if err := r.admin.List(ctx, &list, client.InNamespace(ns)); err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		names := map[string]bool{}
		for i := range list.Items {
			r.observe(&list.Items[i], false)
			names[list.Items[i].Name] = true
		}
		r.obs.Relisted(ns, names)
		w, err := r.admin.Watch(ctx, &gamev1.PlayerSessionList{}, client.InNamespace(ns), &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.ResourceVersion}})
		if err != nil {
			continue
		}
		for ev := range w.ResultChan() {
			ps, ok := ev.Object.(*gamev1.PlayerSession)
			if !ok {
				break // an error (410 after a compaction): list again
			}
			r.observe(ps, ev.Type == watch.Deleted)
		}
		w.Stop()
		r.count(r.faults, "the observer's watch restarted (a compaction or a lost connection)")
	}
}

func (r *run) observe(ps *gamev1.PlayerSession, deleted bool) {
	rev := Revision{Namespace: ps.Namespace, Name: ps.Name, GameSession: ps.Spec.GameSessionName, PlayerID: ps.Spec.PlayerID,
		Status: string(ps.Status.Status), Refused: meta.IsStatusConditionFalse(ps.Status.Conditions, gamev1.AdmittedCondition), Deleted: deleted, Seen: time.Now()}
	if max, ok := r.max.Load(ps.Spec.GameSessionName); ok {
		rev.Max = max.(int)
	}
	if ps.Status.CreationTime != nil {
		rev.Reserved = ps.Status.CreationTime.Time
	}
	r.obs.Observe(rev)
}

// report logs the summary (and appends it to SOAK_REPORT).
func (r *run) report(seed uint64, duration time.Duration, res *resources, violations int) {
	var b strings.Builder
	fmt.Fprintf(&b, "\n### Soak, seed %d, %s\n\n| what | count |\n|---|---|\n", seed, duration)
	counts := r.hist.Count()
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		fmt.Fprintf(&b, "| operation: %s | %d |\n", k, counts[k])
	}
	r.mu.Lock()
	for _, k := range slices.Sorted(maps.Keys(r.work)) {
		fmt.Fprintf(&b, "| workload: %s | %d |\n", k, r.work[k])
	}
	for _, k := range slices.Sorted(maps.Keys(r.faults)) {
		fmt.Fprintf(&b, "| fault: %s | %d |\n", k, r.faults[k])
	}
	for _, k := range slices.Sorted(maps.Keys(r.errs)) {
		fmt.Fprintf(&b, "| error seen by clients (%s): %s | %d |\n", retryability(k), k, r.errs[k])
	}
	r.mu.Unlock()
	fmt.Fprintf(&b, "| game session histories checked for linearizability | %d |\n", r.hist.Histories())
	for _, line := range res.summary() {
		fmt.Fprintln(&b, line)
	}
	lp50, lp99, lmax, reads := r.hist.ReadLag()
	fmt.Fprintf(&b, "| reads (describes, lists); how stale the replica serving them could be p50 / p99 / max | %d; %s / %s / %s |\n",
		reads, lp50.Round(time.Millisecond), lp99.Round(time.Millisecond), lmax.Round(time.Millisecond))
	p50, p99, max, n := r.obs.Lateness()
	fmt.Fprintf(&b, "| revisions watched | %d |\n| timeouts observed; lateness after the %s timeout p50 / p99 / max | %d; %s / %s / %s |\n| violations | %d |\n",
		r.obs.Revisions(), psTimeout, n, p50.Round(time.Millisecond), p99.Round(time.Millisecond), max.Round(time.Millisecond), violations)
	r.t.Log(b.String())
	if path := os.Getenv("SOAK_REPORT"); path != "" {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err == nil {
			_, _ = f.WriteString(b.String())
			_ = f.Close()
		}
	}
}

// comparePages lists every player session of the namespace from each live replica's query API, a page of
// 25 at a time at one resourceVersion (the first replica's newest), and compares the pages.
func (r *run) comparePages(ctx context.Context) {
	r.mu.Lock()
	reps := slices.Clone(r.replicas)
	r.mu.Unlock()
	var rv string
	var first []string
	for i, rep := range reps {
		var names []string
		opts := metav1.ListOptions{Limit: 25, ResourceVersion: rv}
		if rv != "" {
			opts.ResourceVersionMatch = metav1.ResourceVersionMatchExact
		}
		for {
			// A replica the end restarted answers 403 (anonymous) until it has loaded the cluster's CAs; a
			// Service would not send it requests before its readiness says so (query-authentication).
			var page *unstructured.UnstructuredList
			err := retried(ctx, func() (err error) {
				page, err = rep.query.Namespace(ns).List(ctx, opts)
				return err
			})
			if err != nil {
				r.t.Errorf("replica %s: listing at resourceVersion %q: %v", rep.name, rv, err)
				return
			}
			if rv == "" {
				rv = page.GetResourceVersion()
			}
			for _, it := range page.Items {
				status, _, _ := unstructured.NestedString(it.Object, "status", "status")
				names = append(names, it.GetName()+"="+status)
			}
			if opts.Continue = page.GetContinue(); opts.Continue == "" {
				break
			}
			opts.ResourceVersion, opts.ResourceVersionMatch = "", ""
		}
		if i == 0 {
			first = names
			r.count(r.faults, fmt.Sprintf("end: player sessions listed by each replica at one resourceVersion (%d)", len(names)))
			continue
		}
		if !slices.Equal(first, names) {
			r.t.Errorf("replicas %s and %s list different pages at resourceVersion %s: %d and %d player sessions", reps[0].name, rep.name, rv, len(first), len(names))
		}
	}
}

// endAll ends the game sessions still in use and waits for every player session to have moved to the
// history store (its custom resource deleted).
func (r *run) endAll(ctx context.Context) {
	r.mu.Lock()
	current := slices.Clone(r.current)
	r.current = nil
	r.mu.Unlock()
	for _, id := range current {
		r.mu.Lock()
		name := r.games[id]
		r.mu.Unlock()
		r.ended.Go(func() { r.end(ctx, name) })
	}
	r.ended.Wait()
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
		if len(r.unarchived(ctx)) == 0 {
			return
		}
	}
	left := r.unarchived(ctx)
	r.t.Errorf("%d player sessions still custom resources 3 minutes after their game sessions ended", len(left))
	for i, ps := range left {
		if i == 5 {
			break
		}
		gs := &gamev1.GameSession{}
		_ = r.admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: ps.Spec.GameSessionName}, gs)
		r.t.Logf("left: %s %s status %q finalizers %v conditions %+v; its game session %s %s conditions %+v", ps.Name, ps.Spec.PlayerID,
			ps.Status.Status, ps.Finalizers, ps.Status.Conditions, gs.Name, gs.Status.Status, gs.Status.Conditions)
	}
}

// unarchived are the player sessions still custom resources, refused ones excepted (a refusal is kept as
// a custom resource for the retention period: it never was a player session to archive).
func (r *run) unarchived(ctx context.Context) []gamev1.PlayerSession {
	var list gamev1.PlayerSessionList
	if err := r.admin.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return []gamev1.PlayerSession{{}}
	}
	return slices.DeleteFunc(list.Items, func(ps gamev1.PlayerSession) bool {
		return ps.Status.Status == "" && meta.IsStatusConditionFalse(ps.Status.Conditions, gamev1.AdmittedCondition)
	})
}

// finalDescribes describes every player whose reservation was answered: each must be found once, in a
// final state (from the history store now). It returns how many were not.
func (r *run) finalDescribes(ctx context.Context) int {
	lost := 0
	rng := rand.New(rand.NewPCG(1, 2))
	r.players.Range(func(k, v any) bool {
		rec, player := v.(playerRecord), k.(string)
		if rec.psID == "" {
			return true
		}
		var out *gamelift.DescribePlayerSessionsOutput
		var err error
		for range 10 {
			if out, err = r.pick(rng).api.DescribePlayerSessions(ctx, &gamelift.DescribePlayerSessionsInput{PlayerId: aws.String(player)}); err == nil {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		switch {
		case err != nil:
			r.t.Errorf("player %s (%s): describe at the end: %v", player, rec.psID, err)
		case len(out.PlayerSessions) != 1 || aws.ToString(out.PlayerSessions[0].PlayerSessionId) != rec.psID:
			r.t.Errorf("player %s (%s): found %d player sessions at the end, want it once", player, rec.psID, len(out.PlayerSessions))
		case out.PlayerSessions[0].Status != "COMPLETED" && out.PlayerSessions[0].Status != "TIMEDOUT":
			r.t.Errorf("player %s (%s): %s at the end, want a final state", player, rec.psID, out.PlayerSessions[0].Status)
		default:
			r.count(r.faults, "end: reserved players found once, in a final state, in the history store")
			return true
		}
		lost++
		return true
	})
	return lost
}

// checkArchive reads the history store: one row per player session, and one for each player whose
// reservation was answered. It returns the number of problems.
func (r *run) checkArchive(ctx context.Context) int {
	db, err := pgx.Connect(ctx, r.pg.URL)
	if err != nil {
		r.t.Errorf("history store: %v", err)
		return 1
	}
	defer db.Close(ctx)
	rows, err := db.Query(ctx, `SELECT to_char(day, 'YYYYMMDD') FROM ps_history_days`)
	if err != nil {
		r.t.Errorf("history store: %v", err)
		return 1
	}
	days, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(days) == 0 {
		r.t.Errorf("history store: no day tables (%v)", err)
		return 1
	}
	var union []string
	for _, d := range days {
		union = append(union, `SELECT namespace, name, player_id FROM ps_history_`+d+` WHERE namespace = '`+ns+`'`)
	}
	var total, distinct, players int
	if err := db.QueryRow(ctx, `SELECT COUNT(*), COUNT(DISTINCT name), COUNT(DISTINCT player_id) FROM (`+strings.Join(union, " UNION ALL ")+`) t`).Scan(&total, &distinct, &players); err != nil {
		r.t.Errorf("history store: %v", err)
		return 1
	}
	reserved := 0
	r.players.Range(func(_, v any) bool {
		if v.(playerRecord).psID != "" {
			reserved++
		}
		return true
	})
	r.count(r.faults, fmt.Sprintf("end: player sessions archived in PostgreSQL (%d rows)", total))
	if total != distinct || players < reserved {
		r.t.Errorf("history store: %d rows for %d player sessions (%d players; %d reservations answered)", total, distinct, players, reserved)
		return 1
	}
	return 0
}

// resources samples memory and goroutines through the run: this process (the managers, the clients and
// the checker share it) and kube-apiserver.
type resources struct {
	mu      sync.Mutex
	samples []resourceSample
}

type resourceSample struct {
	at                        time.Duration
	rss, apiserverRSS         float64 // MiB
	goroutines, apiGoroutines float64
}

func (res *resources) sample(ctx context.Context, r *run) {
	start := time.Now()
	port := r.cp.Config.Host[strings.LastIndex(r.cp.Config.Host, ":")+1:]
	kube, err := kubernetes.NewForConfig(r.cp.Config)
	if err != nil {
		r.t.Error(err)
		return
	}
	for ctx.Err() == nil {
		s := resourceSample{at: time.Since(start), rss: rssMiB("self"), goroutines: float64(runtime.NumGoroutine())}
		if pid := processWith("kube-apiserver", "--secure-port", port); pid != "" {
			s.apiserverRSS = rssMiB(pid)
		}
		if raw, err := kube.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx); err == nil {
			for line := range strings.Lines(string(raw)) {
				if v, ok := strings.CutPrefix(line, "go_goroutines "); ok {
					s.apiGoroutines, _ = strconv.ParseFloat(strings.TrimSpace(v), 64)
				}
			}
		}
		res.mu.Lock()
		res.samples = append(res.samples, s)
		res.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
}

// rssMiB is a process's resident memory in MiB (0 if unknown).
func rssMiB(pid string) float64 {
	raw, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// processWith is the pid of a process whose command line holds every one of args.
func processWith(args ...string) string {
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		raw, err := os.ReadFile("/proc/" + d.Name() + "/cmdline")
		if err != nil {
			continue
		}
		cmd := strings.ReplaceAll(string(raw), "\x00", " ")
		if !slices.ContainsFunc(args, func(a string) bool { return !strings.Contains(cmd, a) }) {
			return d.Name()
		}
	}
	return ""
}

// summary is each series' first and last sample and its slope per minute over the run's second half (a
// leak is a slope that does not flatten).
func (res *resources) summary() []string {
	res.mu.Lock()
	defer res.mu.Unlock()
	if len(res.samples) < 4 {
		return nil
	}
	half := res.samples[len(res.samples)/2:]
	line := func(name, unit string, f func(resourceSample) float64) string {
		var sx, sy, sxx, sxy float64
		for _, s := range half {
			x, y := s.at.Minutes(), f(s)
			sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
		}
		n := float64(len(half))
		slope := (n*sxy - sx*sy) / (n*sxx - sx*sx)
		return fmt.Sprintf("| %s: first / last / slope over the second half | %.0f / %.0f / %+.1f %s a minute |", name,
			f(res.samples[0]), f(res.samples[len(res.samples)-1]), slope, unit)
	}
	return []string{
		line("RSS of the test process (managers, clients, checker), MiB", "MiB", func(s resourceSample) float64 { return s.rss }),
		line("goroutines of the test process", "", func(s resourceSample) float64 { return s.goroutines }),
		line("kube-apiserver RSS, MiB", "MiB", func(s resourceSample) float64 { return s.apiserverRSS }),
		line("kube-apiserver goroutines", "", func(s resourceSample) float64 { return s.apiGoroutines }),
	}
}
