package serversdk_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/playersessions/operator/internal/serversdk"
	"github.com/playersessions/operator/test/gameserver/game"
	"github.com/playersessions/operator/test/gameserver/gametest"
)

// TestMain runs the example game server instead of the tests when the test binary is started as one: each
// SDK process of a test is a subprocess, since the SDK keeps one state per process.
func TestMain(m *testing.M) {
	game.RunIfAsked()
	os.Exit(m.Run())
}

// backend is the game-server backend of these tests: it records the requests, answers them, and lets the
// test push.
type backend struct {
	mu        sync.Mutex
	calls     []string
	processes chan *serversdk.Process
	gone      chan *serversdk.Process
	refuse    map[string]bool // player session ids AcceptPlayerSession refuses
}

func newBackend() *backend {
	return &backend{processes: make(chan *serversdk.Process, 8), gone: make(chan *serversdk.Process, 8), refuse: map[string]bool{}}
}

func (b *backend) Connected(_ context.Context, p *serversdk.Process) error {
	b.processes <- p
	return nil
}

func (b *backend) Disconnected(_ context.Context, p *serversdk.Process) { b.gone <- p }

func (b *backend) record(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, fmt.Sprintf(format, args...))
}

func (b *backend) recorded() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.calls...)
}

func (b *backend) actions() map[string]serversdk.Action {
	fields := func(body json.RawMessage) map[string]any {
		var m map[string]any
		_ = json.Unmarshal(body, &m)
		return m
	}
	return map[string]serversdk.Action{
		"ActivateServerProcess": func(_ context.Context, p *serversdk.Process, body json.RawMessage) (any, *serversdk.Error) {
			f := fields(body)
			b.record("ActivateServerProcess %s port=%v logs=%v sdk=%v/%v", p.ID, f["Port"], f["LogPaths"], f["SdkLanguage"], f["SdkVersion"])
			return nil, nil
		},
		"HeartbeatServerProcess": func(_ context.Context, p *serversdk.Process, body json.RawMessage) (any, *serversdk.Error) {
			b.record("HeartbeatServerProcess %s healthy=%v", p.ID, fields(body)["HealthStatus"])
			return nil, nil
		},
		"ActivateGameSession": func(_ context.Context, p *serversdk.Process, body json.RawMessage) (any, *serversdk.Error) {
			b.record("ActivateGameSession %s", fields(body)["GameSessionId"])
			return nil, nil
		},
		"AcceptPlayerSession": func(_ context.Context, p *serversdk.Process, body json.RawMessage) (any, *serversdk.Error) {
			f := fields(body)
			if b.refuse[f["PlayerSessionId"].(string)] {
				return nil, serversdk.Errorf(http.StatusBadRequest, "player session %s is not RESERVED", f["PlayerSessionId"])
			}
			b.record("AcceptPlayerSession %s %s", f["GameSessionId"], f["PlayerSessionId"])
			return nil, nil
		},
		"RemovePlayerSession": func(_ context.Context, p *serversdk.Process, body json.RawMessage) (any, *serversdk.Error) {
			f := fields(body)
			b.record("RemovePlayerSession %s %s", f["GameSessionId"], f["PlayerSessionId"])
			return nil, nil
		},
		"TerminateServerProcess": func(_ context.Context, p *serversdk.Process, _ json.RawMessage) (any, *serversdk.Error) {
			b.record("TerminateServerProcess %s", p.ID)
			return nil, nil
		},
	}
}

// tokens is the test's Authenticator: token "token-1" is compute-1 of fleet-1 in tenant "team-a"; the SigV4
// form is checked against the key AKIDTEST.
type tokens struct{}

