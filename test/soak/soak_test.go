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
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/gamelift"
	"github.com/aws/smithy-go"
	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/controllers"
	gl "github.com/playersessions/operator/internal/gamelift"
	"github.com/playersessions/operator/internal/localcp"
	"github.com/playersessions/operator/internal/manager"
	"github.com/playersessions/operator/internal/testenv"
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
	rotation      = 15 * time.Second
)

// TestSoak runs the operator under a mixed workload and random faults, recording every client call, and
// checks the histories for linearizability and a watch of every revision for the invariants.
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
			t.Logf("seed %d (reproduce: SOAK_SEED=%d SOAK_DURATION=%s make soak)", seed, seed, duration)
			soak(t, seed, duration)
		})
	}
}

// replica is one manager and its GameLift endpoint.
type replica struct {
	*testenv.Manager
	name string
	url  string
	api  *gamelift.Client
}

type run struct {
	t        *testing.T
	cp       *localcp.ControlPlane
	admin    client.WithWatch
	hist     *History
	obs      *Observer
	rng      *rand.Rand
	mu       sync.Mutex
	replicas []*replica
	started  int
	games    map[string]string // GameSessionId -> object name
	current  []string          // the GameSessionIds the workers use now (rotated, so that each history stays short)
	max      sync.Map          // object name -> maximum (int)
	players  sync.Map          // player id -> playerRecord
	faults   map[string]int
	errs     map[string]int
}

type playerRecord struct {
	game, gameID, psID string
}

