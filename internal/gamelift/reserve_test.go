package gamelift

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/internal/index"
)

// TestFailedCallKeepsWhatTheOperatorDecided: a CreatePlayerSession(s) that fails deletes only the player
// sessions it knows to be undecided (or refused), never one the operator granted a seat meanwhile. Found by
// the soak: under load a replica's index did not show the decision within the decision timeout, the call
// answered InternalServiceException and deleted player sessions the operator had reserved (and timed out):
// seats others had been refused for vanished with their records. A call without a decision in time now
// leaves its player sessions to the operator; a call whose creates failed deletes the others under a
// resourceVersion precondition.
func TestFailedCallKeepsWhatTheOperatorDecided(t *testing.T) {
	const gsid = `"arn:aws:gamelift:local::gamesession/fleet-a/gsess-claimed"`
	for _, tt := range []struct {
		name    string
		action  string
		body    string
		granted []string // players whose player session the operator reserves at once (the index not told)
		failed  []string // players whose create fails (the API server unavailable)
		kept    map[string]gamev1.PlayerSessionStatusValue
	}{
		{"no decision seen in time, reserved meanwhile", "CreatePlayerSession", `{"GameSessionId":` + gsid + `,"PlayerId":"a"}`,
			[]string{"a"}, nil, map[string]gamev1.PlayerSessionStatusValue{"a": gamev1.PlayerSessionReserved}},
		{"no decision seen in time, undecided: left to the operator", "CreatePlayerSession", `{"GameSessionId":` + gsid + `,"PlayerId":"a"}`,
			nil, nil, map[string]gamev1.PlayerSessionStatusValue{"a": ""}},
		{"a group member's create failed, another reserved meanwhile", "CreatePlayerSessions", `{"GameSessionId":` + gsid + `,"PlayerIds":["a","b","c"]}`,
			[]string{"a"}, []string{"b"}, map[string]gamev1.PlayerSessionStatusValue{"a": gamev1.PlayerSessionReserved}},
		{"a group member's create failed, the others undecided: withdrawn", "CreatePlayerSessions", `{"GameSessionId":` + gsid + `,"PlayerIds":["a","b","c"]}`,
			nil, []string{"b"}, map[string]gamev1.PlayerSessionStatusValue{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := fakeServer(t, func(b *fake.ClientBuilder) {
				b.WithInterceptorFuncs(interceptor.Funcs{Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
					ps, ok := obj.(*gamev1.PlayerSession)
					switch {
					case !ok:
						return c.Create(ctx, obj, opts...)
					case slices.Contains(tt.failed, ps.Spec.PlayerID):
						return apierrors.NewServiceUnavailable("etcd unavailable")
					}
					if err := c.Create(ctx, obj, opts...); err != nil || !slices.Contains(tt.granted, ps.Spec.PlayerID) {
						return err
					}
					reserved := ps.DeepCopy() // the caller keeps its create's resourceVersion, as from a real create
					reserved.Status.Status, reserved.Status.PlayerSessionID = gamev1.PlayerSessionReserved, "psess-"+ps.Spec.PlayerID
					return c.Status().Update(ctx, reserved)
				}})
			})
			w := httptest.NewRecorder()
			s.ServeHTTP(w, signedCall(t, false, tt.action, []byte(tt.body)))
			if w.Code != http.StatusInternalServerError {
				t.Fatalf("answered %d %s, want InternalServiceException", w.Code, w.Body)
			}
			var list gamev1.PlayerSessionList
			if err := s.Client.List(context.Background(), &list, client.InNamespace("tenant")); err != nil {
				t.Fatal(err)
			}
			got := map[string]gamev1.PlayerSessionStatusValue{}
			for _, ps := range list.Items {
				if ps.Name != "claimed-p1" { // the fixture's
					got[ps.Spec.PlayerID] = ps.Status.Status
				}
			}
			if !maps.Equal(got, tt.kept) {
				t.Errorf("left in the API server %v, want %v", got, tt.kept)
			}
		})
	}
}

