package controllers

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
)

// Integration tests: the controllers in a real manager against a real kube-apiserver and etcd (envtest).
// Durations are configured short; nothing sleeps for a minute.

func testOptions() Options {
	o := DefaultOptions()
	o.PlayerSessionTimeout = time.Hour
	o.Retention = time.Hour
	return o
}

func createGS(t *testing.T, c client.Client, ns, name string, max int32, mutate ...func(*gamev1.GameSession)) *gamev1.GameSession {
	t.Helper()
	gs := &gamev1.GameSession{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       gamev1.GameSessionSpec{FleetID: "fleet-test", MaximumPlayerSessionCount: max, Endpoint: gamev1.Endpoint{IPAddress: "10.0.0.1", Port: 7777}},
	}
	for _, m := range mutate {
		m(gs)
	}
	if err := c.Create(context.Background(), gs); err != nil {
		t.Fatal(err)
	}
	return gs
}

func createPS(t *testing.T, c client.Client, ns, name, game string) *gamev1.PlayerSession {
	t.Helper()
	ps := &gamev1.PlayerSession{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       gamev1.PlayerSessionSpec{GameSessionName: game, PlayerID: "player-" + name},
	}
	if err := c.Create(context.Background(), ps); err != nil {
		t.Fatal(err)
	}
	return ps
}

func getPS(g Gomega, c client.Client, ns, name string) *gamev1.PlayerSession {
	ps := &gamev1.PlayerSession{}
	g.Expect(c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, ps)).To(Succeed())
	return ps
}

func getGS(g Gomega, c client.Client, ns, name string) *gamev1.GameSession {
	gs := &gamev1.GameSession{}
	g.Expect(c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, gs)).To(Succeed())
	return gs
}

// patchPSStatus plays a game server: kubectl patch playersession NAME --subresource=status --type=merge -p '{"status":{"status":"ACTIVE"}}'.
func patchPSStatus(c client.Client, ns, name string, s gamev1.PlayerSessionStatusValue) error {
	ps := &gamev1.PlayerSession{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	return c.Status().Patch(context.Background(), ps, client.RawPatch("application/merge-patch+json", []byte(fmt.Sprintf(`{"status":{"status":%q}}`, s))))
}

// waitForStatus waits until the player session ns/name has status s.
func waitForStatus(t *testing.T, c client.Client, ns, name string, s gamev1.PlayerSessionStatusValue) {
	t.Helper()
	NewWithT(t).Eventually(func(g Gomega) {
		g.Expect(getPS(g, c, ns, name).Status.Status).To(Equal(s))
	}).WithTimeout(20 * time.Second).Should(Succeed())
}

func admittedCondition(ps *gamev1.PlayerSession) *metav1.Condition {
	return meta.FindStatusCondition(ps.Status.Conditions, gamev1.AdmittedCondition)
}

func TestIntegrationLifecycle(t *testing.T) {
	g := NewWithT(t)
	c := controlPlane(t)
	ns := namespace(t, c)
	startManager(t, testOptions())

	createGS(t, c, ns, "arena", 4)
	createPS(t, c, ns, "alice", "arena")
	createPS(t, c, ns, "bob", "arena")

	var gameSessionID string
	g.Eventually(func(g Gomega) {
		gs := getGS(g, c, ns, "arena")
		g.Expect(gs.Status.Status).To(Equal(gamev1.GameSessionActive))
		g.Expect(gs.Status.CurrentPlayerSessionCount).To(BeEquivalentTo(2))
		gameSessionID = gs.Status.GameSessionID
		for _, n := range []string{"alice", "bob"} {
			ps := getPS(g, c, ns, n)
			g.Expect(ps.Status.Status).To(Equal(gamev1.PlayerSessionReserved))
			g.Expect(ps.Status.PlayerSessionID).To(HavePrefix("psess-"))
			g.Expect(ps.Status.GameSessionID).To(Equal(gs.Status.GameSessionID))
			g.Expect(ps.Status.IPAddress).To(Equal("10.0.0.1"))
			g.Expect(ps.Status.Port).To(BeEquivalentTo(7777))
		}
	}).WithTimeout(20 * time.Second).Should(Succeed())
	g.Expect(gameSessionID).To(MatchRegexp(`^arn:aws:gamelift:local::gamesession/fleet-test/gsess-[0-9a-f-]+$`))

	// The game server accepts both players; alice leaves.
	g.Expect(patchPSStatus(c, ns, "alice", gamev1.PlayerSessionActive)).To(Succeed())
	g.Expect(patchPSStatus(c, ns, "bob", gamev1.PlayerSessionActive)).To(Succeed())
	g.Expect(patchPSStatus(c, ns, "alice", gamev1.PlayerSessionCompleted)).To(Succeed())
	g.Eventually(func(g Gomega) {
		alice := getPS(g, c, ns, "alice")
		g.Expect(alice.Status.TerminationTime).NotTo(BeNil())
		g.Expect(getGS(g, c, ns, "arena").Status.CurrentPlayerSessionCount).To(BeEquivalentTo(1))
	}).WithTimeout(20 * time.Second).Should(Succeed())

	// A GitOps prune: the game session goes at once, its player sessions stay, completed and stamped.
	g.Expect(c.Delete(context.Background(), &gamev1.GameSession{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "arena"}})).To(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "arena"}, &gamev1.GameSession{}))
	}).WithTimeout(20 * time.Second).Should(BeTrue())
	for _, n := range []string{"alice", "bob"} {
		ps := getPS(g, c, ns, n)
		g.Expect(ps.Status.Status).To(Equal(gamev1.PlayerSessionCompleted), n)
		g.Expect(ps.Status.GameSessionTerminationTime).NotTo(BeNil(), n)
		g.Expect(ps.Status.TerminationTime).NotTo(BeNil(), n)
		g.Expect(ps.Status.GameSessionID).To(Equal(gameSessionID), n)
	}

	// Events on the transitions.
	g.Eventually(func(g Gomega) {
		var evs eventsv1.EventList
		g.Expect(c.List(context.Background(), &evs, client.InNamespace(ns))).To(Succeed())
		reasons := map[string]bool{}
		for _, e := range evs.Items {
			reasons[e.Reason] = true
		}
		g.Expect(reasons).To(HaveKey("Activated"))
		g.Expect(reasons).To(HaveKey("SeatsGranted"))
		g.Expect(reasons).To(HaveKey("Completed"))
		g.Expect(reasons).To(HaveKey("Terminated"))
	}).WithTimeout(20 * time.Second).Should(Succeed())
}