func soak(t *testing.T, seed uint64, duration time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cp := testenv.ControlPlane(t, localcp.Options{})
	admin, err := client.NewWithWatch(cp.Config, client.Options{Scheme: manager.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	r := &run{t: t, cp: cp, admin: admin, hist: NewHistory(), obs: &Observer{Timeout: psTimeout}, rng: rand.New(rand.NewPCG(seed, 99)),
		games: map[string]string{}, faults: map[string]int{}, errs: map[string]int{}}
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
	wg.Go(func() { r.injectFaults(ctx, stop) })
	wg.Go(func() { r.rotate(ctx, stop) })
	time.Sleep(duration)
	close(stop)
	wg.Wait()

	// Every reservation has timed out, been accepted or completed by now: each player is described once
	// more, and must be found in exactly one state.
	time.Sleep(psTimeout + 2*time.Second)
	lost := 0
	r.players.Range(func(k, v any) bool {
		rec := v.(playerRecord)
		if rec.psID == "" {
			return true
		}
		if status := r.describe(ctx, 99, k.(string), rec); status == "" || status == OutUnknown {
			lost++
			t.Errorf("player %s (%s): reserved, not found at the end (%q)", k, rec.psID, status)
		}
		return true
	})
	cancel()
	<-watched

	dir := os.Getenv("SOAK_ARTIFACTS") // where violations are saved (default: the test's temporary directory)
	if dir == "" {
		dir = t.TempDir()
	}
	var violations []Violation
	checkTimeout := time.Minute
	if raceEnabled {
		checkTimeout = 20 * time.Second
	}
	for _, v := range r.hist.Check(dir, checkTimeout) {
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
	r.report(seed, duration, len(violations)+len(r.obs.Violations())+lost)
}

// start starts one more replica.
func (r *run) start() {
	r.mu.Lock()
	r.started++
	name := fmt.Sprint("m", r.started)
	r.mu.Unlock()
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(r.t))
	opts := manager.Options{
		Controllers: controllers.DefaultOptions(), MetricsAddr: "0", ProbeAddr: "0",
		LeaderElect: true, LeaderElectionNamespace: "default",
		LeaseDuration: lease, RenewDeadline: lease * 3 / 4, RetryPeriod: 200 * time.Millisecond,
		GameLiftAddr: addr, DisableAgones: true, GameLiftRatePerKey: 10000, GameLiftBurstPerKey: 10000,
	}
	opts.Controllers.PlayerSessionTimeout = psTimeout
	m := testenv.StartManager(r.t, r.cp, opts)
	rep := &replica{Manager: m, name: name, url: "http://" + addr, api: gamelift.New(gamelift.Options{
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

// injectFaults injects a fault every 3 to 8 s: the leader killed (its Lease not released) and a new
// replica started in its place; etcd compacted to its newest revision (watches fail with 410, informers
// relist).
func (r *run) injectFaults(ctx context.Context, stop <-chan struct{}) {
	rng := rand.New(rand.NewPCG(r.rng.Uint64(), 7))
	for {
		select {
		case <-stop:
			return
		case <-time.After(time.Duration(3000+rng.IntN(5000)) * time.Millisecond):
		}
		switch rng.IntN(2) {
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
			r.count(r.faults, "leader killed (Lease not released), a replica started in its place")
			r.start()
		case 1:
			if err := r.compact(ctx); err != nil {
				r.count(r.faults, "etcd compaction failed: "+err.Error())
				continue
			}
			r.count(r.faults, "etcd compacted to its newest revision")
		}
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
	ids := r.gameIDs()
	gameID := ids[rng.IntN(len(ids))]
	r.mu.Lock()
	game := r.games[gameID]
	r.mu.Unlock()
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
		result := outcome(err)
		if err == nil {
			rec.psID = aws.ToString(out.PlayerSession.PlayerSessionId)
		} else {
			r.count(r.errs, "CreatePlayerSession: "+errorKind(err))
		}
		if result == "TIMEDOUT" {
			result = OutRefused
		}
		done(Output{Result: result})
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
	default:
		rec, name, ok := r.somePlayer(rng, game)
		if !ok {
			return
		}
		r.describe(ctx, client, name, rec)
	}
}

// group reserves seats for n players at once with CreatePlayerSessions, recorded as one operation.
func (r *run) group(ctx context.Context, rng *rand.Rand, client int, key, gameID, game, player string, n int) {
	var ids []string
	for i := range n {
		ids = append(ids, fmt.Sprintf("%s-g%d", player, i))
	}
	done := r.hist.Invoke(client, key, Input{Op: OpGroup, PS: strings.Join(ids, ",")})
	out, err := r.pick(rng).api.CreatePlayerSessions(ctx, &gamelift.CreatePlayerSessionsInput{GameSessionId: aws.String(gameID), PlayerIds: ids})
	result := outcome(err)
	if err != nil {
		r.count(r.errs, "CreatePlayerSessions: "+errorKind(err))
	}
	if result == "TIMEDOUT" {
		result = OutRefused
	}
	done(Output{Result: result})
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

// gameIDs are the game sessions the workers use now.
func (r *run) gameIDs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.current)
}

// newGameSessions creates n game sessions (1 to 4 seats, an endpoint: ACTIVE at once), waits for them to be
// ACTIVE, and makes them the newest of the workers' current ones (the oldest leave it: their histories end).
func (r *run) newGameSessions(ctx context.Context, n int) error {
	var names []string
	for range n {
		r.mu.Lock()
		name := fmt.Sprint("game-", len(r.games)+len(names))
		max := 1 + r.rng.IntN(4)
		r.mu.Unlock()
		gs := &gamev1.GameSession{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: gamev1.GameSessionSpec{FleetID: "fleet-soak", MaximumPlayerSessionCount: int32(max), Endpoint: gamev1.Endpoint{IPAddress: "10.0.0.1", Port: 7777}}}
		if err := r.admin.Create(ctx, gs); err != nil {
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
		if len(r.current) > gameSessions {
			r.current = r.current[len(r.current)-gameSessions:]
		}
		r.mu.Unlock()
		return nil
	}
	return fmt.Errorf("game sessions %v not ACTIVE within 60 s", names)
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

// describe records a DescribePlayerSessions of the player's session in its game session, and returns its
// status ("" none, OutUnknown no answer).
func (r *run) describe(ctx context.Context, client int, player string, rec playerRecord) string {
	done := r.hist.Invoke(client, ns+"/"+rec.game, Input{Op: OpDescribe, PS: player})
	out, err := r.pick(rand.New(rand.NewPCG(uint64(len(player)), uint64(client)))).api.DescribePlayerSessions(ctx,
		&gamelift.DescribePlayerSessionsInput{PlayerId: aws.String(player)})
	if err != nil {
		r.count(r.errs, "DescribePlayerSessions: "+errorKind(err))
		done(Output{Result: OutUnknown})
		return OutUnknown
	}
	status := ""
	if len(out.PlayerSessions) > 0 {
		status = string(out.PlayerSessions[0].Status)
	}
	done(Output{Result: status})
	return status
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
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorFault() == smithy.FaultServer || code(api) == "InternalServiceException" {
		return OutUnknown
	}
	switch {
	case code(api) == "UnauthorizedException" || code(api) == "ThrottlingException" || strings.Contains(api.ErrorMessage(), "concurrently"):
		return OutRejected
	case code(api) == "GameSessionFullException":
		return OutFull
	case strings.Contains(api.ErrorMessage(), "TIMEDOUT"):
		return "TIMEDOUT"
	}
	return OutRefused
}

// code is an API error's code without the namespace some protocols prefix it with.
func code(api smithy.APIError) string {
	c := api.ErrorCode()
	return c[strings.LastIndex(c, "#")+1:]
}

func errorKind(err error) string {
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
		for i := range list.Items {
			r.observe(&list.Items[i], false)
		}
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
	rev := Revision{Namespace: ps.Namespace, Name: ps.Name, GameSession: ps.Spec.GameSessionName, Status: string(ps.Status.Status),
		Deleted: deleted, Seen: time.Now()}
	if max, ok := r.max.Load(ps.Spec.GameSessionName); ok {
		rev.Max = max.(int)
	}
	if ps.Status.CreationTime != nil {
		rev.Reserved = ps.Status.CreationTime.Time
	}
	r.obs.Observe(rev)
}

// report logs the summary (and appends it to SOAK_REPORT).
func (r *run) report(seed uint64, duration time.Duration, violations int) {
	var b strings.Builder
	fmt.Fprintf(&b, "\n### Soak, seed %d, %s\n\n| what | count |\n|---|---|\n", seed, duration)
	counts := r.hist.Count()
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range counts {
			if !yield(k) {
				return
			}
		}
	}) {
		fmt.Fprintf(&b, "| operation: %s | %d |\n", k, counts[k])
	}
	r.mu.Lock()
	for k, n := range r.faults {
		fmt.Fprintf(&b, "| fault: %s | %d |\n", k, n)
	}
	for k, n := range r.errs {
		fmt.Fprintf(&b, "| error seen by clients: %s | %d |\n", k, n)
	}
	r.mu.Unlock()
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
