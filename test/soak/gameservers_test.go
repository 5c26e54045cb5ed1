package soak

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/gamelift"
	"github.com/aws/smithy-go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/internal/agones"
	"github.com/playersessions/operator/internal/agones/agonestest"
	"github.com/playersessions/operator/test/gameserver/gametest"
)

// The kinds of game session the soak plays: with an endpoint (its game server answers with signed JSON
// calls), on an Agones GameServer (players through its players List), on a Server SDK game server (players
// connect to the process, which accepts and removes them with the official SDK).
const (
	kindPlain  = "endpoint"
	kindAgones = "agones"
	kindSDK    = "sdk"
)

type gameInfo struct {
	kind   string
	server string // the Agones GameServer
	port   int32  // where the SDK game server takes players
	proc   *gametest.Process
}

// createGame creates a game session of the kind and returns its object name: an Agones one's GameServer
// first (Allocated, with a players List), then the game session with kubectl; an SDK one's game server
// process first (a compute registered for it, its token in its environment, connected through the SDK
// proxy), then the game session with kubectl or, half the time, GameLift's CreateGameSession (named after
// the request: found by its name).
func (r *run) createGame(ctx context.Context, name string, max int, kind string) (string, error) {
	gs := &gamev1.GameSession{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: gamev1.GameSessionSpec{FleetID: "fleet-soak", MaximumPlayerSessionCount: int32(max), Endpoint: gamev1.Endpoint{IPAddress: "10.0.0.1", Port: 7777}}}
	info := &gameInfo{kind: kind}
	switch kind {
	case kindAgones:
		info.server = "gs-" + name
		if _, err := agonestest.CreateGameServer(ctx, r.admin, agonestest.GameServerOptions{Namespace: ns, Name: info.server,
			State: agones.StateAllocated, Address: "10.0.0.2", Lists: []string{"players"}}); err != nil {
			return "", err
		}
		gs.Spec.FleetID, gs.Spec.Endpoint = "fleet-agones", gamev1.Endpoint{}
		gs.Spec.Agones = &gamev1.AgonesGameServer{GameServerName: info.server}
	case kindSDK:
		compute := "c-" + name
		var token *gamelift.GetComputeAuthTokenOutput
		err := retry(func() error { // a replica may be starting, or down (a fault): another is asked
			api := r.pick(r.rng).api
			_, err := api.RegisterCompute(ctx, &gamelift.RegisterComputeInput{FleetId: aws.String("fleet-sdk"), ComputeName: aws.String(compute),
				IpAddress: aws.String("127.0.0.1")})
			if err == nil {
				token, err = api.GetComputeAuthToken(ctx, &gamelift.GetComputeAuthTokenInput{FleetId: aws.String("fleet-sdk"), ComputeName: aws.String(compute)})
			}
			return err
		})
		if err != nil {
			return "", err
		}
		launch := func(n int) *gametest.Process {
			id := fmt.Sprintf("proc-%s-%d", name, n)
			p := gametest.Start(r.t, "GAMELIFT_SDK_WEBSOCKET_URL=ws://"+r.sdk.Addr(), "GAMELIFT_SDK_AUTH_TOKEN="+aws.ToString(token.AuthToken),
				"GAMELIFT_SDK_FLEET_ID=fleet-sdk", "GAMELIFT_SDK_HOST_ID="+compute, "GAMELIFT_SDK_PROCESS_ID="+id)
			r.procs.Store(id, p)
			return p
		}
		info.proc = launch(0)
		go r.relaunch(info, launch)
		gs.Spec.FleetID, gs.Spec.Endpoint = "fleet-sdk", gamev1.Endpoint{}
		if r.rng.IntN(2) == 0 {
			return r.createWithGameLift(ctx, name, max, info)
		}
	}
	r.mu.Lock()
	r.info[name] = info
	r.mu.Unlock()
	r.count(r.work, "game sessions created with kubectl, "+kind)
	return name, r.admin.Create(ctx, gs)
}

