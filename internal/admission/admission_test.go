package admission

import (
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func gameSession(status gamev1.GameSessionStatusValue, max int32, seats ...string) *gamev1.GameSession {
	gs := &gamev1.GameSession{
		ObjectMeta: metav1.ObjectMeta{Name: "gs", Namespace: "ns", UID: "gs-uid", CreationTimestamp: metav1.NewTime(t0)},
		Spec:       gamev1.GameSessionSpec{FleetID: "fleet-1", MaximumPlayerSessionCount: max, PlayerSessionCreationPolicy: gamev1.PlayerSessionCreationPolicyAcceptAll},
		Status:     gamev1.GameSessionStatus{GameSessionID: "gsid", Status: status},
	}
	for _, s := range seats {
		gs.Status.Seats = append(gs.Status.Seats, gamev1.SeatHolder{Name: s})
	}
	return gs
}

func playerSession(name string, created time.Time, status gamev1.PlayerSessionStatusValue) gamev1.PlayerSession {
	ps := gamev1.PlayerSession{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name), CreationTimestamp: metav1.NewTime(created), Generation: 1},
		Spec:       gamev1.PlayerSessionSpec{GameSessionName: "gs", PlayerID: "p-" + name},
	}
	if status != "" {
		ps.Status.Status = status
		ps.Status.GameSessionID = "gsid"
	}
	return ps
}

func stored(ps gamev1.PlayerSession, rv int) gamev1.PlayerSession {
	ps.ResourceVersion = strconv.Itoa(rv)
	return ps
}

func member(ps gamev1.PlayerSession, group string, size int32) gamev1.PlayerSession {
	ps.Spec.Group = &gamev1.PlayerSessionGroup{Name: group, Size: size}
	return ps
}

func refused(ps gamev1.PlayerSession) gamev1.PlayerSession {
	SetRefused(&ps, t0, gamev1.GameSessionFullReason, "full")
	return ps
}

