package query

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/internal/index"
	"github.com/playersessions/operator/internal/search"
)

// benchPlayerSession is the i-th player session of a game session of 10, with the status the controllers
// write when they reserve its seat (as hack/benchquery stores them).
// t0 is when the benchmark's player sessions were created.
var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func benchPlayerSession(i int) *gamev1.PlayerSession {
	gs := fmt.Sprintf("gs-%06d", i/10)
	created := metav1.NewMicroTime(t0)
	return &gamev1.PlayerSession{
		ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: fmt.Sprintf("ps-%07d", i), ResourceVersion: fmt.Sprint(i + 1),
			UID: "00000000-0000-0000-0000-000000000000", Generation: 1, CreationTimestamp: metav1.NewTime(t0)},
		Spec: gamev1.PlayerSessionSpec{GameSessionName: gs, PlayerID: fmt.Sprintf("player-%07d", i/2)},
		Status: gamev1.PlayerSessionStatus{
			PlayerSessionID: fmt.Sprintf("psess-%07d", i), Status: gamev1.PlayerSessionReserved,
			GameSessionID: "arn:aws:gamelift:local::gamesession/fleet-bench/" + gs, FleetID: "fleet-bench",
			FleetArn: "arn:aws:gamelift:local:000000000000:fleet/fleet-bench", CreationTime: &created,
			Endpoint: gamev1.Endpoint{IPAddress: "10.0.0.1", DNSName: "gs.example.com", Port: 7777}, ObservedGeneration: 1,
			Conditions: []metav1.Condition{{Type: gamev1.AdmittedCondition, Status: metav1.ConditionTrue,
				Reason: gamev1.SeatReservedReason, Message: "Seat reserved in game session " + gs,
				LastTransitionTime: metav1.NewTime(t0), ObservedGeneration: 1}},
		},
	}
}

// newTestServer is the query API server over ix with every request authenticated as user "bench" and
// authorized: the handler chain, routing and encoding of the real server without its delegation to
// kube-apiserver (whose answers the real server caches).
func newTestServer(tb testing.TB, ix *index.Index) http.Handler {
	tb.Helper()
	cfg := newConfig()
	cfg.Authentication.Authenticator = authenticator.RequestFunc(func(*http.Request) (*authenticator.Response, bool, error) {
		return &authenticator.Response{User: &user.DefaultInfo{Name: "bench", Groups: []string{user.AllAuthenticated}}}, true, nil
	})
	cfg.Authorization.Authorizer = authorizerfactory.NewAlwaysAllowAuthorizer()
	cfg.ExternalAddress = "127.0.0.1:443" // no listener: the handler is called directly
	cfg.LoopbackClientConfig = &rest.Config{Host: "https://127.0.0.1:443"}
	s, err := newServer(cfg, ix, search.NewIndex(), index.NewTokens([]byte("k")), nil, newWatchLimits(0, 0))
	if err != nil {
		tb.Fatal(err)
	}
	return s.server.Handler
}

// BenchmarkServeList is one query of the query API server in-process, from its handler chain to the encoded
// answer: "player sessions of one game session" (10) and "sessions of one player" (2) out of 10,000.
func BenchmarkServeList(b *testing.B) {
	ix := index.NewIndex(clock.RealClock{}, time.Minute)
	for i := range 10000 {
		ix.Upsert(benchPlayerSession(i))
	}
	h := newTestServer(b, ix)
	for _, bc := range []struct{ name, selector string }{
		{"gameSession", "gameSessionName=gs-000500"},
		{"player", "playerId=player-0002500"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req := httptest.NewRequestWithContext(context.Background(), http.MethodGet,
				"/apis/query.playersessions.dev/v1alpha1/playersessions?fieldSelector="+bc.selector, nil)
			req.Header.Set("Accept", "application/json")
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("%d: %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