func TestIntegrationTimeout(t *testing.T) {
	g := NewWithT(t)
	c := controlPlane(t)
	ns := namespace(t, c)
	opts := testOptions()
	opts.PlayerSessionTimeout = 2 * time.Second
	startManager(t, opts)

	createGS(t, c, ns, "gs", 3)
	createPS(t, c, ns, "late", "gs")
	createPS(t, c, ns, "quick", "gs")
	waitForStatus(t, c, ns, "quick", gamev1.PlayerSessionReserved)
	g.Expect(patchPSStatus(c, ns, "quick", gamev1.PlayerSessionActive)).To(Succeed())

	g.Eventually(func(g Gomega) {
		ps := getPS(g, c, ns, "late")
		g.Expect(ps.Status.Status).To(Equal(gamev1.PlayerSessionTimedOut))
		waited := ps.Status.TerminationTime.Sub(ps.Status.CreationTime.Time)
		g.Expect(waited).To(BeNumerically(">=", opts.PlayerSessionTimeout), "never early")
		g.Expect(waited).To(BeNumerically("<", opts.PlayerSessionTimeout+2*time.Second))
		g.Expect(getGS(g, c, ns, "gs").Status.CurrentPlayerSessionCount).To(BeEquivalentTo(1), "the seat is released")
	}).WithTimeout(20 * time.Second).Should(Succeed())
	g.Consistently(func(g Gomega) {
		g.Expect(getPS(g, c, ns, "quick").Status.Status).To(Equal(gamev1.PlayerSessionActive))
	}).WithTimeout(3 * time.Second).Should(Succeed())
	// The late acceptance of a timed-out reservation is refused by the API server.
	err := patchPSStatus(c, ns, "late", gamev1.PlayerSessionActive)
	g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "%v", err)
}

