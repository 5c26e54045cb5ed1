// Package admission is the seat policy of the operator: which player sessions of a game session keep, gain
// or lose a seat, which are refused and why, and how a refusal travels as data (a StatusCause) from the
// admission webhook to its callers. The GameSession reconciler, the webhook and the GameLift endpoint use
// it; it reads and decides, it never writes: whoever commits a plan does so under optimistic concurrency.
package admission

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
)

// Plan is the outcome of one admission pass over a game session and its player sessions.
type Plan struct {
	// Seats is the new seat ledger.
	Seats []gamev1.SeatHolder
	// Admitted and Released name the player sessions that gain or lose a seat in this pass.
	Admitted, Released []string
	// Refusals are final refusals. They may be written only when the ledger is unchanged (see Changed),
	// because they are decided against the seats the game session holds now.
	Refusals []Refusal
	// RecheckAt is when the earliest waiting player session's admission window closes (zero if none waits).
	RecheckAt time.Time
	// Deferred are the refusals left for the next pass, because this one changes the ledger.
	Deferred []Refusal
}

// Changed reports whether the plan changes the ledger.
func (p Plan) Changed() bool { return len(p.Admitted) > 0 || len(p.Released) > 0 }

// Refusal is a final refusal of one player session.
type Refusal struct {
	PlayerSession *gamev1.PlayerSession
	// Reason is one of the API's refusal reasons (gamev1.GameSessionFullReason, ...).
	Reason  string
	Message string
}

// IsRefused reports whether admission refused ps for good.
func IsRefused(ps *gamev1.PlayerSession) bool {
	return meta.IsStatusConditionFalse(ps.Status.Conditions, gamev1.AdmittedCondition)
}

// IsPending reports whether ps waits for a seat: no status, not refused, not being deleted.
func IsPending(ps *gamev1.PlayerSession) bool {
	return ps.Status.Status == "" && !IsRefused(ps) && ps.DeletionTimestamp == nil
}

// HoldsSeatOf reports whether ps may keep a seat of gs: it is not ended, not refused and, once bound, bound
// to gs.
func HoldsSeatOf(ps *gamev1.PlayerSession, gs *gamev1.GameSession) bool {
	if ps.Status.Status.IsTerminal() || IsRefused(ps) || ps.DeletionTimestamp != nil {
		return false
	}
	return ps.Status.GameSessionID == "" || ps.Status.GameSessionID == gs.Status.GameSessionID
}

// HasSeat reports whether gs's ledger holds a seat for the player session ps: its name, granted to its UID
// (a seat of a ledger written before seats carried UIDs matches by name).
func HasSeat(gs *gamev1.GameSession, ps *gamev1.PlayerSession) bool {
	for _, s := range gs.Status.Seats {
		if seatOf(s, ps) {
			return true
		}
	}
	return false
}

// seatOf reports whether seat was granted to ps (the same object, not only the same name).
func seatOf(seat gamev1.SeatHolder, ps *gamev1.PlayerSession) bool {
	return seat.Name == ps.Name && (seat.UID == "" || seat.UID == ps.UID)
}

// Before orders waiting player sessions first come, first served: by creation time, then, within its
// one-second resolution, by the revision at which kube-apiserver stored the create (a waiting player
// session is not written until it is decided, so its resourceVersion is that revision; one not stored yet
// comes last), then by name.
func Before(a, b *gamev1.PlayerSession) int {
	if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
		return c
	}
	if c := cmp.Compare(storedAt(a), storedAt(b)); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}

func storedAt(ps *gamev1.PlayerSession) uint64 {
	rv, err := strconv.ParseUint(ps.ResourceVersion, 10, 64)
	if err != nil {
		return math.MaxUint64
	}
	return rv
}

// candidate is what waits for seats: one player session, or a whole group, which arrives with its last
// member and is admitted or refused as one.
type candidate struct {
	members []*gamev1.PlayerSession // in arrival order
	// complete: every member of a group is there (always true for a single player session).
	complete bool
	// invalid explains why a group can never be admitted (members disagree on its size, or too many).
	invalid string
}

func (c candidate) arrival() *gamev1.PlayerSession { return c.members[len(c.members)-1] }
func (c candidate) first() *gamev1.PlayerSession   { return c.members[0] }

