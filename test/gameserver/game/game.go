// Package game is an example game server built on the official GameLift Server SDK v5 for Go, unmodified
// (test/third_party/gamelift-server-sdk-go): what a real one does, small. It reads its GameLift settings
// from the environment (GAMELIFT_SDK_WEBSOCKET_URL, _AUTH_TOKEN, _FLEET_ID, _HOST_ID, _PROCESS_ID), calls
// InitSDK and ProcessReady, activates each game session the service starts on it, and serves players over
// TCP: a player connects and sends its player session id on one line; the game answers "OK" once
// AcceptPlayerSession succeeds (or "REFUSED <reason>" and hangs up), and calls RemovePlayerSession when the
// player disconnects. A player line "END" ends the game (ProcessEnding); so does the service's
// TerminateProcess push. cmd is test/gameserver; the tests run it as a subprocess.
package game

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"strings"
	"sync"

	"github.com/amazon-gamelift/amazon-gamelift-servers-go-server-sdk/v5/model"
	"github.com/amazon-gamelift/amazon-gamelift-servers-go-server-sdk/v5/model/request"
	"github.com/amazon-gamelift/amazon-gamelift-servers-go-server-sdk/v5/server"
)

// Options configure the game server.
type Options struct {
	// Listener is where players connect (its port is what ProcessReady reports).
	Listener net.Listener
	// Log receives what the game does (one line per event, for tests to follow).
	Log *log.Logger
}

// Run is the game server's life: InitSDK, ProcessReady, players until the game ends or ctx does, then
// ProcessEnding and Destroy.
func Run(ctx context.Context, o Options) error {
	if err := server.InitSDKFromEnvironment(); err != nil {
		return fmt.Errorf("InitSDK: %w", err)
	}
	ctx, end := context.WithCancel(ctx)
	defer end()
	g := &game{log: o.Log}
	port := o.Listener.Addr().(*net.TCPAddr).Port
	err := server.ProcessReady(server.ProcessParameters{
		OnStartGameSession: func(gs model.GameSession) {
			g.log.Printf("game session %s started (max %d players)", gs.GameSessionID, gs.MaximumPlayerSessionCount)
			if err := server.ActivateGameSession(); err != nil {
				g.log.Printf("ActivateGameSession: %v", err)
				return
			}
			g.log.Printf("game session %s activated", gs.GameSessionID)
		},
		OnUpdateGameSession: func(u model.UpdateGameSession) { g.log.Printf("game session updated: %s", u.UpdateReason) },
		OnProcessTerminate: func() {
			g.log.Printf("TerminateProcess received")
			end()
		},
		OnHealthCheck: func() bool { return true },
		Port:          port,
		LogParameters: server.LogParameters{LogPaths: []string{"/local/game/logs"}},
	})
	if err != nil {
		return fmt.Errorf("ProcessReady: %w", err)
	}
	g.log.Printf("process ready on port %d", port)
	go func() {
		<-ctx.Done()
		_ = o.Listener.Close()
	}()
	var wg sync.WaitGroup
	for {
		c, err := o.Listener.Accept()
		if err != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.player(c, end)
		}()
	}
	wg.Wait()
	err = server.ProcessEnding()
	g.log.Printf("process ending: %v", err)
	return errors.Join(err, server.Destroy())
}

type game struct{ log *log.Logger }

// player serves one player's connection.
func (g *game) player(c net.Conn, end func()) {
	defer c.Close()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return
	}
	id := strings.TrimSpace(line)
	if id == "END" {
		g.log.Printf("END received")
		end()
		return
	}
	if err := server.AcceptPlayerSession(id); err != nil {
		g.log.Printf("player %s refused: %v", id, err)
		fmt.Fprintf(c, "REFUSED %v\n", err)
		return
	}
	g.log.Printf("player %s accepted", id)
	// What the game knows of its player: the player session, with the data the backend reserved it with.
	req := request.NewDescribePlayerSessions()
	req.PlayerSessionID = id
	if res, err := server.DescribePlayerSessions(req); err != nil || len(res.PlayerSessions) != 1 {
		g.log.Printf("DescribePlayerSessions %s: %v (%d found)", id, err, len(res.PlayerSessions))
	} else {
		ps := res.PlayerSessions[0]
		g.log.Printf("player %s is %v, player data %q, since %d", id, ps.Status, ps.PlayerData, ps.CreationTime)
	}
	fmt.Fprintln(c, "OK")
	_, _ = io.Copy(io.Discard, c) // until the player leaves
	err = server.RemovePlayerSession(id)
	g.log.Printf("player %s removed: %v", id, err)
}

// Subprocess environment: a test binary whose TestMain calls RunIfAsked becomes this game server when it
// is started with ProcessEnv set (the SDK keeps one state per process, so each game server of a test is a
// subprocess of it), taking players on the port PortEnv names.
const (
	ProcessEnv = "PLAYERSESSIONS_TEST_GAME_SERVER"
	PortEnv    = "PLAYERSESSIONS_TEST_GAME_PORT"
)

// RunIfAsked runs the game server and exits when the process was started as one (ProcessEnv set); it
// returns otherwise.
func RunIfAsked() {
	if os.Getenv(ProcessEnv) == "" {
		return
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv(PortEnv))
	if err != nil {
		log.Fatal(err)
	}
	if err := Run(context.Background(), Options{Listener: l, Log: log.New(os.Stdout, "game: ", 0)}); err != nil {
		log.Fatal(err)
	}
	os.Exit(0)
}