// relaunch starts the game server again, as a GameLift fleet relaunches a process that exits, while its
// game session is not placed yet: the example game exits when ProcessReady fails (its request timed out:
// the replica holding its connection was killed or cut off by a fault). Not once the test ends: its
// cleanups kill the game servers, and a new one's directory would be made while the test's are removed
// (a 60-minute run failed so).
func (r *run) relaunch(info *gameInfo, launch func(int) *gametest.Process) {
	for n := 1; n < 10; {
		time.Sleep(500 * time.Millisecond)
		r.mu.Lock()
		placed, proc := info.port != 0, info.proc
		r.mu.Unlock()
		if placed {
			return
		}
		if exited(proc) {
			r.mu.Lock()
			if r.t.Context().Err() != nil { // the test is ending: its cleanups kill the game servers
				r.mu.Unlock()
				return
			}
			info.proc = launch(n)
			r.mu.Unlock()
			r.count(r.faults, "an SDK game server exited before its game session was placed (ProcessReady failed through a fault); the fleet relaunched it")
			n++
		}
	}
}

// exited reports whether a game server process has exited (a zombie until the test reaps it).
func exited(p *gametest.Process) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Cmd.Process.Pid))
	if err != nil {
		return true
	}
	_, after, _ := strings.Cut(string(stat), ") ")
	return strings.HasPrefix(after, "Z")
}

// createWithGameLift creates an SDK game session with CreateGameSession, once (a retry would be another
// request: another game session), and finds its object by its name, also when the answer was lost.
func (r *run) createWithGameLift(ctx context.Context, name string, max int, info *gameInfo) (string, error) {
	var err error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		_, err = r.pick(r.rng).api.CreateGameSession(ctx, &gamelift.CreateGameSessionInput{FleetId: aws.String("fleet-sdk"),
			MaximumPlayerSessionCount: aws.Int32(int32(max)), Name: aws.String(name)})
		var api smithy.APIError
		noCapacity := errors.As(err, &api) && code(api) == "FleetCapacityExceededException"
		if err == nil || !(noCapacity || refused(err)) {
			break // created, or perhaps: found by its name below
		} // no process ready yet (the game server is starting), or the replica down: nothing created, again
	}
	var found string
	serr := retry(func() error {
		var list gamev1.GameSessionList
		if err := r.admin.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return err
		}
		for _, gs := range list.Items {
			if gs.Spec.Name == name {
				found = gs.Name
				return nil
			}
		}
		return fmt.Errorf("no game session named %s", name)
	})
	if serr != nil {
		return "", errors.Join(err, serr)
	}
	r.mu.Lock()
	r.info[found] = info
	r.mu.Unlock()
	r.count(r.work, "game sessions created with GameLift CreateGameSession, sdk")
	return found, nil
}

// retry calls f until it succeeds, for 30 s at most.
func retry(f func() error) error {
	var err error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if err = f(); err == nil {
			return nil
		}
	}
	return err
}

// agonesPlayer accepts or removes a player as an Agones game server does: its SDK appends the player
// session id to the GameServer's players List when the player connects (a RESERVED one), deletes it when
// the player leaves (an ACTIVE one). The game server is not told what the operator made of it: the
// operation returns when a read of the player session shows the move (ACTIVE, COMPLETED; TIMEDOUT if the
// reservation ran out first), and its outcome is unknown if none shows within 3 s. One move per player at
// a time, as a player connects once, so that the move seen is this operation's.
func (r *run) agonesPlayer(ctx context.Context, client int, key string, info gameInfo, op, player string, rec playerRecord) {
	unlock, ok := r.lockPlayer(player)
	if !ok {
		return
	}
	defer unlock()
	before, err := r.playerStatus(ctx, rec)
	if err != nil || (op == OpAccept && before != gamev1.PlayerSessionReserved) || (op == OpRemove && before != gamev1.PlayerSessionActive) {
		return // a game server sends only players that connect, and removes only those in
	}
	r.count(r.work, "Agones game servers: players List "+op)
	done := r.hist.Invoke(client, key, Input{Op: op, PS: player})
	change := agonestest.AppendListValues
	if op == OpRemove {
		change = agonestest.DeleteListValues
	}
	if err := change(ctx, r.admin, ns, info.server, "players", rec.psID); err != nil {
		r.count(r.errs, "Agones List "+op+": "+errorKind(err))
		if refused(err) {
			done(Output{Result: OutRejected})
			return
		}
	}
	done(Output{Result: r.moved(ctx, rec, before)})
}

// moved waits (3 s at most) for the player session to leave status before, and is the outcome of the move
// that made it leave: ok (ACTIVE or COMPLETED), TIMEDOUT, or unknown when it did not.
func (r *run) moved(ctx context.Context, rec playerRecord, before gamev1.PlayerSessionStatusValue) string {
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		switch now, err := r.playerStatus(ctx, rec); {
		case err != nil, now == before:
		case now == gamev1.PlayerSessionTimedOut:
			return "TIMEDOUT"
		default:
			return OutOK
		}
	}
	return OutUnknown
}

