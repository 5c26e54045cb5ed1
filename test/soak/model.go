// Package soak is the soak test's observer: a sequential model of a game session's seats and its player
// sessions' states that recorded client histories are checked against for linearizability (porcupine), and
// the invariants read from a watch of every player session revision. It shares no code path with the
// manager: it reads only what clients and a watch see. TestSoak (soak_test.go) drives the operator under
// random faults and feeds them; `make soak` runs it long.
package soak

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/anishathalye/porcupine"
)

// Operation kinds of a game session's history.
const (
	OpReserve  = "reserve"  // CreatePlayerSession (or a kubectl create): a seat for a new player session
	OpGroup    = "group"    // CreatePlayerSessions: seats for all of its players (PS: their ids, comma-separated), or none
	OpAccept   = "accept"   // the game server's AcceptPlayerSession (RESERVED -> ACTIVE)
	OpRemove   = "remove"   // the game server's RemovePlayerSession (ACTIVE -> COMPLETED)
	OpDescribe = "describe" // DescribePlayerSessions of one player session: its status
	// OpList is a paged list of the game session's player sessions (the query API, each page from any
	// replica): every player session not refused, as "id=STATUS" sorted and space-separated (ListResult),
	// STATUS empty while admission has not decided it.
	OpList = "list"
	// OpWritten is recorded by History right after a reservation returned ok (not by a client): its
	// player session's status is written by then (the call waited to see it), so it is no longer granted.
	OpWritten = "written"
)

// Outcomes an operation's output may be besides a status.
const (
	OutOK      = "ok"
	OutFull    = "full"    // refused: no seat
	OutRefused = "refused" // refused: not in the state the move needs
	OutUnknown = "unknown" // no answer (a timeout, a lost connection, a 5xx): applied or not
	// OutRejected: turned away before it was considered (unauthorized, throttled, a concurrent change to
	// retry): nothing applied, nothing learnt.
	OutRejected = "rejected"
)

// Input is an operation on one player session of the game session.
type Input struct {
	Op string
	PS string
}

// Output is what the client saw: an outcome, or for describe the status.
type Output struct {
	Result string
	// Served says where a read was served from, for reading a history (the model ignores it): for a list,
	// each page's replica, the resourceVersion it answered at, the index's own revision when it was asked
	// and how many items it held; for a describe, the replica and its index's revision.
	Served string
}

// state is the model's game session: its maximum, and each player session's status. GRANTED, RESERVED and
// ACTIVE hold a seat; so does a player session that ended (COMPLETED, TIMEDOUT) until the operator
// releases its seat from the ledger, which it does after the end, not with it: such a status carries a
// held mark.
//
// A reservation takes effect in two writes (docs/design.md): admission grants the seat in the game
// session's ledger, then the player session's status is written RESERVED. Between them the seat is held
// (others are refused: full) while reads show the player session undecided (no status): that is GRANTED.
// It becomes RESERVED on its own, at the latest when its reservation returned (OpWritten).
type state struct {
	max  int
	ps   map[string]string
	repr string // String(), computed once: the checker compares and hashes states often
}

// held marks an ended player session whose seat is not released yet.
const held = "+seat"

// granted is a player session whose seat is granted, its status not yet written.
const granted = "GRANTED"

func (s state) seats() int {
	n := 0
	for _, v := range s.ps {
		if v == granted || v == "RESERVED" || v == "ACTIVE" || strings.HasSuffix(v, held) {
			n++
		}
	}
	return n
}

// status is a player session's status as clients see it.
func (s state) status(id string) string { return strings.TrimSuffix(s.ps[id], held) }

func (s state) with(id, status string) state {
	out := state{max: s.max, ps: maps.Clone(s.ps)}
	if out.ps == nil {
		out.ps = map[string]string{}
	}
	out.ps[id] = status
	out.repr = out.describe()
	return out
}

func (s state) String() string {
	if s.repr == "" {
		return s.describe()
	}
	return s.repr
}

func (s state) describe() string {
	keys := slices.Sorted(maps.Keys(s.ps))
	var b strings.Builder
	fmt.Fprintf(&b, "max=%d", s.max)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%s", k, s.ps[k])
	}
	return b.String()
}