func TestPlanSeats(t *testing.T) {
	window := time.Minute
	deny := gameSession(gamev1.GameSessionActive, 5)
	deny.Spec.PlayerSessionCreationPolicy = gamev1.PlayerSessionCreationPolicyDenyAll
	deleting := gameSession(gamev1.GameSessionActive, 5)
	deleting.DeletionTimestamp = &metav1.Time{Time: t0}
	otherIncarnation := playerSession("old", t0, gamev1.PlayerSessionActive)
	otherIncarnation.Status.GameSessionID = "previous-gsid"

	tests := []struct {
		name         string
		gs           *gamev1.GameSession
		players      []gamev1.PlayerSession
		now          time.Time
		wantSeats    []string
		wantAdmitted []string
		wantReleased []string
		wantRefused  map[string]string
		wantRecheck  time.Time
	}{{
		name:         "admits in creation order up to the maximum; no refusal before the ledger is committed",
		gs:           gameSession(gamev1.GameSessionActive, 2),
		players:      []gamev1.PlayerSession{playerSession("c", t0.Add(2*time.Second), ""), playerSession("a", t0, ""), playerSession("b", t0.Add(time.Second), "")},
		now:          t0,
		wantSeats:    []string{"a", "b"},
		wantAdmitted: []string{"a", "b"},
	}, {
		name:        "full and committed: refuses the rest",
		gs:          gameSession(gamev1.GameSessionActive, 2, "a", "b"),
		players:     []gamev1.PlayerSession{playerSession("a", t0, ""), playerSession("b", t0, gamev1.PlayerSessionReserved), playerSession("c", t0, "")},
		now:         t0,
		wantSeats:   []string{"a", "b"},
		wantRefused: map[string]string{"c": gamev1.GameSessionFullReason},
	}, {
		name:         "releases seats of ended, refused, deleted and foreign player sessions, then admits",
		gs:           gameSession(gamev1.GameSessionActive, 3, "done", "late", "gone", "old", "live"),
		players:      []gamev1.PlayerSession{playerSession("done", t0, gamev1.PlayerSessionCompleted), playerSession("late", t0, gamev1.PlayerSessionTimedOut), otherIncarnation, playerSession("live", t0, gamev1.PlayerSessionActive), playerSession("new", t0, "")},
		now:          t0,
		wantSeats:    []string{"live", "new"},
		wantAdmitted: []string{"new"},
		wantReleased: []string{"done", "late", "gone", "old"},
	}, {
		name:      "a refused player session never gets a seat",
		gs:        gameSession(gamev1.GameSessionActive, 3),
		players:   []gamev1.PlayerSession{refused(playerSession("r", t0, ""))},
		now:       t0,
		wantSeats: nil,
	}, {
		name:        "DENY_ALL refuses",
		gs:          deny,
		players:     []gamev1.PlayerSession{playerSession("a", t0, "")},
		now:         t0,
		wantRefused: map[string]string{"a": gamev1.PlayerSessionCreationDeniedReason},
	}, {
		name:        "TERMINATED refuses",
		gs:          gameSession(gamev1.GameSessionTerminated, 3),
		players:     []gamev1.PlayerSession{playerSession("a", t0, "")},
		now:         t0,
		wantRefused: map[string]string{"a": gamev1.InvalidGameSessionStatusReason},
	}, {
		name:        "ERROR refuses",
		gs:          gameSession(gamev1.GameSessionError, 3),
		players:     []gamev1.PlayerSession{playerSession("a", t0, "")},
		now:         t0,
		wantRefused: map[string]string{"a": gamev1.InvalidGameSessionStatusReason},
	}, {
		name:        "deleting refuses",
		gs:          deleting,
		players:     []gamev1.PlayerSession{playerSession("a", t0, "")},
		now:         t0,
		wantRefused: map[string]string{"a": gamev1.InvalidGameSessionStatusReason},
	}, {
		name:        "ACTIVATING: waits until the window closes",
		gs:          gameSession(gamev1.GameSessionActivating, 3),
		players:     []gamev1.PlayerSession{playerSession("a", t0, ""), playerSession("b", t0.Add(10*time.Second), "")},
		now:         t0.Add(30 * time.Second),
		wantRecheck: t0.Add(window),
	}, {
		name:        "ACTIVATING: refuses once the window closed",
		gs:          gameSession(gamev1.GameSessionActivating, 3),
		players:     []gamev1.PlayerSession{playerSession("a", t0, ""), playerSession("b", t0.Add(10*time.Second), "")},
		now:         t0.Add(window),
		wantRefused: map[string]string{"a": gamev1.InvalidGameSessionStatusReason},
		wantRecheck: t0.Add(10*time.Second + window),
	}, {
		name:         "within one second: the order in which kube-apiserver stored the creates, not the names",
		gs:           gameSession(gamev1.GameSessionActive, 1),
		players:      []gamev1.PlayerSession{stored(playerSession("a", t0, ""), 30), stored(playerSession("z", t0, ""), 20)},
		now:          t0,
		wantSeats:    []string{"z"},
		wantAdmitted: []string{"z"},
	}, {
		name:         "a group is admitted whole once all its members are there",
		gs:           gameSession(gamev1.GameSessionActive, 4, "x"),
		players:      []gamev1.PlayerSession{playerSession("x", t0, gamev1.PlayerSessionActive), member(playerSession("g1", t0, ""), "g", 3), member(playerSession("g2", t0, ""), "g", 3), member(playerSession("g3", t0, ""), "g", 3)},
		now:          t0,
		wantSeats:    []string{"x", "g1", "g2", "g3"},
		wantAdmitted: []string{"g1", "g2", "g3"},
	}, {
		name:        "a group that does not fit is refused whole, committed ledger",
		gs:          gameSession(gamev1.GameSessionActive, 3, "x"),
		players:     []gamev1.PlayerSession{playerSession("x", t0, gamev1.PlayerSessionActive), member(playerSession("g1", t0, ""), "g", 3), member(playerSession("g2", t0, ""), "g", 3), member(playerSession("g3", t0, ""), "g", 3)},
		now:         t0,
		wantSeats:   []string{"x"},
		wantRefused: map[string]string{"g1": gamev1.GameSessionFullReason, "g2": gamev1.GameSessionFullReason, "g3": gamev1.GameSessionFullReason},
	}, {
		name:         "a group that does not fit leaves its seats to a later single player session",
		gs:           gameSession(gamev1.GameSessionActive, 2),
		players:      []gamev1.PlayerSession{member(playerSession("g1", t0, ""), "g", 3), member(playerSession("g2", t0, ""), "g", 3), member(playerSession("g3", t0, ""), "g", 3), playerSession("solo", t0.Add(time.Second), "")},
		now:          t0,
		wantSeats:    []string{"solo"},
		wantAdmitted: []string{"solo"},
	}, {
		name:        "an incomplete group waits, holding nothing, until the window closes",
		gs:          gameSession(gamev1.GameSessionActive, 5),
		players:     []gamev1.PlayerSession{member(playerSession("g1", t0, ""), "g", 3), member(playerSession("g2", t0.Add(time.Second), ""), "g", 3)},
		now:         t0.Add(30 * time.Second),
		wantRecheck: t0.Add(window),
	}, {
		name:        "an incomplete group is refused whole when the window closed",
		gs:          gameSession(gamev1.GameSessionActive, 5),
		players:     []gamev1.PlayerSession{member(playerSession("g1", t0, ""), "g", 3), member(playerSession("g2", t0.Add(time.Second), ""), "g", 3)},
		now:         t0.Add(window),
		wantRefused: map[string]string{"g1": gamev1.InvalidGroupReason, "g2": gamev1.InvalidGroupReason},
	}, {
		name:        "members disagreeing on the size are refused",
		gs:          gameSession(gamev1.GameSessionActive, 5),
		players:     []gamev1.PlayerSession{member(playerSession("g1", t0, ""), "g", 2), member(playerSession("g2", t0, ""), "g", 3)},
		now:         t0,
		wantRefused: map[string]string{"g1": gamev1.InvalidGroupReason, "g2": gamev1.InvalidGroupReason},
	}, {
		name:         "a group takes its place when its last member arrives",
		gs:           gameSession(gamev1.GameSessionActive, 2),
		players:      []gamev1.PlayerSession{member(playerSession("g1", t0, ""), "g", 2), playerSession("solo", t0.Add(time.Second), ""), member(playerSession("g2", t0.Add(2*time.Second), ""), "g", 2)},
		now:          t0.Add(2 * time.Second),
		wantSeats:    []string{"solo"},
		wantAdmitted: []string{"solo"},
	}, {
		name:         "zero seats: everything refused",
		gs:           gameSession(gamev1.GameSessionActive, 0),
		players:      []gamev1.PlayerSession{playerSession("a", t0, "")},
		now:          t0,
		wantRefused:  map[string]string{"a": gamev1.GameSessionFullReason},
		wantAdmitted: nil,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan := PlanSeats(tt.gs, tt.players, tt.now, window)
			var seats []string
			for _, s := range plan.Seats {
				seats = append(seats, s.Name)
			}
			if !slices.Equal(seats, tt.wantSeats) {
				t.Errorf("seats = %v, want %v", seats, tt.wantSeats)
			}
			if !slices.Equal(plan.Admitted, tt.wantAdmitted) {
				t.Errorf("admitted = %v, want %v", plan.Admitted, tt.wantAdmitted)
			}
			if !slices.Equal(plan.Released, tt.wantReleased) {
				t.Errorf("released = %v, want %v", plan.Released, tt.wantReleased)
			}
			got := map[string]string{}
			for _, r := range plan.Refusals {
				got[r.PlayerSession.Name] = r.Reason
			}
			if len(got) != len(tt.wantRefused) {
				t.Errorf("refusals = %v, want %v", got, tt.wantRefused)
			}
			for n, reason := range tt.wantRefused {
				if got[n] != reason {
					t.Errorf("refusal of %s = %q, want %q", n, got[n], reason)
				}
			}
			if !plan.RecheckAt.Equal(tt.wantRecheck) {
				t.Errorf("recheckAt = %v, want %v", plan.RecheckAt, tt.wantRecheck)
			}
		})
	}
}