func TestIntegrationRestartMidCountdown(t *testing.T) {
	g := NewWithT(t)
	c := controlPlane(t)
	ns := namespace(t, c)
	opts := testOptions()
	opts.PlayerSessionTimeout = 4 * time.Second
	stop := startManager(t, opts)

	createGS(t, c, ns, "gs", 3)
	createPS(t, c, ns, "p", "gs")
	waitForStatus(t, c, ns, "p", gamev1.PlayerSessionReserved)
	stop() // the pending RequeueAfter is lost with the process
	time.Sleep(time.Second)
	g.Expect(getPS(g, c, ns, "p").Status.Status).To(Equal(gamev1.PlayerSessionReserved))
	startManager(t, opts)
	g.Eventually(func(g Gomega) {
		ps := getPS(g, c, ns, "p")
		g.Expect(ps.Status.Status).To(Equal(gamev1.PlayerSessionTimedOut))
		waited := ps.Status.TerminationTime.Sub(ps.Status.CreationTime.Time)
		g.Expect(waited).To(BeNumerically(">=", opts.PlayerSessionTimeout), "never early")
		g.Expect(waited).To(BeNumerically("<", opts.PlayerSessionTimeout+2*time.Second), "on time despite the restart")
	}).WithTimeout(20 * time.Second).Should(Succeed())
}

func TestIntegrationRetention(t *testing.T) {
	g := NewWithT(t)
	c := controlPlane(t)
	ns := namespace(t, c)
	opts := testOptions()
	opts.Retention = 3 * time.Second
	startManager(t, opts)

	createGS(t, c, ns, "gs", 3)
	createPS(t, c, ns, "p", "gs")
	waitForStatus(t, c, ns, "p", gamev1.PlayerSessionReserved)

	// The game server ends the game session.
	gs := &gamev1.GameSession{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "gs"}}
	g.Expect(c.Status().Patch(context.Background(), gs, client.RawPatch("application/merge-patch+json", []byte(`{"status":{"status":"TERMINATED"}}`)))).To(Succeed())
	var end time.Time
	g.Eventually(func(g Gomega) {
		ps := getPS(g, c, ns, "p")
		g.Expect(ps.Status.Status).To(Equal(gamev1.PlayerSessionCompleted))
		g.Expect(ps.Status.GameSessionTerminationTime).NotTo(BeNil())
		end = ps.Status.GameSessionTerminationTime.Time
	}).WithTimeout(20 * time.Second).Should(Succeed())

	// Never earlier than retention after the end; then both are gone.
	g.Eventually(func() bool {
		err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "p"}, &gamev1.PlayerSession{})
		if apierrors.IsNotFound(err) {
			return true
		}
		g.Expect(err).NotTo(HaveOccurred())
		return false
	}).WithTimeout(20 * time.Second).WithPolling(50 * time.Millisecond).Should(BeTrue())
	g.Expect(time.Now()).To(BeTemporally(">=", end.Add(opts.Retention)), "deleted no earlier than retention after the game session ended")
	g.Eventually(func() bool {
		return apierrors.IsNotFound(c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "gs"}, &gamev1.GameSession{}))
	}).WithTimeout(20*time.Second).Should(BeTrue(), "the ended game session is deleted after retention too")
}

// TestIntegrationCapacityUnderConcurrency: 100 concurrent creates against a 10-seat game session, with two
// managers reconciling at once (a leader change with overlap: conflicts on every write) and one of them
// stopped half way. Exactly 10 get a seat; the other 90 are refused GameSessionFull.
func TestIntegrationCapacityUnderConcurrency(t *testing.T) {
	g := NewWithT(t)
	c := controlPlane(t)
	ns := namespace(t, c)
	opts := testOptions()
	stopFirst := startManager(t, opts)
	startManager(t, opts)

	createGS(t, c, ns, "gs", 10)
	g.Eventually(func(g Gomega) {
		g.Expect(getGS(g, c, ns, "gs").Status.Status).To(Equal(gamev1.GameSessionActive))
	}).WithTimeout(20 * time.Second).Should(Succeed())

	const players = 100
	var wg sync.WaitGroup
	for i := range players {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i == players/2 {
				stopFirst()
			}
			createPS(t, c, ns, fmt.Sprintf("p%03d", i), "gs")
		}()
	}
	wg.Wait()

	g.Eventually(func(g Gomega) {
		var list gamev1.PlayerSessionList
		g.Expect(c.List(context.Background(), &list, client.InNamespace(ns))).To(Succeed())
		g.Expect(list.Items).To(HaveLen(players))
		reasons := map[string]int{}
		for i := range list.Items {
			ps := &list.Items[i]
			cond := admittedCondition(ps)
			g.Expect(cond).NotTo(BeNil(), ps.Name)
			g.Expect(cond.Status).NotTo(Equal(metav1.ConditionUnknown), ps.Name)
			reasons[cond.Reason]++
			if cond.Status == metav1.ConditionTrue {
				g.Expect(ps.Status.Status).To(Equal(gamev1.PlayerSessionReserved))
			} else {
				g.Expect(ps.Status.Status).To(BeEmpty())
			}
		}
		g.Expect(reasons).To(Equal(map[string]int{gamev1.SeatReservedReason: 10, gamev1.GameSessionFullReason: 90}))
		gs := getGS(g, c, ns, "gs")
		g.Expect(gs.Status.CurrentPlayerSessionCount).To(BeEquivalentTo(10))
		g.Expect(gs.Status.Seats).To(HaveLen(10))
	}).WithTimeout(60 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())
}