// TestReservationWaitsForTheGameSession: a CreatePlayerSession on a game session this replica's cache does
// not hold yet, or holds ACTIVATING, waits for the cache to catch up instead of answering NotFound or
// InvalidGameSessionStatus (found by the soak: a backend reserves seats right after another replica
// created or activated the game session).
func TestReservationWaitsForTheGameSession(t *testing.T) {
	const id = "arn:aws:gamelift:local::gamesession/fleet-a/gsess-fresh"
	for _, tt := range []struct {
		name   string
		cached gamev1.GameSessionStatusValue // "": not in the cache yet
	}{
		{"created through another replica a moment ago", ""},
		{"activated through another replica a moment ago", gamev1.GameSessionActivating},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			missed := make(chan struct{})
			var once sync.Once
			s := fakeServer(t, func(b *fake.ClientBuilder) {
				b.WithInterceptorFuncs(interceptor.Funcs{List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
					err := c.List(ctx, list, opts...)
					if l, ok := list.(*gamev1.GameSessionList); ok && (len(l.Items) == 0 || l.Items[0].Status.Status != gamev1.GameSessionActive) {
						once.Do(func() { close(missed) })
					}
					return err
				}})
			})
			s.GameSessionChanges = &index.Signal{}
			gs := &gamev1.GameSession{ObjectMeta: metav1.ObjectMeta{Namespace: "tenant", Name: "fresh"},
				Spec: gamev1.GameSessionSpec{FleetID: "fleet-a", MaximumPlayerSessionCount: 2}}
			setStatus := func(status gamev1.GameSessionStatusValue) {
				gs.Status.Status, gs.Status.GameSessionID = status, id
				if err := s.Client.Status().Update(ctx, gs); err != nil {
					t.Fatal(err)
				}
			}
			if tt.cached != "" {
				if err := s.Client.Create(ctx, gs); err != nil {
					t.Fatal(err)
				}
				setStatus(tt.cached)
			}
			answered := make(chan *httptest.ResponseRecorder)
			go func() {
				w := httptest.NewRecorder()
				s.ServeHTTP(w, signedCall(t, false, "CreatePlayerSession", []byte(`{"GameSessionId":"`+id+`","PlayerId":"a"}`)))
				answered <- w
			}()
			<-missed // the cache catches up: the game session arrives ACTIVE, and the informer says so
			if tt.cached == "" {
				if err := s.Client.Create(ctx, gs); err != nil {
					t.Fatal(err)
				}
			}
			setStatus(gamev1.GameSessionActive)
			s.GameSessionChanges.Notify()
			w := <-answered
			// The reservation went ahead: its player session created, no decision within the fixture's 1 ms.
			if w.Code != http.StatusInternalServerError || !strings.Contains(w.Body.String(), "no admission decision") {
				t.Errorf("answered %d %s, want the reservation made", w.Code, w.Body)
			}
		})
	}
}

// TestServerErrorsWithoutAddresses: an InternalServiceException from a failed request to kube-apiserver
// tells the caller what failed and why, not the cluster's address or the object's path (the soak's report
// listed dozens of them, each naming the API server's address and port).
func TestServerErrorsWithoutAddresses(t *testing.T) {
	const gsid = `"arn:aws:gamelift:local::gamesession/fleet-a/gsess-claimed"`
	s := fakeServer(t, func(b *fake.ClientBuilder) {
		b.WithInterceptorFuncs(interceptor.Funcs{Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if _, ok := obj.(*gamev1.PlayerSession); ok {
				return &url.Error{Op: "Post", URL: "https://10.96.0.1:443/apis/game.playersessions.dev/v1alpha1/namespaces/tenant/playersessions",
					Err: errors.New("dial tcp 10.96.0.1:443: connect: connection refused")}
			}
			return c.Create(ctx, obj, opts...)
		}})
	})
	w := httptest.NewRecorder()
	s.ServeHTTP(w, signedCall(t, false, "CreatePlayerSession", []byte(`{"GameSessionId":`+gsid+`,"PlayerId":"a"}`)))
	if w.Code != http.StatusInternalServerError {
		t.Fatalf("answered %d %s, want InternalServiceException", w.Code, w.Body)
	}
	body := w.Body.String()
	if strings.Contains(body, "10.96.0.1") || strings.Contains(body, "namespaces/tenant") || !strings.Contains(body, "Post (cluster API): dial tcp: connect: connection refused") {
		t.Errorf("answered %s", body)
	}
}