func TestCreateRefusal(t *testing.T) {
	window := time.Minute
	now := t0.Add(time.Second)
	deny := gameSession(gamev1.GameSessionActive, 5)
	deny.Spec.PlayerSessionCreationPolicy = gamev1.PlayerSessionCreationPolicyDenyAll
	deleting := gameSession(gamev1.GameSessionActive, 5)
	deleting.DeletionTimestamp = &metav1.Time{Time: t0}
	newcomer := playerSession("new", time.Time{}, "") // not created yet: no creation timestamp

	tests := []struct {
		name       string
		gs         *gamev1.GameSession
		players    []gamev1.PlayerSession
		wantReason string // "" = let through
	}{
		{"room left", gameSession(gamev1.GameSessionActive, 2, "a"), []gamev1.PlayerSession{playerSession("a", t0, gamev1.PlayerSessionActive)}, ""},
		{"every seat held", gameSession(gamev1.GameSessionActive, 2, "a", "b"), []gamev1.PlayerSession{
			playerSession("a", t0, gamev1.PlayerSessionActive), playerSession("b", t0, gamev1.PlayerSessionReserved)}, gamev1.GameSessionFullReason},
		{"last seat promised to an earlier waiting player session", gameSession(gamev1.GameSessionActive, 2, "a"), []gamev1.PlayerSession{
			playerSession("a", t0, gamev1.PlayerSessionActive), playerSession("waiting", t0, "")}, gamev1.GameSessionFullReason},
		{"a seat whose holder ended counts as free, ledger not yet written", gameSession(gamev1.GameSessionActive, 2, "a", "b"), []gamev1.PlayerSession{
			playerSession("a", t0, gamev1.PlayerSessionActive), playerSession("b", t0, gamev1.PlayerSessionTimedOut)}, ""},
		{"refused player sessions hold nothing", gameSession(gamev1.GameSessionActive, 1), []gamev1.PlayerSession{refused(playerSession("r", t0, ""))}, ""},
		{"DENY_ALL", deny, nil, gamev1.PlayerSessionCreationDeniedReason},
		{"TERMINATED", gameSession(gamev1.GameSessionTerminated, 5), nil, gamev1.InvalidGameSessionStatusReason},
		{"being deleted", deleting, nil, gamev1.InvalidGameSessionStatusReason},
		{"ACTIVATING waits", gameSession(gamev1.GameSessionActivating, 5), nil, ""},
	}
	groupOf3 := member(playerSession("new", time.Time{}, ""), "g", 3)
	for _, tt := range []struct {
		name       string
		gs         *gamev1.GameSession
		players    []gamev1.PlayerSession
		wantReason string
	}{
		{"group member: seats for the whole group", gameSession(gamev1.GameSessionActive, 3), nil, ""},
		{"group member: fewer seats than the group needs", gameSession(gamev1.GameSessionActive, 2), nil, gamev1.GameSessionFullReason},
		{"group member: the others already there", gameSession(gamev1.GameSessionActive, 3, "x"), []gamev1.PlayerSession{
			playerSession("x", t0, gamev1.PlayerSessionActive), member(playerSession("m1", t0, ""), "g", 3)}, gamev1.GameSessionFullReason},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, refused := CreateRefusal(tt.gs, tt.players, &groupOf3, now, window)
			if r.Reason != tt.wantReason || refused != (tt.wantReason != "") {
				t.Fatalf("CreateRefusal = %q, %v (%s), want %q", r.Reason, refused, r.Message, tt.wantReason)
			}
		})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.gs.DeepCopy()
			r, refused := CreateRefusal(tt.gs, tt.players, &newcomer, now, window)
			reason, message := r.Reason, r.Message
			if reason != tt.wantReason || refused != (tt.wantReason != "") {
				t.Fatalf("CreateRefusal = %q, %v (%s), want %q", reason, refused, message, tt.wantReason)
			}
			if refused && message == "" {
				t.Error("a refusal without a message")
			}
			if !equality.Semantic.DeepEqual(before, tt.gs) {
				t.Error("CreateRefusal modified the game session")
			}
		})
	}
}

func TestRefusalTravelsAsData(t *testing.T) {
	ps := playerSession("p", t0, "")
	for _, reason := range []string{gamev1.GameSessionFullReason, gamev1.PlayerSessionCreationDeniedReason, gamev1.InvalidGameSessionStatusReason, gamev1.InvalidGroupReason} {
		err := Forbidden(Refusal{PlayerSession: &ps, Reason: reason, Message: "because: " + reason})
		// What kube-apiserver hands the client after a webhook refused: the message prefixed, the details kept.
		err.ErrStatus.Message = `admission webhook "vplayersession.game.playersessions.dev" denied the request: ` + err.ErrStatus.Message
		got, msg, ok := RefusalOf(err)
		if !ok || got != reason || msg != "because: "+reason {
			t.Errorf("RefusalOf(Forbidden(%s)) = %q %q %v", reason, got, msg, ok)
		}
	}
	// A Forbidden without the cause (RBAC, a policy) is not a refusal, whatever its message says.
	plain := apierrors.NewForbidden(gamev1.GroupVersion.WithResource("playersessions").GroupResource(), "p", errors.New("GameSessionFull: no"))
	if _, _, ok := RefusalOf(plain); ok {
		t.Error("a Forbidden without the cause was read as a refusal")
	}
}
