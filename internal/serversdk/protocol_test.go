package serversdk_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	. "github.com/onsi/gomega"

	"github.com/playersessions/operator/internal/serversdk"
)

// rawServer is a Server with one action, Echo (counted), for tests that speak the protocol by hand.
func rawServer(t *testing.T, configure func(*serversdk.Server)) (string, *atomic.Int64) {
	t.Helper()
	var echoes atomic.Int64
	s := &serversdk.Server{Auth: tokens{}, Actions: map[string]serversdk.Action{
		"Echo": func(_ context.Context, p *serversdk.Process, body json.RawMessage) (any, *serversdk.Error) {
			echoes.Add(1)
			time.Sleep(20 * time.Millisecond) // long enough for a repeated id to arrive while it runs
			var in struct{ Text string }
			_ = json.Unmarshal(body, &in)
			return map[string]any{"Text": in.Text, "Process": p.ID}, nil
		},
	}}
	if configure != nil {
		configure(s)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http"), &echoes
}

func dial(t *testing.T, url, query string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(url+"/?"+query, nil)
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, resp, err
}

const goodQuery = "pID=proc-1&sdkVersion=5.6.0&sdkLanguage=Go&ComputeId=compute-1&FleetId=fleet-1&IdempotencyToken=x&Authorization=token-1"

func read(t *testing.T, c *websocket.Conn) map[string]any {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, data, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("reading an answer: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("an answer that is not JSON: %q", data)
	}
	return m
}

// TestConnectRefusals: a connection without the SDK's parameters, or with credentials the authenticator
// refuses (a wrong token, another fleet's or compute's), is refused before the upgrade, with the reason.
func TestConnectRefusals(t *testing.T) {
	url, _ := rawServer(t, nil)
	for _, tc := range []struct {
		name, query string
		status      int
	}{
		{"no token", "pID=p&ComputeId=compute-1&FleetId=fleet-1", http.StatusBadRequest},
		{"no pID", "ComputeId=compute-1&FleetId=fleet-1&Authorization=token-1", http.StatusBadRequest},
		{"wrong token", "pID=p&ComputeId=compute-1&FleetId=fleet-1&Authorization=token-2", http.StatusUnauthorized},
		{"another fleet", "pID=p&ComputeId=compute-1&FleetId=fleet-2&Authorization=token-1", http.StatusUnauthorized},
		{"another compute", "pID=p&ComputeId=compute-2&FleetId=fleet-1&Authorization=token-1", http.StatusUnauthorized},
		{"a forged SigV4", "pID=p&ComputeId=compute-1&FleetId=fleet-1&Authorization=SigV4&X-Amz-Algorithm=AWS4-HMAC-SHA256" +
			"&X-Amz-Credential=AKIDTEST/20261202/us-east-1/gamelift/aws4_request&X-Amz-Date=20261202T000000Z&X-Amz-Signature=00", http.StatusUnauthorized},
	} {
		_, resp, err := dial(t, url, tc.query)
		if err == nil || resp == nil || resp.StatusCode != tc.status {
			t.Errorf("%s: got %v (%v), want HTTP %d", tc.name, err, resp, tc.status)
		}
	}
	// Both forms of the URL the SDKs build: with and without a trailing slash.
	if c, _, err := websocket.DefaultDialer.Dial(url+"?"+goodQuery, nil); err != nil {
		t.Errorf("without a trailing slash: %v", err)
	} else {
		c.Close()
	}
}

// TestProtocolBounds: each kind of bad input is answered with a clear error and serves nothing; a repeated
// RequestId is answered with the first answer without serving the action again; a flood is answered 429;
// an oversized frame closes the connection (1009).
func TestProtocolBounds(t *testing.T) {
	g := NewWithT(t)
	url, echoes := rawServer(t, func(s *serversdk.Server) {
		s.MaxFrame, s.RatePerConnection, s.BurstPerConnection = 1024, 5, 5
	})
	c, _, err := dial(t, url, goodQuery)
	g.Expect(err).NotTo(HaveOccurred())

	g.Expect(c.WriteMessage(websocket.TextMessage, []byte("not json"))).To(Succeed())
	m := read(t, c)
	g.Expect(m["StatusCode"]).To(BeEquivalentTo(400))
	g.Expect(m["ErrorMessage"]).To(ContainSubstring("JSON object with Action and RequestId"))
	g.Expect(c.WriteMessage(websocket.BinaryMessage, []byte(`{"Action":"Echo","RequestId":"b"}`))).To(Succeed())
	g.Expect(read(t, c)["ErrorMessage"]).To(ContainSubstring("JSON text frames"))
	g.Expect(c.WriteJSON(map[string]string{"Action": "Echo"})).To(Succeed())
	g.Expect(read(t, c)["ErrorMessage"]).To(ContainSubstring("needs a RequestId"))
	g.Expect(c.WriteJSON(map[string]string{"Action": "DanceParty", "RequestId": "r0"})).To(Succeed())
	m = read(t, c)
	g.Expect(m).To(Equal(map[string]any{"Action": "DanceParty", "RequestId": "r0", "StatusCode": 400.0, "ErrorMessage": `unknown action "DanceParty"`}))
	g.Expect(echoes.Load()).To(BeZero())

	// The same RequestId twice, the second while the first runs: one answer's content twice, one Echo.
	for range 2 {
		g.Expect(c.WriteJSON(map[string]string{"Action": "Echo", "RequestId": "r1", "Text": "hello"})).To(Succeed())
	}
	first, second := read(t, c), read(t, c)
	g.Expect(first).To(Equal(map[string]any{"Action": "Echo", "RequestId": "r1", "StatusCode": 200.0, "Text": "hello", "Process": "proc-1"}))
	g.Expect(second).To(Equal(first))
	g.Expect(echoes.Load()).To(BeEquivalentTo(1))

	// A flood: beyond the rate, 429 for each request refused, with its id; nothing served for them.
	time.Sleep(time.Second) // the bucket refills
	for i := range 20 {
		g.Expect(c.WriteJSON(map[string]string{"Action": "Echo", "RequestId": fmt.Sprint("f", i)})).To(Succeed())
	}
	codes := map[float64]int{}
	for range 20 {
		m := read(t, c)
		codes[m["StatusCode"].(float64)]++
		g.Expect(m["RequestId"]).To(HavePrefix("f"))
	}
	g.Expect(codes[429]).To(BeNumerically(">=", 10), "%v", codes)
	g.Expect(codes[200] + codes[429]).To(Equal(20))
	g.Expect(echoes.Load()).To(BeEquivalentTo(1 + codes[200]))

	// An oversized frame ends the connection with 1009.
	g.Expect(c.WriteMessage(websocket.TextMessage, []byte(`{"Action":"Echo","RequestId":"big","Text":"`+strings.Repeat("x", 2048)+`"}`))).To(Succeed())
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err = c.ReadMessage()
	var closed *websocket.CloseError
	g.Expect(errors.As(err, &closed)).To(BeTrue(), "%v", err)
	g.Expect(closed.Code).To(Equal(websocket.CloseMessageTooBig))
}

// refuseAll refuses every connection in Connected, as a backend refuses a process it cannot take.
type refuseAll struct{}

func (refuseAll) Connected(context.Context, *serversdk.Process) error {
	return errors.New("fleet-1 has no compute compute-1")
}
func (refuseAll) Disconnected(context.Context, *serversdk.Process) {}

// TestConnectedRefusesAndPushToAClosedProcess: a refusal by the Connected hook closes the connection with
// its reason (1008); Push to a process whose connection is gone answers ErrClosed.
func TestConnectedRefusesAndPushToAClosedProcess(t *testing.T) {
	g := NewWithT(t)
	url, _ := rawServer(t, func(s *serversdk.Server) { s.Hooks = refuseAll{} })
	c, _, err := dial(t, url, goodQuery)
	g.Expect(err).NotTo(HaveOccurred())
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err = c.ReadMessage()
	var closed *websocket.CloseError
	g.Expect(errors.As(err, &closed)).To(BeTrue(), "%v", err)
	g.Expect(closed.Code).To(Equal(websocket.ClosePolicyViolation))
	g.Expect(closed.Text).To(Equal("fleet-1 has no compute compute-1"))

	b := newBackend()
	_, url2 := startServer(t, b, tokens{})
	c2, _, err := dial(t, url2, goodQuery)
	g.Expect(err).NotTo(HaveOccurred())
	p := <-b.processes
	g.Expect(p.Push("CreateGameSession", map[string]any{"GameSessionId": "gs-1"})).To(Succeed())
	m := read(t, c2)
	g.Expect(m).To(Equal(map[string]any{"Action": "CreateGameSession", "GameSessionId": "gs-1"}), "a push has no RequestId nor StatusCode")
	c2.Close()
	<-b.gone
	g.Expect(p.Push("TerminateProcess", nil)).To(MatchError(serversdk.ErrClosed))
}

// TestServerErrorsWithoutAddresses: an error answer tells the process what failed, not the cluster's
// address or the object's path that a failed request to kube-apiserver names.
func TestServerErrorsWithoutAddresses(t *testing.T) {
	g := NewWithT(t)
	const failed = `Patch "https://10.96.0.1:443/apis/game.playersessions.dev/v1alpha1/namespaces/team-a/computes/c-1/status": read tcp 10.0.0.7:40664->10.96.0.1:443: read: connection reset by peer`
	url, _ := rawServer(t, func(s *serversdk.Server) {
		s.Actions["Fail"] = func(_ context.Context, _ *serversdk.Process, body json.RawMessage) (any, *serversdk.Error) {
			var in struct{ Status int }
			_ = json.Unmarshal(body, &in)
			return nil, serversdk.Errorf(in.Status, "writing the compute failed: %s", failed)
		}
	})
	c, _, err := dial(t, url, goodQuery)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(c.WriteJSON(map[string]any{"Action": "Fail", "RequestId": "r1", "Status": 500})).To(Succeed())
	m := read(t, c)
	g.Expect(m["StatusCode"]).To(BeEquivalentTo(500))
	g.Expect(m["ErrorMessage"]).To(Equal("writing the compute failed: Patch (cluster API): read tcp: read: connection reset by peer"))
	g.Expect(c.WriteJSON(map[string]any{"Action": "Fail", "RequestId": "r2", "Status": 400})).To(Succeed())
	g.Expect(read(t, c)["ErrorMessage"]).To(Equal("writing the compute failed: Patch (cluster API): read tcp: read: connection reset by peer"))
}