// candidates groups the waiting player sessions (sorted by Before) into candidates, in arrival order.
func candidates(pending []*gamev1.PlayerSession) []candidate {
	var out []candidate
	groups := map[string]int{}
	for _, ps := range pending {
		g := ps.Spec.Group
		if g == nil {
			out = append(out, candidate{members: []*gamev1.PlayerSession{ps}, complete: true})
			continue
		}
		i, ok := groups[g.Name]
		if !ok {
			i = len(out)
			groups[g.Name] = i
			out = append(out, candidate{})
		}
		out[i].members = append(out[i].members, ps)
	}
	for i := range out {
		c := &out[i]
		g := c.first().Spec.Group
		if g == nil {
			continue
		}
		for _, m := range c.members {
			if m.Spec.Group.Size != g.Size {
				c.invalid = fmt.Sprintf("Members of group %s disagree on its size (%d and %d)", g.Name, g.Size, m.Spec.Group.Size)
			}
		}
		switch n := int32(len(c.members)); {
		case c.invalid != "":
		case n > g.Size:
			c.invalid = fmt.Sprintf("Group %s has %d members but declares a size of %d", g.Name, n, g.Size)
		default:
			c.complete = n == g.Size
		}
	}
	// A group takes its place in the queue when its last member arrives.
	slices.SortStableFunc(out, func(a, b candidate) int { return Before(a.arrival(), b.arrival()) })
	return out
}

// PlanSeats decides, for one game session, which player sessions keep, gain or lose a seat, and which are
// refused. players are the player sessions naming gs. It is a pure function: the caller commits the new
// ledger with optimistic concurrency, which is what makes the decision safe. window is how long a player
// session (or a group, from its first member) may wait for an ACTIVATING game session, or for the rest of
// its group.
func PlanSeats(gs *gamev1.GameSession, players []gamev1.PlayerSession, now time.Time, window time.Duration) Plan {
	byName := make(map[string]*gamev1.PlayerSession, len(players))
	for i := range players {
		byName[players[i].Name] = &players[i]
	}

	var plan Plan
	held := make(map[string]bool, len(gs.Status.Seats))
	for _, seat := range gs.Status.Seats {
		ps, ok := byName[seat.Name]
		if !ok || !seatOf(seat, ps) || !HoldsSeatOf(ps, gs) {
			plan.Released = append(plan.Released, seat.Name)
			continue
		}
		held[seat.Name] = true
		plan.Seats = append(plan.Seats, seat)
	}

	var pending []*gamev1.PlayerSession
	for name, ps := range byName {
		if !held[name] && IsPending(ps) && ps.Status.GameSessionID == "" {
			pending = append(pending, ps)
		}
	}
	slices.SortFunc(pending, Before)

	status := gs.Status.Status
	deleting := gs.DeletionTimestamp != nil
	maxSeats := int(gs.Spec.MaximumPlayerSessionCount)
	wait := func(c candidate) {
		deadline := c.first().CreationTimestamp.Add(window)
		if plan.RecheckAt.IsZero() || deadline.Before(plan.RecheckAt) {
			plan.RecheckAt = deadline
		}
	}
	expired := func(c candidate) bool { return !now.Before(c.first().CreationTimestamp.Add(window)) }
	for _, c := range candidates(pending) {
		switch {
		case c.invalid != "":
			plan.refuse(c, gamev1.InvalidGroupReason, c.invalid)
		case deleting || status == gamev1.GameSessionTerminating || status == gamev1.GameSessionTerminated || status == gamev1.GameSessionError:
			plan.refuse(c, gamev1.InvalidGameSessionStatusReason, fmt.Sprintf("Game session %s is %s", gs.Name, orDeleting(status, deleting)))
		case status != gamev1.GameSessionActive:
			// ACTIVATING: wait for the game server, at most one window from the (first) player session's creation.
			if expired(c) {
				plan.refuse(c, gamev1.InvalidGameSessionStatusReason, fmt.Sprintf("Game session %s did not become ACTIVE within %s", gs.Name, window))
			} else {
				wait(c)
			}
		case gs.Spec.PlayerSessionCreationPolicy == gamev1.PlayerSessionCreationPolicyDenyAll:
			plan.refuse(c, gamev1.PlayerSessionCreationDeniedReason, fmt.Sprintf("Game session %s does not accept player sessions (DENY_ALL)", gs.Name))
		case !c.complete:
			g := c.first().Spec.Group
			if expired(c) {
				plan.refuse(c, gamev1.InvalidGroupReason, fmt.Sprintf("Group %s: %d of %d members were created within %s", g.Name, len(c.members), g.Size, window))
			} else {
				wait(c)
			}
		case len(plan.Seats)+len(c.members) <= maxSeats:
			for _, ps := range c.members {
				plan.Seats = append(plan.Seats, gamev1.SeatHolder{Name: ps.Name, UID: ps.UID})
				plan.Admitted = append(plan.Admitted, ps.Name)
			}
		case len(c.members) == 1:
			plan.refuse(c, gamev1.GameSessionFullReason, fmt.Sprintf("Game session %s is full (%d of %d seats taken)", gs.Name, len(plan.Seats), maxSeats))
		default:
			plan.refuse(c, gamev1.GameSessionFullReason, fmt.Sprintf("Game session %s has %d of %d seats free, fewer than the %d players of group %s", gs.Name, maxSeats-len(plan.Seats), maxSeats, len(c.members), c.first().Spec.Group.Name))
		}
	}
	if plan.Changed() && len(plan.Refusals) > 0 {
		// Refusals are only sound against a committed ledger: decide them on the next pass.
		plan.Refusals, plan.Deferred = nil, plan.Refusals
	}
	return plan
}