// playerStatus reads a player session's status from kube-apiserver (a consistent read).
func (r *run) playerStatus(ctx context.Context, rec playerRecord) (gamev1.PlayerSessionStatusValue, error) {
	var list gamev1.PlayerSessionList
	if err := r.admin.List(ctx, &list, client.InNamespace(ns), client.MatchingFields{"status.playerSessionId": rec.psID}); err != nil {
		return "", err
	}
	for _, ps := range list.Items {
		if ps.Status.PlayerSessionID == rec.psID {
			return ps.Status.Status, nil
		}
	}
	return "", fmt.Errorf("player session %s not found", rec.psID)
}

// lockPlayer takes the player's lock (false: another move of the player is under way).
func (r *run) lockPlayer(player string) (func(), bool) {
	m, _ := r.moving.LoadOrStore(player, &sync.Mutex{})
	if !m.(*sync.Mutex).TryLock() {
		return nil, false
	}
	return m.(*sync.Mutex).Unlock, true
}

// sdkPlayer connects a player to its SDK game server, which accepts it (AcceptPlayerSession) and answers
// OK or REFUSED; or disconnects one, whom the game server then removes (RemovePlayerSession: the player
// is not told; the operation returns when a read shows it COMPLETED, unknown if not within 3 s).
func (r *run) sdkPlayer(ctx context.Context, client int, key string, info gameInfo, op, player string, rec playerRecord) {
	unlock, ok := r.lockPlayer(player)
	if !ok {
		return
	}
	defer unlock()
	connKey := strings.TrimPrefix(key, ns+"/") + "/" + player
	if op == OpRemove {
		c, ok := r.conns.LoadAndDelete(connKey)
		if !ok {
			return // not connected
		}
		r.count(r.work, "SDK game servers: a player disconnected (RemovePlayerSession)")
		done := r.hist.Invoke(client, key, Input{Op: OpRemove, PS: player})
		_ = c.(net.Conn).Close()
		done(Output{Result: r.moved(ctx, rec, gamev1.PlayerSessionActive)})
		return
	}
	if _, ok := r.conns.Load(connKey); ok {
		return // connected already
	}
	r.count(r.work, "SDK game servers: a player connected (AcceptPlayerSession)")
	done := r.hist.Invoke(client, key, Input{Op: OpAccept, PS: player})
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", info.port), 5*time.Second)
	if err != nil {
		r.count(r.errs, "SDK game server: connecting: "+errorKind(err))
		done(Output{Result: OutRejected}) // nothing sent
		return
	}
	_ = c.SetDeadline(time.Now().Add(callTimeout))
	line, err := func() (string, error) {
		if _, err := fmt.Fprintln(c, rec.psID); err != nil {
			return "", err
		}
		return bufio.NewReader(c).ReadString('\n')
	}()
	_ = c.SetDeadline(time.Time{})
	switch {
	case err == nil && strings.TrimSpace(line) == "OK":
		r.conns.Store(connKey, c)
		done(Output{Result: OutOK})
	case err == nil && strings.Contains(line, "cannot become"): // the service refused the move
		_ = c.Close()
		r.count(r.errs, "SDK game server: "+kindOfRefusal(line))
		result := OutRefused
		if strings.Contains(line, "TIMEDOUT") {
			result = "TIMEDOUT"
		}
		done(Output{Result: result})
	default:
		// No answer, or the SDK's call failed (its connection lost): the service may have accepted the
		// player, whom the game server removes now that it left.
		what := "no answer"
		if err == nil {
			what = kindOfRefusal(line)
		}
		r.count(r.errs, "SDK game server: "+what)
		_ = c.Close()
		done(Output{Result: OutUnknown})
		r.hist.Invoke(client, key, Input{Op: OpRemove, PS: player})(Output{Result: OutUnknown})
	}
}

// kindOfRefusal is a REFUSED answer without the player session id.
func kindOfRefusal(line string) string {
	line = strings.TrimSpace(line)
	if i := strings.Index(line, "psess-"); i >= 0 {
		line = line[:i] + "psess-…" + line[min(len(line), i+42):]
	}
	return line
}

// tell sends a line to an SDK game server (END ends the game).
func (r *run) tell(port int32, line string) error {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = fmt.Fprintln(c, line)
	return err
}