// freed are the states where one seat was freed by what happens on its own, without a client: a held seat
// released, or a RESERVED player session timed out and its seat released (the model applies them when an
// observation needs them).
func (s state) freed(except string) []state {
	var out []state
	for id, v := range s.ps {
		switch {
		case id == except:
		case v == "RESERVED" || v == granted:
			out = append(out, s.with(id, "TIMEDOUT"))
		case strings.HasSuffix(v, held):
			out = append(out, s.with(id, strings.TrimSuffix(v, held)))
		}
	}
	return out
}

// admit is every state where all of ids hold a seat: at once if there are seats enough, else after seats
// were freed on their own.
func admit(s state, ids []string) []state {
	if s.seats()+len(ids) <= s.max {
		next := s
		for _, id := range ids {
			next = next.with(id, granted)
		}
		return []state{next}
	}
	var out []state
	for _, f := range s.freed("") {
		out = append(out, admit(f, ids)...)
	}
	return out
}

// step is every state the model may reach from s with in observed as out (none: the observation is
// impossible from s).
func step(s state, in Input, out Output) []state {
	if (in.Op == OpAccept || in.Op == OpRemove) && s.ps[in.PS] == granted {
		s = s.with(in.PS, "RESERVED") // a game server learnt the id from a reservation that returned: written
	}
	cur := s.status(in.PS)
	if out.Result == OutRejected {
		return []state{s}
	}
	if out.Result == OutUnknown { // applied, or not
		next := []state{s}
		next = append(next, step(s, in, Output{Result: OutOK})...)
		return next
	}
	switch in.Op {
	case OpGroup:
		ids := strings.Split(in.PS, ",")
		for _, id := range ids {
			if s.ps[id] != "" {
				return nil
			}
		}
		switch out.Result {
		case OutOK:
			return admit(s, ids)
		case OutFull, OutRefused:
			if s.seats()+len(ids) > s.max {
				next := s
				for _, id := range ids {
					next = next.with(id, "REFUSED")
				}
				return []state{next}
			}
		}
	case OpReserve:
		if cur != "" {
			return nil // a player session is reserved once
		}
		switch out.Result {
		case OutOK:
			if s.seats() < s.max {
				return []state{s.with(in.PS, granted)}
			}
			var next []state // full, unless a seat was freed first
			for _, t := range s.freed(in.PS) {
				next = append(next, t.with(in.PS, granted))
			}
			return next
		case OutFull, OutRefused:
			if s.seats() >= s.max {
				return []state{s.with(in.PS, "REFUSED")}
			}
		}
	case OpAccept:
		switch {
		case out.Result == OutOK && cur == "RESERVED":
			return []state{s.with(in.PS, "ACTIVE")}
		case out.Result == "TIMEDOUT" && cur == "RESERVED":
			return []state{s.with(in.PS, "TIMEDOUT"+held)}
		case out.Result == "TIMEDOUT" && cur == "TIMEDOUT":
			return []state{s}
		case out.Result == OutRefused && cur != "RESERVED":
			return []state{s}
		}
	case OpRemove: // a reserved player who never connected is removed too, as GameLift's
		switch {
		case out.Result == OutOK && (cur == "ACTIVE" || cur == "RESERVED"):
			return []state{s.with(in.PS, "COMPLETED"+held)}
		case out.Result == OutRefused && (cur == "COMPLETED" || cur == "TIMEDOUT"):
			return []state{s}
		case out.Result == OutRefused && cur == "RESERVED": // it timed out meanwhile
			return []state{s.with(in.PS, "TIMEDOUT"+held)}
		}
	case OpWritten:
		switch cur {
		case "", "REFUSED":
		case granted:
			return []state{s.with(in.PS, "RESERVED")}
		default:
			return []state{s}
		}
	case OpList:
		return listed(s, out.Result)
	case OpDescribe:
		switch {
		case out.Result == cur:
			return []state{s}
		case cur == granted && out.Result == "":
			return []state{s} // its status not written yet
		case cur == granted && out.Result == "RESERVED":
			return []state{s.with(in.PS, "RESERVED")}
		case (cur == "RESERVED" || cur == granted) && out.Result == "TIMEDOUT":
			return []state{s.with(in.PS, "TIMEDOUT"+held)}
		case cur == "REFUSED" && out.Result == "":
			return []state{s} // a refused player session is not found
		}
	}
	return nil
}