func (p *Plan) refuse(c candidate, reason, message string) {
	for _, ps := range c.members {
		p.Refusals = append(p.Refusals, Refusal{PlayerSession: ps, Reason: reason, Message: message})
	}
}

func orDeleting(s gamev1.GameSessionStatusValue, deleting bool) string {
	if deleting {
		return "being deleted"
	}
	return string(s)
}

// RefusedCondition is the Admitted=False condition of a refused player session.
func RefusedCondition(generation int64, reason, message string) metav1.Condition {
	return metav1.Condition{
		Type:               gamev1.AdmittedCondition,
		Status:             metav1.ConditionFalse,
		Reason:             reason,
		Message:            message,
		ObservedGeneration: generation,
	}
}

// SetRefused marks ps refused for good at now. It reports false if it already was, or holds a status.
func SetRefused(ps *gamev1.PlayerSession, now time.Time, reason, message string) bool {
	if IsRefused(ps) || ps.Status.Status != "" {
		return false
	}
	meta.SetStatusCondition(&ps.Status.Conditions, RefusedCondition(ps.Generation, reason, message))
	end := metav1.NewMicroTime(now)
	ps.Status.TerminationTime = &end
	return true
}

// CreateRefusal tells whether a player session created now, the newest of players, would be refused for
// good by its game session gs, as far as the given (cached) objects show: gs is ending or ended, DENY_ALL,
// or every seat is held by, or promised to, an earlier player session (for a group member: fewer seats
// than the group needs). It is the admission webhook's synchronous answer and only advisory: the ledger,
// written under optimistic concurrency, stays the authority, so a stale cache can only delay a refusal to
// the asynchronous path, never admit past capacity.
func CreateRefusal(gs *gamev1.GameSession, players []gamev1.PlayerSession, ps *gamev1.PlayerSession, now time.Time, window time.Duration) (Refusal, bool) {
	c := ps.DeepCopy()
	c.Status = gamev1.PlayerSessionStatus{}
	if c.CreationTimestamp.IsZero() {
		c.CreationTimestamp = metav1.NewTime(now)
	}
	c.ResourceVersion = "" // not stored yet: after every stored one of its second
	all := make([]gamev1.PlayerSession, 0, len(players)+1)
	for i := range players {
		if players[i].Name != c.Name {
			all = append(all, players[i])
		}
	}
	if g := c.Spec.Group; g != nil {
		// Judge the group as if all its members were there: the others may not be created yet.
		for i := int32(len(groupMembers(all, g.Name))); i < g.Size-1; i++ {
			m := c.DeepCopy()
			m.Name = fmt.Sprintf("%s\x00%d", c.Name, i)
			all = append(all, *m)
		}
	}
	all = append(all, *c)
	plan := PlanSeats(gs, all, now, window)
	for _, r := range append(plan.Refusals, plan.Deferred...) {
		if r.PlayerSession.Name == c.Name {
			r.PlayerSession = ps
			return r, true
		}
	}
	return Refusal{}, false
}

func groupMembers(players []gamev1.PlayerSession, group string) []*gamev1.PlayerSession {
	var out []*gamev1.PlayerSession
	for i := range players {
		if g := players[i].Spec.Group; g != nil && g.Name == group && IsPending(&players[i]) {
			out = append(out, &players[i])
		}
	}
	return out
}