func (tokens) Authenticate(_ context.Context, r serversdk.ConnectRequest) (serversdk.Identity, error) {
	if r.AuthToken == serversdk.SigV4Authorization {
		if _, err := serversdk.VerifySigV4(r, time.Now(), func(id string) (string, bool) { return "secret-test", id == "AKIDTEST" }); err != nil {
			return serversdk.Identity{}, err
		}
		return serversdk.Identity{Namespace: "team-a", FleetID: r.FleetID, ComputeName: r.ComputeID}, nil
	}
	if r.AuthToken != "token-1" || r.FleetID != "fleet-1" || r.ComputeID != "compute-1" {
		return serversdk.Identity{}, errors.New("invalid auth token for this fleet and compute")
	}
	return serversdk.Identity{Namespace: "team-a", FleetID: "fleet-1", ComputeName: "compute-1"}, nil
}

func startServer(t *testing.T, b *backend, auth serversdk.Authenticator) (*serversdk.Server, string) {
	t.Helper()
	s := &serversdk.Server{Auth: auth, Actions: b.actions(), Hooks: b}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, "ws" + strings.TrimPrefix(srv.URL, "http")
}

// gameServer starts the example game server (the real SDK) as a subprocess with env.
func gameServer(t *testing.T, env ...string) (string, *exec.Cmd, *gametest.Output) {
	t.Helper()
	p := gametest.Start(t, env...)
	return p.Port, p.Cmd, p.Out
}

// TestRealSDKLifecycle: the official Go Server SDK v5, unmodified, in the example game server: it connects
// with its auth token, ProcessReady reaches the backend with its port and log paths, heartbeats follow, a
// pushed CreateGameSession reaches OnStartGameSession and the game activates it, players are accepted and
// removed as they connect and leave (a refusal reaches the game as the SDK's error), and a pushed
// TerminateProcess ends the process with ProcessEnding.
func TestRealSDKLifecycle(t *testing.T) {
	g := NewWithT(t)
	b := newBackend()
	b.refuse["psess-refused"] = true
	_, url := startServer(t, b, tokens{})
	port, cmd, out := gameServer(t, "GAMELIFT_SDK_WEBSOCKET_URL="+url, "GAMELIFT_SDK_AUTH_TOKEN=token-1",
		"GAMELIFT_SDK_FLEET_ID=fleet-1", "GAMELIFT_SDK_HOST_ID=compute-1", "GAMELIFT_SDK_PROCESS_ID=proc-1")
	var p *serversdk.Process
	select {
	case p = <-b.processes:
	case <-time.After(30 * time.Second):
		t.Fatalf("the SDK never connected: %s", out)
	}
	g.Expect(p.Identity).To(Equal(serversdk.Identity{Namespace: "team-a", FleetID: "fleet-1", ComputeName: "compute-1"}))
	g.Expect(p.ID).To(Equal("proc-1"))
	g.Expect(p.SDKLanguage).To(Equal("Go"))
	g.Eventually(b.recorded).WithTimeout(20*time.Second).Should(ContainElement(
		"ActivateServerProcess proc-1 port="+port+" logs=[/local/game/logs] sdk=Go/5.6.0"), "%s", out)
	g.Eventually(b.recorded).WithTimeout(10 * time.Second).Should(ContainElement("HeartbeatServerProcess proc-1 healthy=true"))

	const gsid = "arn:aws:gamelift:local::gamesession/fleet-1/gsess-1"
	g.Expect(p.Push("CreateGameSession", map[string]any{"GameSessionId": gsid, "GameSessionName": "arena", "MaximumPlayerSessionCount": 4,
		"IpAddress": "10.0.0.7", "Port": 7777, "GameProperties": map[string]string{"map": "dust"}, "GameSessionData": "{}"})).To(Succeed())
	g.Eventually(b.recorded).WithTimeout(20*time.Second).Should(ContainElement("ActivateGameSession "+gsid), "%s", out)
	g.Eventually(out.String).Should(ContainSubstring("game session " + gsid + " started (max 4 players)"))

	player := func(id string) (net.Conn, string) {
		c, err := net.Dial("tcp", "127.0.0.1:"+port)
		g.Expect(err).NotTo(HaveOccurred())
		fmt.Fprintln(c, id)
		line, _ := bufio.NewReader(c).ReadString('\n')
		return c, strings.TrimSpace(line)
	}
	alice, answer := player("psess-alice")
	g.Expect(answer).To(Equal("OK"))
	g.Expect(b.recorded()).To(ContainElement("AcceptPlayerSession " + gsid + " psess-alice"))
	refused, answer := player("psess-refused")
	refused.Close()
	g.Expect(answer).To(HavePrefix("REFUSED"))
	g.Expect(answer).To(ContainSubstring("player session psess-refused is not RESERVED"))
	alice.Close()
	g.Eventually(b.recorded).WithTimeout(10 * time.Second).Should(ContainElement("RemovePlayerSession " + gsid + " psess-alice"))

	g.Expect(p.Push("TerminateProcess", map[string]any{"TerminationTime": time.Now().Add(time.Minute).UnixMilli()})).To(Succeed())
	g.Eventually(b.recorded).WithTimeout(20*time.Second).Should(ContainElement("TerminateServerProcess proc-1"), "%s", out)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		g.Expect(err).NotTo(HaveOccurred(), "%s", out)
	case <-time.After(30 * time.Second):
		t.Fatalf("the game server did not exit after ProcessEnding: %s", out)
	}
	select {
	case gone := <-b.gone:
		g.Expect(gone).To(BeIdenticalTo(p))
	case <-time.After(10 * time.Second):
		t.Fatal("Disconnected was not called")
	}
}

