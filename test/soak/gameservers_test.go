package soak

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/gamelift"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
}

// createGame creates a game session of the kind: an Agones one's GameServer first (Allocated, with a
// players List), an SDK one's game server process first (a compute registered for it, its token in its
// environment, connected through the SDK proxy).
func (r *run) createGame(ctx context.Context, name string, max int, kind string) error {
	gs := &gamev1.GameSession{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: gamev1.GameSessionSpec{FleetID: "fleet-soak", MaximumPlayerSessionCount: int32(max), Endpoint: gamev1.Endpoint{IPAddress: "10.0.0.1", Port: 7777}}}
	info := &gameInfo{kind: kind}
	switch kind {
	case kindAgones:
		info.server = "gs-" + name
		if _, err := agonestest.CreateGameServer(ctx, r.admin, agonestest.GameServerOptions{Namespace: ns, Name: info.server,
			State: agones.StateAllocated, Address: "10.0.0.2", Lists: []string{"players"}}); err != nil {
			return err
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
			return err
		}
		gametest.Start(r.t, "GAMELIFT_SDK_WEBSOCKET_URL=ws://"+r.sdk.Addr(), "GAMELIFT_SDK_AUTH_TOKEN="+aws.ToString(token.AuthToken),
			"GAMELIFT_SDK_FLEET_ID=fleet-sdk", "GAMELIFT_SDK_HOST_ID="+compute, "GAMELIFT_SDK_PROCESS_ID=proc-"+name)
		gs.Spec.FleetID, gs.Spec.Endpoint = "fleet-sdk", gamev1.Endpoint{}
	}
	r.mu.Lock()
	r.info[name] = info
	r.mu.Unlock()
	r.count(r.work, "game sessions created with kubectl, "+kind)
	return r.admin.Create(ctx, gs)
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
// session id to the GameServer's players List, or deletes it. The game server learns nothing of what the
// operator makes of it, so the operation's outcome is unknown (it may take effect at any time after).
func (r *run) agonesPlayer(ctx context.Context, client int, key string, info gameInfo, op, player string, rec playerRecord) {
	r.count(r.work, "Agones game servers: players List "+op)
	done := r.hist.Invoke(client, key, Input{Op: op, PS: player})
	change := agonestest.AppendListValues
	if op == OpRemove {
		change = agonestest.DeleteListValues
	}
	err := change(ctx, r.admin, ns, info.server, "players", rec.psID)
	result := OutUnknown
	if err != nil {
		r.count(r.errs, "Agones List "+op+": "+errorKind(err))
		if refused(err) {
			result = OutRejected
		}
	}
	done(Output{Result: result})
}

// sdkPlayer connects a player to its SDK game server, which accepts it (AcceptPlayerSession) and answers
// OK or REFUSED; or disconnects one, whom the game server then removes (RemovePlayerSession: the player
// is not told, the outcome is unknown).
func (r *run) sdkPlayer(client int, key string, info gameInfo, op, player string, rec playerRecord) {
	connKey := strings.TrimPrefix(key, ns+"/") + "/" + player
	if op == OpRemove {
		c, ok := r.conns.LoadAndDelete(connKey)
		if !ok {
			return // not connected
		}
		r.count(r.work, "SDK game servers: a player disconnected (RemovePlayerSession)")
		done := r.hist.Invoke(client, key, Input{Op: OpRemove, PS: player})
		_ = c.(net.Conn).Close()
		done(Output{Result: OutUnknown})
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
