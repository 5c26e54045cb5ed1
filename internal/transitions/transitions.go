// Package transitions makes a game server's moves of a player session, RESERVED -> ACTIVE (accept) and
// RESERVED or ACTIVE -> COMPLETED (remove), for both ways a game server calls: the GameLift endpoint's
// AcceptPlayerSession and RemovePlayerSession (a GameLift access key) and the Server SDK's (a process).
// Who may move a player session is the caller's to say (Request.Authorize); a move that is refused is a
// Refusal, data, never an error string.
package transitions

import (
	"context"
	"fmt"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/internal/index"
)

// Reason is why a move was refused.
type Reason int

const (
	// NotFound: no such player session for the caller (or not of the game session named).
	NotFound Reason = iota + 1
	// InvalidStatus: the player session's status does not allow the move.
	InvalidStatus
	// NotYours: the player session belongs to another game server's game.
	NotYours
)

// Refusal is a move refused, with a message naming the problem.
type Refusal struct {
	Reason  Reason
	Message string
}

// Accept and Remove are the two moves.
var (
	Accept = Move{To: gamev1.PlayerSessionActive, From: []gamev1.PlayerSessionStatusValue{gamev1.PlayerSessionReserved}}
	Remove = Move{To: gamev1.PlayerSessionCompleted, From: []gamev1.PlayerSessionStatusValue{gamev1.PlayerSessionReserved, gamev1.PlayerSessionActive}}
)

// Move is a status a player session may take, and the statuses it may take it from.
type Move struct {
	To   gamev1.PlayerSessionStatusValue
	From []gamev1.PlayerSessionStatusValue
}

// Request is one move asked for.
type Request struct {
	Move
	Namespace       string
	PlayerSessionID string
	// GameSessionID, when set, must be the player session's.
	GameSessionID string
	// Authorize decides whether the caller may move ps (its game server): a refusal, or an error reading
	// what it needs.
	Authorize func(ctx context.Context, ps *gamev1.PlayerSession) (*Refusal, error)
}

// Mover makes moves on the player sessions of the query index.
type Mover struct {
	Client client.Client
	Index  *index.Index
	Tokens *index.Tokens
	// Wait bounds how long a move waits for the index to catch up after a conflict.
	Wait time.Duration
}

// maxAttempts bounds how often a move is written again after a concurrent write.
const maxAttempts = 5

// AppearWait bounds how long a move waits for a player session its index does not hold to appear in it:
// a game server may accept a player session right after the backend created it through another replica,
// whose write reaches this replica's cache a moment later.
const AppearWait = 2 * time.Second

// appears waits (AppearWait at most) until the index holds the player session of r.
func (m *Mover) appears(ctx context.Context, r Request) bool {
	ctx, cancel := context.WithTimeout(ctx, min(AppearWait, max(m.Wait, time.Millisecond)))
	defer cancel()
	return index.Until(ctx, m.Index.Changes().Next, func() (bool, error) {
		page, err := m.Index.List(ctx, index.Query{Namespace: r.Namespace, Fields: map[string]string{index.FieldPlayerSessionID: r.PlayerSessionID}},
			index.ListOptions{Limit: 1}, m.Tokens)
		return err == nil && len(page.Items) > 0, err
	}) == nil
}

// Apply makes the move: the player session as written, or a refusal. The index may not hold the player
// session's latest write yet (the operator's, right after the reservation): on a conflict Apply waits
// until it does and tries again (an error after maxAttempts: the conflict). It returns once the index
// holds the write, so a describe right after reads it.
func (m *Mover) Apply(ctx context.Context, r Request) (*gamev1.PlayerSession, *Refusal, error) {
	waitCtx, cancel := context.WithTimeout(ctx, m.Wait)
	defer cancel()
	for attempt := 1; ; attempt++ {
		page, err := m.Index.List(ctx, index.Query{Namespace: r.Namespace, Fields: map[string]string{index.FieldPlayerSessionID: r.PlayerSessionID}},
			index.ListOptions{Limit: 1}, m.Tokens)
		if err != nil {
			return nil, nil, err
		}
		if len(page.Items) == 0 && attempt == 1 && m.appears(ctx, r) {
			continue // created through another replica a moment ago: this replica's index has it now
		}
		if len(page.Items) == 0 || (r.GameSessionID != "" && page.Items[0].Status.GameSessionID != r.GameSessionID) {
			return nil, &Refusal{NotFound, "Player session " + r.PlayerSessionID + " not found"}, nil
		}
		ps := page.Items[0].DeepCopy()
		if !slices.Contains(r.From, ps.Status.Status) {
			return nil, &Refusal{InvalidStatus, fmt.Sprintf("Player session %s is %s and cannot become %s", r.PlayerSessionID, ps.Status.Status, r.To)}, nil
		}
		if refusal, err := r.Authorize(ctx, ps); refusal != nil || err != nil {
			return nil, refusal, err
		}
		before := ps.DeepCopy()
		ps.Status.Status = r.To
		err = m.Client.Status().Patch(ctx, ps, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
		if err == nil {
			if want, err := index.ParseRV(ps.ResourceVersion); err == nil {
				_ = m.Index.WaitFor(ctx, want) // a describe may then read older data; the write itself succeeded
			}
			return ps, nil, nil
		}
		if !apierrors.IsConflict(err) || attempt == maxAttempts || index.Until(waitCtx, m.Index.Changes().Next, func() (bool, error) {
			cur := m.Index.Get(before.Namespace, before.Name)
			return cur == nil || cur.ResourceVersion != before.ResourceVersion, nil
		}) != nil {
			return nil, nil, err
		}
	}
}