// TestRealSDKSigV4: the SDK's SigV4 form of the connect query (no auth token, access keys in the
// environment) verifies against the key's secret; a wrong secret is refused at connect.
func TestRealSDKSigV4(t *testing.T) {
	g := NewWithT(t)
	b := newBackend()
	refusals := make(chan error, 16)
	_, url := startServer(t, b, countRefusals{tokens{}, refusals})
	env := []string{"GAMELIFT_SDK_WEBSOCKET_URL=" + url, "GAMELIFT_SDK_FLEET_ID=fleet-1", "GAMELIFT_SDK_HOST_ID=compute-9",
		"GAMELIFT_SDK_PROCESS_ID=proc-9", "GAMELIFT_REGION=us-east-1", "GAMELIFT_ACCESS_KEY=AKIDTEST"}
	_, _, out := gameServer(t, append(env, "GAMELIFT_SECRET_KEY=secret-test")...)
	select {
	case p := <-b.processes:
		g.Expect(p.ComputeName).To(Equal("compute-9"))
	case <-time.After(30 * time.Second):
		t.Fatalf("the SDK never connected with SigV4: %s", out)
	}
	// A wrong secret: refused at connect, again at each of the SDK's retries (which last minutes, so the
	// test does not wait for InitSDK to give up).
	_, _, out = gameServer(t, append(env, "GAMELIFT_SECRET_KEY=wrong")...)
	select {
	case err := <-refusals:
		g.Expect(err).To(MatchError(ContainSubstring("signature does not match")))
	case p := <-b.processes:
		t.Fatalf("a wrong secret connected as %v", p.Identity)
	case <-time.After(30 * time.Second):
		t.Fatalf("the SDK with a wrong secret never tried to connect: %s", out)
	}
	select {
	case p := <-b.processes:
		t.Fatalf("a wrong secret connected as %v", p.Identity)
	case <-time.After(3 * time.Second): // its first retry comes after 2 s
	}
}

// countRefusals reports each refused connection.
type countRefusals struct {
	serversdk.Authenticator
	refused chan<- error
}

func (c countRefusals) Authenticate(ctx context.Context, r serversdk.ConnectRequest) (serversdk.Identity, error) {
	id, err := c.Authenticator.Authenticate(ctx, r)
	if err != nil {
		select {
		case c.refused <- err:
		default:
		}
	}
	return id, err
}