func TestIntegrationDenyAllAndInactive(t *testing.T) {
	g := NewWithT(t)
	c := controlPlane(t)
	ns := namespace(t, c)
	opts := testOptions()
	opts.PlayerSessionTimeout = 2 * time.Second
	startManager(t, opts)

	createGS(t, c, ns, "deny", 5, func(gs *gamev1.GameSession) {
		gs.Spec.PlayerSessionCreationPolicy = gamev1.PlayerSessionCreationPolicyDenyAll
	})
	createGS(t, c, ns, "activating", 5, func(gs *gamev1.GameSession) { gs.Spec.IPAddress, gs.Spec.Port = "", 0 })
	createGS(t, c, ns, "ended", 5)
	g.Eventually(func(g Gomega) {
		g.Expect(getGS(g, c, ns, "ended").Status.Status).To(Equal(gamev1.GameSessionActive))
	}).WithTimeout(20 * time.Second).Should(Succeed())
	g.Expect(c.Status().Patch(context.Background(), &gamev1.GameSession{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ended"}},
		client.RawPatch("application/merge-patch+json", []byte(`{"status":{"status":"TERMINATED"}}`)))).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(getGS(g, c, ns, "ended").Status.TerminationTime).NotTo(BeNil())
	}).WithTimeout(20 * time.Second).Should(Succeed())

	createPS(t, c, ns, "to-deny", "deny")
	createPS(t, c, ns, "to-activating", "activating")
	createPS(t, c, ns, "to-ended", "ended")
	createPS(t, c, ns, "to-nowhere", "missing")

	want := map[string]string{
		"to-deny":       gamev1.PlayerSessionCreationDeniedReason,
		"to-activating": gamev1.InvalidGameSessionStatusReason,
		"to-ended":      gamev1.InvalidGameSessionStatusReason,
		"to-nowhere":    gamev1.GameSessionNotFoundReason,
	}
	g.Eventually(func(g Gomega) {
		for n, reason := range want {
			ps := getPS(g, c, ns, n)
			cond := admittedCondition(ps)
			g.Expect(cond).NotTo(BeNil(), n)
			g.Expect(cond.Status).To(Equal(metav1.ConditionFalse), n)
			g.Expect(cond.Reason).To(Equal(reason), n)
			g.Expect(ps.Status.Status).To(BeEmpty(), n)
		}
	}).WithTimeout(20 * time.Second).Should(Succeed())
	for _, n := range []string{"deny", "activating", "ended"} {
		g.Expect(getGS(g, c, ns, n).Status.CurrentPlayerSessionCount).To(BeZero(), n)
	}
}

