package replicas

import (
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func TestLost(t *testing.T) {
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	conn := func(holder string, connected time.Duration, closed *time.Duration) *gamev1.ProcessConnection {
		c := &gamev1.ProcessConnection{Replica: "r", Holder: holder, ConnectionTime: metav1.NewTime(at(connected))}
		if closed != nil {
			c.DisconnectionTime = &metav1.Time{Time: at(*closed)}
		}
		return c
	}
	lease := func(holder string, acquired, renewed time.Duration) *coordinationv1.Lease {
		return &coordinationv1.Lease{Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(holder), LeaseDurationSeconds: ptr.To(int32(30)),
			AcquireTime: &metav1.MicroTime{Time: at(acquired)}, RenewTime: &metav1.MicroTime{Time: at(renewed)}}}
	}
	closed := -5 * time.Second
	for _, tc := range []struct {
		name  string
		conn  *gamev1.ProcessConnection
		lease *coordinationv1.Lease
		since time.Time
		lost  bool
	}{
		{"no connection record", nil, nil, time.Time{}, false},
		{"held by a live run", conn("a", -time.Hour, nil), lease("a", -2*time.Hour, -10*time.Second), time.Time{}, false},
		{"closed by its replica", conn("a", -time.Hour, &closed), lease("a", -2*time.Hour, -time.Second), at(closed), true},
		{"its replica's Lease expired", conn("a", -time.Hour, nil), lease("a", -2*time.Hour, -40*time.Second), at(-10 * time.Second), true},
		{"expiring exactly now", conn("a", -time.Hour, nil), lease("a", -2*time.Hour, -30*time.Second), t0, true},
		{"its replica restarted", conn("a", -time.Hour, nil), lease("b", -20*time.Second, -time.Second), at(-20 * time.Second), true},
		{"another run took the Lease before it connected", conn("a", -time.Hour, nil), lease("b", -2*time.Hour, -time.Second), at(-time.Hour), true},
		{"no Lease", conn("a", -time.Hour, nil), nil, at(-time.Hour), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			since, lost := Lost(tc.conn, tc.lease, t0)
			if lost != tc.lost || !since.Equal(tc.since) {
				t.Errorf("Lost = %v, %v; want %v, %v", since, lost, tc.since, tc.lost)
			}
		})
	}
}

// TestHeartbeat: the first run creates its Lease, renews it, and a restarted replica (another holder)
// takes it over with a new acquire time, so its former run's connections are lost since then.
func TestHeartbeat(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := coordinationv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithScheme(scheme).Build()
	clk := clocktesting.NewFakeClock(t0)
	key := client.ObjectKey{Namespace: "sys", Name: LeaseName("pod-1")}
	get := func() *coordinationv1.Lease {
		l := &coordinationv1.Lease{}
		if err := c.Get(t.Context(), key, l); err != nil {
			t.Fatal(err)
		}
		return l
	}
	first := &Heartbeat{Client: c, Namespace: "sys", Name: key.Name, Holder: "run-1", Duration: 30 * time.Second, Clock: clk}
	if err := first.Renew(t.Context()); err != nil {
		t.Fatal(err)
	}
	l := get()
	if *l.Spec.HolderIdentity != "run-1" || *l.Spec.LeaseDurationSeconds != 30 || !l.Spec.RenewTime.Equal(&metav1.MicroTime{Time: t0}) || l.Labels[Label] != "true" {
		t.Fatalf("created Lease: %+v", l)
	}
	clk.Step(10 * time.Second)
	if err := first.Renew(t.Context()); err != nil {
		t.Fatal(err)
	}
	if l = get(); !l.Spec.RenewTime.Time.Equal(t0.Add(10*time.Second)) || !l.Spec.AcquireTime.Time.Equal(t0) {
		t.Fatalf("renewed Lease: %+v", l.Spec)
	}
	conn := &gamev1.ProcessConnection{Replica: key.Name, Holder: "run-1", ConnectionTime: metav1.NewTime(t0)}
	if _, lost := Lost(conn, l, clk.Now()); lost {
		t.Fatal("a connection of the renewing run is lost")
	}
	clk.Step(5 * time.Second)
	second := &Heartbeat{Client: c, Namespace: "sys", Name: key.Name, Holder: "run-2", Duration: 30 * time.Second, Clock: clk}
	if err := second.Renew(t.Context()); err != nil {
		t.Fatal(err)
	}
	l = get()
	if *l.Spec.HolderIdentity != "run-2" || !l.Spec.AcquireTime.Time.Equal(t0.Add(15*time.Second)) || ptr.Deref(l.Spec.LeaseTransitions, 0) != 1 {
		t.Fatalf("taken-over Lease: %+v", l.Spec)
	}
	if since, lost := Lost(conn, l, clk.Now()); !lost || !since.Equal(t0.Add(15*time.Second)) {
		t.Fatalf("the former run's connection: lost %v since %v", lost, since)
	}
}
