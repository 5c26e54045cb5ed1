package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/internal/indexes"
)

// TestSessionCollector: player sessions by status, the seats of the ACTIVE game sessions, and, with a
// history store, the ended player sessions still custom resources more than the grace and a minute after
// their game session ended (the archive backlog); without a store no backlog is reported.
func TestSessionCollector(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	reservedAt := metav1.NewMicroTime(now.Add(-42 * time.Second))
	scheme := runtime.NewScheme()
	_ = gamev1.AddToScheme(scheme)
	ended := func(name string, status gamev1.PlayerSessionStatusValue, ago time.Duration) client.Object {
		t := metav1.NewMicroTime(now.Add(-ago))
		return &gamev1.PlayerSession{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name},
			Status: gamev1.PlayerSessionStatus{Status: status, GameSessionTerminationTime: &t}}
	}
	objs := []client.Object{
		&gamev1.PlayerSession{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "reserved"}, Status: gamev1.PlayerSessionStatus{Status: gamev1.PlayerSessionReserved,
			CreationTime: &reservedAt}},
		&gamev1.PlayerSession{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "active"}, Status: gamev1.PlayerSessionStatus{Status: gamev1.PlayerSessionActive}},
		ended("due", gamev1.PlayerSessionCompleted, 10*time.Minute),
		ended("due-too", gamev1.PlayerSessionTimedOut, 7*time.Minute),
		ended("in-grace", gamev1.PlayerSessionCompleted, 5*time.Minute),
		&gamev1.GameSession{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a"}, Spec: gamev1.GameSessionSpec{MaximumPlayerSessionCount: 4},
			Status: gamev1.GameSessionStatus{Status: gamev1.GameSessionActive}},
		&gamev1.GameSession{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "b"}, Spec: gamev1.GameSessionSpec{MaximumPlayerSessionCount: 10},
			Status: gamev1.GameSessionStatus{Status: gamev1.GameSessionTerminated}},
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).
		WithIndex(&gamev1.PlayerSession{}, indexes.PlayerSessionStatus, func(o client.Object) []string {
			return []string{indexes.StatusOf(o.(*gamev1.PlayerSession))}
		}).Build()
	for _, tc := range []struct {
		name  string
		grace time.Duration
		want  map[string]float64
	}{
		{"with a history store", 5 * time.Minute, map[string]float64{
			"playersessions_history_backlog": 2, "playersessions_seats_capacity": 4, "playersessions_reservation_oldest_age_seconds": 42,
			"playersessions_player_sessions{RESERVED}": 1, "playersessions_player_sessions{COMPLETED}": 2,
			"playersessions_game_sessions{ACTIVE}": 1, "playersessions_game_sessions{TERMINATED}": 1}},
		{"without", 0, map[string]float64{"playersessions_history_backlog": -1, "playersessions_seats_capacity": 4}},
	} {
		col := &sessionCollector{now: func() time.Time { return now }}
		var reader client.Reader = c
		col.reader.Store(&reader)
		col.grace.Store(int64(tc.grace))
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(col)
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, f := range families {
			for _, m := range f.GetMetric() {
				key := f.GetName()
				for _, l := range m.GetLabel() {
					key += "{" + l.GetValue() + "}"
				}
				got[key] = m.GetGauge().GetValue()
			}
		}
		for k, want := range tc.want {
			v, ok := got[k]
			switch {
			case want == -1 && ok:
				t.Errorf("%s: %s = %v, want none", tc.name, k, v)
			case want != -1 && v != want:
				t.Errorf("%s: %s = %v, want %v", tc.name, k, v, want)
			}
		}
	}
}