// TestIntegrationAPIServerValidation: bad objects and illegal transitions are refused by kube-apiserver
// itself (OpenAPI bounds and CEL rules), with a clear message. No manager runs.
func TestIntegrationAPIServerValidation(t *testing.T) {
	c := controlPlane(t)
	ns := namespace(t, c)
	ctx := context.Background()

	valid := func() *gamev1.GameSession {
		return &gamev1.GameSession{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "gs-"},
			Spec:       gamev1.GameSessionSpec{FleetID: "fleet-1", MaximumPlayerSessionCount: 5},
		}
	}
	for _, tt := range []struct {
		name, want string
		mutate     func(*gamev1.GameSession)
	}{
		{"too many seats", "spec.maximumPlayerSessionCount", func(gs *gamev1.GameSession) { gs.Spec.MaximumPlayerSessionCount = 201 }},
		{"negative seats", "spec.maximumPlayerSessionCount", func(gs *gamev1.GameSession) { gs.Spec.MaximumPlayerSessionCount = -1 }},
		{"fleet id pattern", "spec.fleetId", func(gs *gamev1.GameSession) { gs.Spec.FleetID = "not a fleet" }},
		{"policy enum", "spec.playerSessionCreationPolicy", func(gs *gamev1.GameSession) { gs.Spec.PlayerSessionCreationPolicy = "SOMETIMES" }},
		{"port without address", "port needs ipAddress or dnsName", func(gs *gamev1.GameSession) { gs.Spec.Port = 7777 }},
		{"port range", "spec.port", func(gs *gamev1.GameSession) { gs.Spec.IPAddress, gs.Spec.Port = "10.0.0.1", 60001 }},
		{"ip pattern", "spec.ipAddress", func(gs *gamev1.GameSession) { gs.Spec.IPAddress = "example.com" }},
		{"game session data length", "spec.gameSessionData", func(gs *gamev1.GameSession) { gs.Spec.GameSessionData = strings.Repeat("x", 262145) }},
		{"too many properties", "spec.gameProperties", func(gs *gamev1.GameSession) {
			for i := range 17 {
				gs.Spec.GameProperties = append(gs.Spec.GameProperties, gamev1.GameProperty{Key: fmt.Sprint(i), Value: "v"})
			}
		}},
		{"property key length", "spec.gameProperties[0].key", func(gs *gamev1.GameSession) {
			gs.Spec.GameProperties = []gamev1.GameProperty{{Key: strings.Repeat("k", 33), Value: "v"}}
		}},
	} {
		t.Run("GameSession/"+tt.name, func(t *testing.T) {
			gs := valid()
			tt.mutate(gs)
			err := c.Create(ctx, gs)
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("create: got %v, want an Invalid error mentioning %q", err, tt.want)
			}
		})
	}

	for _, tt := range []struct {
		name, want string
		spec       gamev1.PlayerSessionSpec
	}{
		{"no player id", "spec.playerId", gamev1.PlayerSessionSpec{GameSessionName: "gs"}},
		{"player id length", "spec.playerId", gamev1.PlayerSessionSpec{GameSessionName: "gs", PlayerID: strings.Repeat("p", 1025)}},
		{"player data length", "spec.playerData", gamev1.PlayerSessionSpec{GameSessionName: "gs", PlayerID: "p", PlayerData: strings.Repeat("d", 2049)}},
		{"no game session", "spec.gameSessionName", gamev1.PlayerSessionSpec{PlayerID: "p"}},
	} {
		t.Run("PlayerSession/"+tt.name, func(t *testing.T) {
			err := c.Create(ctx, &gamev1.PlayerSession{ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "ps-"}, Spec: tt.spec})
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("create: got %v, want an Invalid error mentioning %q", err, tt.want)
			}
		})
	}

	t.Run("PlayerSession/spec is immutable", func(t *testing.T) {
		ps := createPS(t, c, ns, "immutable", "gs")
		ps.Spec.PlayerID = "someone-else"
		err := c.Update(ctx, ps)
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec is immutable") {
			t.Fatalf("update: got %v", err)
		}
	})

	t.Run("PlayerSession/status transitions", func(t *testing.T) {
		createPS(t, c, ns, "machine", "gs")
		steps := []struct {
			to   gamev1.PlayerSessionStatusValue
			want string // empty: allowed
		}{
			{gamev1.PlayerSessionActive, "a player session starts as RESERVED"},
			{gamev1.PlayerSessionReserved, ""},
			{gamev1.PlayerSessionActive, ""},
			{gamev1.PlayerSessionReserved, "illegal player session status transition"},
			{gamev1.PlayerSessionTimedOut, "illegal player session status transition"},
			{gamev1.PlayerSessionCompleted, ""},
			{gamev1.PlayerSessionActive, "illegal player session status transition"},
			{"DANCING", "Unsupported value"},
		}
		for _, s := range steps {
			err := patchPSStatus(c, ns, "machine", s.to)
			switch {
			case s.want == "" && err != nil:
				t.Fatalf("to %s: %v", s.to, err)
			case s.want != "" && (!apierrors.IsInvalid(err) || !strings.Contains(err.Error(), s.want)):
				t.Fatalf("to %s: got %v, want an Invalid error mentioning %q", s.to, err, s.want)
			}
		}
		// Terminal is terminal, and the status cannot be cleared.
		err := c.Status().Patch(ctx, &gamev1.PlayerSession{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "machine"}},
			client.RawPatch("application/merge-patch+json", []byte(`{"status":{"status":null}}`)))
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "status cannot be removed") {
			t.Fatalf("clearing status: got %v", err)
		}
	})

	t.Run("PlayerSession/a RESERVED-to-TIMEDOUT path", func(t *testing.T) {
		createPS(t, c, ns, "timeout-path", "gs")
		for _, s := range []gamev1.PlayerSessionStatusValue{gamev1.PlayerSessionReserved, gamev1.PlayerSessionTimedOut} {
			if err := patchPSStatus(c, ns, "timeout-path", s); err != nil {
				t.Fatalf("to %s: %v", s, err)
			}
		}
		if err := patchPSStatus(c, ns, "timeout-path", gamev1.PlayerSessionCompleted); !apierrors.IsInvalid(err) {
			t.Fatalf("TIMEDOUT to COMPLETED: got %v", err)
		}
	})

	t.Run("GameSession/TERMINATED is terminal and seats are bounded", func(t *testing.T) {
		gs := valid()
		if err := c.Create(ctx, gs); err != nil {
			t.Fatal(err)
		}
		tooMany := `{"status":{"seats":[{"name":"a"},{"name":"b"},{"name":"c"},{"name":"d"},{"name":"e"},{"name":"f"}]}}`
		err := c.Status().Patch(ctx, gs.DeepCopy(), client.RawPatch("application/merge-patch+json", []byte(tooMany)))
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "may only grow up to spec.maximumPlayerSessionCount") {
			t.Fatalf("6 seats of 5: got %v", err)
		}
		for _, s := range []string{"TERMINATED"} {
			if err := c.Status().Patch(ctx, gs.DeepCopy(), client.RawPatch("application/merge-patch+json", []byte(`{"status":{"status":"`+s+`"}}`))); err != nil {
				t.Fatal(err)
			}
		}
		err = c.Status().Patch(ctx, gs.DeepCopy(), client.RawPatch("application/merge-patch+json", []byte(`{"status":{"status":"ACTIVE"}}`)))
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "a TERMINATED game session cannot change status") {
			t.Fatalf("TERMINATED to ACTIVE: got %v", err)
		}
		gs2 := getGS(NewWithT(t), c, ns, gs.Name)
		gs2.Spec.FleetID = "fleet-other"
		if err := c.Update(ctx, gs2); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "fleetId is immutable") {
			t.Fatalf("fleetId change: got %v", err)
		}
	})
}

