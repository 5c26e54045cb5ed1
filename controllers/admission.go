package controllers

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
)

// seatPlan is the outcome of one admission pass over a game session and its player sessions.
type seatPlan struct {
	// seats is the new seat ledger.
	seats []gamev1.SeatHolder
	// admitted and released name the player sessions that gain or lose a seat in this pass.
	admitted, released []string
	// refusals are final refusals. They may be written only when the ledger is unchanged (see changed),
	// because they are decided against the seats the game session holds now.
	refusals []refusal
	// recheckAt is when the earliest waiting player session's admission window closes (zero if none waits).
	recheckAt time.Time
	// deferred are the refusals left for the next pass, because this one changes the ledger.
	deferred []refusal
}

func (p seatPlan) changed() bool { return len(p.admitted) > 0 || len(p.released) > 0 }

type refusal struct {
	ps      *gamev1.PlayerSession
	reason  string
	message string
}

// isRefused reports whether admission refused ps for good.
func isRefused(ps *gamev1.PlayerSession) bool {
	return meta.IsStatusConditionFalse(ps.Status.Conditions, gamev1.AdmittedCondition)
}

// isPending reports whether ps waits for a seat: no status, not refused.
func isPending(ps *gamev1.PlayerSession) bool {
	return ps.Status.Status == "" && !isRefused(ps) && ps.DeletionTimestamp == nil
}

// holdsSeatOf reports whether ps may keep a seat of gs: it is not ended, not refused and, once bound, bound to gs.
func holdsSeatOf(ps *gamev1.PlayerSession, gs *gamev1.GameSession) bool {
	if ps.Status.Status.IsTerminal() || isRefused(ps) || ps.DeletionTimestamp != nil {
		return false
	}
	return ps.Status.GameSessionID == "" || ps.Status.GameSessionID == gs.Status.GameSessionID
}

// planSeats decides, for one game session, which player sessions keep, gain or lose a seat, and which are
// refused. players are the player sessions naming gs (from the cache index). It is a pure function: the
// caller commits the new ledger with optimistic concurrency, which is what makes the decision safe.
func planSeats(gs *gamev1.GameSession, players []gamev1.PlayerSession, now time.Time, window time.Duration) seatPlan {
	byName := make(map[string]*gamev1.PlayerSession, len(players))
	for i := range players {
		byName[players[i].Name] = &players[i]
	}

	var plan seatPlan
	held := make(map[string]bool, len(gs.Status.Seats))
	for _, seat := range gs.Status.Seats {
		ps, ok := byName[seat.Name]
		if !ok || !holdsSeatOf(ps, gs) {
			plan.released = append(plan.released, seat.Name)
			continue
		}
		held[seat.Name] = true
		plan.seats = append(plan.seats, seat)
	}

	var pending []*gamev1.PlayerSession
	for name, ps := range byName {
		if !held[name] && isPending(ps) && ps.Status.GameSessionID == "" {
			pending = append(pending, ps)
		}
	}
	// First come, first served.
	slices.SortFunc(pending, func(a, b *gamev1.PlayerSession) int {
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})

	status := gs.Status.Status
	deleting := gs.DeletionTimestamp != nil
	maxSeats := int(gs.Spec.MaximumPlayerSessionCount)
	for _, ps := range pending {
		switch {
		case deleting || status == gamev1.GameSessionTerminating || status == gamev1.GameSessionTerminated || status == gamev1.GameSessionError:
			plan.refuse(ps, gamev1.InvalidGameSessionStatusReason, fmt.Sprintf("Game session %s is %s", gs.Name, orDeleting(status, deleting)))
		case status != gamev1.GameSessionActive:
			// ACTIVATING: wait for the game server, at most one timeout from the player session's creation.
			deadline := ps.CreationTimestamp.Add(window)
			if !now.Before(deadline) {
				plan.refuse(ps, gamev1.InvalidGameSessionStatusReason, fmt.Sprintf("Game session %s did not become ACTIVE within %s", gs.Name, window))
			} else if plan.recheckAt.IsZero() || deadline.Before(plan.recheckAt) {
				plan.recheckAt = deadline
			}
		case gs.Spec.PlayerSessionCreationPolicy == gamev1.PlayerSessionCreationPolicyDenyAll:
			plan.refuse(ps, gamev1.PlayerSessionCreationDeniedReason, fmt.Sprintf("Game session %s does not accept player sessions (DENY_ALL)", gs.Name))
		case len(plan.seats) < maxSeats:
			plan.seats = append(plan.seats, gamev1.SeatHolder{Name: ps.Name})
			plan.admitted = append(plan.admitted, ps.Name)
		default:
			plan.refuse(ps, gamev1.GameSessionFullReason, fmt.Sprintf("Game session %s is full (%d of %d seats taken)", gs.Name, len(plan.seats), maxSeats))
		}
	}
	if plan.changed() && len(plan.refusals) > 0 {
		// Refusals are only sound against a committed ledger: decide them on the next pass.
		plan.refusals, plan.deferred = nil, plan.refusals
	}
	return plan
}

func (p *seatPlan) refuse(ps *gamev1.PlayerSession, reason, message string) {
	p.refusals = append(p.refusals, refusal{ps: ps, reason: reason, message: message})
}

func orDeleting(s gamev1.GameSessionStatusValue, deleting bool) string {
	if deleting {
		return "being deleted"
	}
	return string(s)
}

// refusedCondition is the Admitted=False condition of a refused player session.
func refusedCondition(generation int64, reason, message string) metav1.Condition {
	return metav1.Condition{
		Type:               gamev1.AdmittedCondition,
		Status:             metav1.ConditionFalse,
		Reason:             reason,
		Message:            message,
		ObservedGeneration: generation,
	}
}

// CreateRefusal tells whether a player session created now, the newest of players, would be refused for
// good by its game session gs, as far as the given (cached) objects show: gs is ending or ended, DENY_ALL,
// or every seat is held by, or promised to, an earlier player session. It is the admission webhook's
// synchronous answer and only advisory: the ledger, written under optimistic concurrency, stays the
// authority, so a stale cache can only delay a refusal to the asynchronous path, never admit past capacity.
func CreateRefusal(gs *gamev1.GameSession, players []gamev1.PlayerSession, ps *gamev1.PlayerSession, now time.Time, window time.Duration) (reason, message string, refused bool) {
	candidate := ps.DeepCopy()
	candidate.Status = gamev1.PlayerSessionStatus{}
	if candidate.CreationTimestamp.IsZero() {
		candidate.CreationTimestamp = metav1.NewTime(now)
	}
	all := make([]gamev1.PlayerSession, 0, len(players)+1)
	for i := range players {
		if players[i].Name != candidate.Name {
			all = append(all, players[i])
		}
	}
	all = append(all, *candidate)
	plan := planSeats(gs, all, now, window)
	for _, r := range append(plan.refusals, plan.deferred...) {
		if r.ps.Name == candidate.Name {
			return r.reason, r.message, true
		}
	}
	return "", "", false
}