// ListResult is a list's output: each player session's status, "id=STATUS" sorted, space-separated.
func ListResult(statuses map[string]string) string {
	var parts []string
	for _, id := range slices.Sorted(maps.Keys(statuses)) {
		parts = append(parts, id+"="+statuses[id])
	}
	return strings.Join(parts, " ")
}

// listed is the state after a list that saw result from s (none: impossible): every player session the
// model holds is listed in its state (a GRANTED one undecided or RESERVED, a RESERVED one may have timed
// out meanwhile); a refused one is not (or undecided: its refusal not written yet); others may be listed
// undecided only (created, not decided yet).
func listed(s state, result string) []state {
	seen := map[string]string{}
	for _, kv := range strings.Fields(result) {
		id, status, _ := strings.Cut(kv, "=")
		seen[id] = status
	}
	next := s
	for id := range s.ps {
		cur := s.status(id)
		got, ok := seen[id]
		delete(seen, id)
		switch {
		case cur == "REFUSED":
			if ok && got != "" {
				return nil
			}
		case !ok:
			return nil
		case got == cur:
		case cur == granted && got == "":
		case cur == granted && got == "RESERVED":
			next = next.with(id, "RESERVED")
		case (cur == "RESERVED" || cur == granted) && got == "TIMEDOUT":
			next = next.with(id, "TIMEDOUT"+held)
		default:
			return nil
		}
	}
	for _, got := range seen {
		if got != "" {
			return nil // listed with a status, never reserved
		}
	}
	return []state{next}
}

// Model is the porcupine model of one game session of maximum max: its history must be linearizable.
//
// The model is nondeterministic (which reservation timed out, whether a call without an answer took
// effect); this is its power set construction, a state being the set of the states the game session may be
// in. It is porcupine's NondeterministicModel.ToModel made fit for large sets: states merged through a map
// rather than pairwise, sets compared by a digest rather than element by element, and a step that stops
// when the check's time is up (porcupine's own waits for a step to end, so a step over a huge set made the
// timeout powerless).
func Model(max int) porcupine.Model {
	return porcupine.Model{
		Init: func() any { return newSet([]state{{max: max, ps: map[string]string{}}}) },
		StepContext: func(ctx context.Context, cur, in, out any) (bool, any) {
			var next []state
			for i, s := range cur.(set).states {
				if i%64 == 0 && ctx.Err() != nil {
					return false, nil
				}
				next = append(next, step(s, in.(Input), out.(Output))...)
			}
			if len(next) == 0 {
				return false, nil
			}
			return true, newSet(next)
		},
		Equal: func(a, b any) bool { return a.(set).digest == b.(set).digest },
		Hash: func(s any) uint64 {
			d := s.(set).digest
			return binary.LittleEndian.Uint64(d[:8])
		},
		DescribeOperation: func(in, out any) string {
			if served := out.(Output).Served; served != "" {
				return fmt.Sprintf("%s(%s) -> %s [%s]", in.(Input).Op, in.(Input).PS, out.(Output).Result, served)
			}
			return fmt.Sprintf("%s(%s) -> %s", in.(Input).Op, in.(Input).PS, out.(Output).Result)
		},
		DescribeState: func(s any) string {
			var parts []string
			for _, st := range s.(set).states {
				parts = append(parts, st.String())
			}
			return "{" + strings.Join(parts, ", ") + "}"
		},
	}
}

// set is a set of states, without duplicates, in the order of their descriptions, with a digest of them.
type set struct {
	states []state
	digest [sha256.Size]byte
}

func newSet(states []state) set {
	seen := make(map[string]state, len(states))
	for _, s := range states {
		seen[s.String()] = s
	}
	keys := slices.Sorted(maps.Keys(seen))
	h := sha256.New()
	out := set{states: make([]state, 0, len(keys))}
	for _, k := range keys {
		out.states = append(out.states, seen[k])
		h.Write([]byte(k))
		h.Write([]byte{0})
	}
	h.Sum(out.digest[:0])
	return out
}