// TestIntegrationGroups: player sessions created with kubectl as one group (spec.group) are admitted all
// or nothing; an incomplete group holds no seat and is refused whole when its window closes; the API
// server rejects a malformed group and any change of it.
func TestIntegrationGroups(t *testing.T) {
	g := NewWithT(t)
	c := controlPlane(t)
	ns := namespace(t, c)
	opts := testOptions()
	opts.PlayerSessionTimeout = 3 * time.Second // the window of an incomplete group
	startManager(t, opts)
	ctx := context.Background()
	createGS(t, c, ns, "arena", 4)
	member := func(name, group string, size int32) error {
		return c.Create(ctx, &gamev1.PlayerSession{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec:       gamev1.PlayerSessionSpec{GameSessionName: "arena", PlayerID: "player-" + name, Group: &gamev1.PlayerSessionGroup{Name: group, Size: size}},
		})
	}

	// A group of three: two members wait, holding nothing, while a single player session is admitted.
	g.Expect(member("red-1", "red", 3)).To(Succeed())
	g.Expect(member("red-2", "red", 3)).To(Succeed())
	createPS(t, c, ns, "solo", "arena")
	waitForStatus(t, c, ns, "solo", gamev1.PlayerSessionReserved)
	g.Consistently(func(g Gomega) {
		g.Expect(getPS(g, c, ns, "red-1").Status.Status).To(BeEmpty())
		g.Expect(getGS(g, c, ns, "arena").Status.CurrentPlayerSessionCount).To(BeEquivalentTo(1))
	}).WithTimeout(time.Second).Should(Succeed())
	g.Expect(member("red-3", "red", 3)).To(Succeed())
	for _, n := range []string{"red-1", "red-2", "red-3"} {
		waitForStatus(t, c, ns, n, gamev1.PlayerSessionReserved)
	}

	// A group of two for the last seat: refused whole.
	g.Expect(member("blue-1", "blue", 2)).To(Succeed())
	g.Expect(member("blue-2", "blue", 2)).To(Succeed())
	for _, n := range []string{"blue-1", "blue-2"} {
		g.Eventually(func(g Gomega) {
			cond := admittedCondition(getPS(g, c, ns, n))
			g.Expect(cond).NotTo(BeNil())
			g.Expect(cond.Reason).To(Equal(gamev1.GameSessionFullReason))
		}).WithTimeout(20 * time.Second).Should(Succeed())
	}

	// An incomplete group: refused whole when the window closes; the seat stays free for a single one.
	g.Expect(member("green-1", "green", 2)).To(Succeed())
	g.Eventually(func(g Gomega) {
		cond := admittedCondition(getPS(g, c, ns, "green-1"))
		g.Expect(cond).NotTo(BeNil())
		g.Expect(cond.Reason).To(Equal(gamev1.InvalidGroupReason))
	}).WithTimeout(20 * time.Second).Should(Succeed())
	createPS(t, c, ns, "late", "arena")
	waitForStatus(t, c, ns, "late", gamev1.PlayerSessionReserved)

	// The API server checks the group.
	for _, bad := range []*gamev1.PlayerSessionGroup{{Name: "Red", Size: 2}, {Name: "red", Size: 0}, {Name: "red", Size: 26}} {
		err := c.Create(ctx, &gamev1.PlayerSession{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "bad-"},
			Spec:       gamev1.PlayerSessionSpec{GameSessionName: "arena", PlayerID: "x", Group: bad},
		})
		g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "group %+v: %v", bad, err)
	}
	ps := getPS(g, c, ns, "red-1")
	ps.Spec.Group.Size = 4
	g.Expect(apierrors.IsInvalid(c.Update(ctx, ps))).To(BeTrue(), "spec is immutable")
}

// TestIntegrationFirstComeFirstServedWithinASecond: two player sessions created in the same second wait
// for an ACTIVATING game session; the one kube-apiserver stored first gets the only seat, although its
// name sorts last (creationTimestamp has one-second resolution; the create's revision breaks the tie).
func TestIntegrationFirstComeFirstServedWithinASecond(t *testing.T) {
	g := NewWithT(t)
	c := controlPlane(t)
	ns := namespace(t, c)
	startManager(t, testOptions())
	ctx := context.Background()
	createGS(t, c, ns, "arena", 1, func(gs *gamev1.GameSession) { gs.Spec.Endpoint = gamev1.Endpoint{} }) // ACTIVATING
	for {
		createPS(t, c, ns, "zed", "arena")
		createPS(t, c, ns, "amy", "arena")
		zed, amy := getPS(g, c, ns, "zed"), getPS(g, c, ns, "amy")
		if zed.CreationTimestamp.Equal(&amy.CreationTimestamp) {
			break
		}
		// Across a second boundary: try again, so the test checks the tie-break, not the timestamps.
		g.Expect(c.Delete(ctx, zed)).To(Succeed())
		g.Expect(c.Delete(ctx, amy)).To(Succeed())
		g.Eventually(func() bool {
			var l gamev1.PlayerSessionList
			return c.List(ctx, &l, client.InNamespace(ns)) == nil && len(l.Items) == 0
		}).WithTimeout(10 * time.Second).Should(BeTrue())
	}
	// Both wait for the game server; then it activates the game session.
	g.Consistently(func(g Gomega) {
		g.Expect(getPS(g, c, ns, "zed").Status.Status).To(BeEmpty())
	}).WithTimeout(500 * time.Millisecond).Should(Succeed())
	gs := getGS(g, c, ns, "arena")
	before := gs.DeepCopy()
	gs.Status.Status, gs.Status.Endpoint = gamev1.GameSessionActive, gamev1.Endpoint{IPAddress: "10.0.0.1", Port: 7777}
	g.Expect(c.Status().Patch(ctx, gs, client.MergeFrom(before))).To(Succeed())
	waitForStatus(t, c, ns, "zed", gamev1.PlayerSessionReserved)
	g.Eventually(func(g Gomega) {
		cond := admittedCondition(getPS(g, c, ns, "amy"))
		g.Expect(cond).NotTo(BeNil())
		g.Expect(cond.Reason).To(Equal(gamev1.GameSessionFullReason))
	}).WithTimeout(20 * time.Second).Should(Succeed())
}
