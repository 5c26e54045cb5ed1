package soak

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// op is a recorded operation from call to ret (in arbitrary units).
func op(client int, kind, ps, result string, call, ret int64) porcupine.Operation {
	return porcupine.Operation{ClientId: client, Input: Input{Op: kind, PS: ps}, Output: Output{Result: result}, Call: call, Return: ret}
}

// TestModelAcceptsWhatTheOperatorMayDo: histories the operator may produce are linearizable: a full game
// session refusing, a reservation timing out (observed by a describe, or by an accept refused) and its seat
// taken, overlapping calls, an answer lost.
func TestModelAcceptsWhatTheOperatorMayDo(t *testing.T) {
	for name, h := range map[string][]porcupine.Operation{
		"full then freed by a timeout": {
			op(0, OpReserve, "a", OutOK, 0, 1), op(1, OpReserve, "b", OutFull, 2, 3), op(0, OpDescribe, "a", "TIMEDOUT", 4, 5),
			op(1, OpReserve, "c", OutOK, 6, 7), op(1, OpAccept, "c", OutOK, 8, 9), op(1, OpRemove, "c", OutOK, 10, 11), op(0, OpDescribe, "c", "COMPLETED", 12, 13),
		},
		"a seat freed by an unobserved timeout": {
			op(0, OpReserve, "a", OutOK, 0, 1), op(1, OpReserve, "b", OutOK, 2, 3), op(0, OpAccept, "a", "TIMEDOUT", 4, 5),
		},
		"overlapping reserves, one wins": {
			op(0, OpReserve, "a", OutOK, 0, 10), op(1, OpReserve, "b", OutFull, 1, 9), op(0, OpAccept, "a", OutOK, 11, 12),
		},
		"a lost answer": {
			op(0, OpReserve, "a", OutUnknown, 0, 1<<62), op(1, OpReserve, "b", OutFull, 5, 6), op(1, OpDescribe, "a", "RESERVED", 7, 8),
		},
		"a refused move": {
			op(0, OpReserve, "a", OutOK, 0, 1), op(0, OpAccept, "a", OutOK, 4, 5), op(0, OpAccept, "a", OutRefused, 6, 7), op(0, OpRemove, "a", OutOK, 8, 9),
			op(0, OpRemove, "a", OutRefused, 10, 11),
		},
		"a group, all or none": {
			op(0, OpGroup, "a,b", OutFull, 0, 1), op(1, OpReserve, "c", OutOK, 2, 3), op(0, OpDescribe, "a", "", 4, 5),
		},
		"a reserved player removed": {
			op(0, OpReserve, "a", OutOK, 0, 1), op(0, OpRemove, "a", OutOK, 2, 3), op(0, OpDescribe, "a", "COMPLETED", 4, 5),
		},
	} {
		if res := porcupine.CheckOperationsTimeout(Model(1), h, 10*time.Second); res != porcupine.Ok {
			t.Errorf("%s: %s", name, res)
		}
	}
}

// TestModelCatchesViolations: the checker fails a history that oversubscribes a game session, loses a
// player session, moves one out of order, or makes a move the state machine forbids; and saves the
// visualisation of the illegal history.
func TestModelCatchesViolations(t *testing.T) {
	for name, h := range map[string][]porcupine.Operation{
		"oversubscribed": {
			op(0, OpReserve, "a", OutOK, 0, 1), op(1, OpReserve, "b", OutOK, 2, 3), op(0, OpDescribe, "a", "RESERVED", 4, 5), op(1, OpDescribe, "b", "RESERVED", 6, 7),
		},
		"a lost player session": {
			op(0, OpReserve, "a", OutOK, 0, 1), op(0, OpDescribe, "a", "", 2, 3),
		},
		"accepted before it was reserved": {
			op(0, OpAccept, "a", OutOK, 0, 1), op(1, OpReserve, "a", OutOK, 2, 3),
		},
		"a completed one active again": {
			op(0, OpReserve, "a", OutOK, 0, 1), op(0, OpAccept, "a", OutOK, 2, 3), op(0, OpRemove, "a", OutOK, 4, 5), op(0, OpDescribe, "a", "ACTIVE", 6, 7),
		},
		"refused with a free seat": {
			op(0, OpReserve, "a", OutFull, 0, 1),
		},
		"half a group": {
			op(0, OpGroup, "a,b", OutOK, 0, 1), op(0, OpDescribe, "a", "RESERVED", 2, 3), op(0, OpDescribe, "b", "", 4, 5),
		},
	} {
		if res := porcupine.CheckOperationsTimeout(Model(1), h, 10*time.Second); res != porcupine.Illegal {
			t.Errorf("%s: %s, want Illegal", name, res)
		}
	}
	hist := NewHistory()
	hist.GameSession("ns/g", 1)
	hist.ops["ns/g"] = []porcupine.Operation{op(0, OpReserve, "a", OutOK, 0, 1), op(1, OpReserve, "b", OutOK, 2, 3),
		op(0, OpDescribe, "a", "RESERVED", 4, 5), op(1, OpDescribe, "b", "RESERVED", 6, 7)}
	dir := t.TempDir()
	v := hist.Check(dir, 10*time.Second)
	if len(v) != 1 || v[0].Result != porcupine.Illegal {
		t.Fatalf("violations %v", v)
	}
	if b, err := os.ReadFile(v[0].Visualization); err != nil || !strings.Contains(string(b), "<html") {
		t.Errorf("visualisation %s: %v", v[0].Visualization, err)
	}
}

// TestObserverCatchesViolations: a watch stream that oversubscribes a game session, moves a player session
// outside the state machine, or times one out early, is reported; a sound one is not, and its timeouts'
// lateness is measured.
func TestObserverCatchesViolations(t *testing.T) {
	t0 := time.Unix(1000, 0)
	rev := func(name, status string, seen time.Duration) Revision {
		return Revision{Namespace: "ns", Name: name, GameSession: "g", Status: status, Reserved: t0, Seen: t0.Add(seen), Max: 1}
	}
	sound := &Observer{Timeout: time.Minute}
	for _, r := range []Revision{rev("a", "", 0), rev("a", "RESERVED", 0), rev("a", "TIMEDOUT", 61*time.Second), rev("b", "RESERVED", 62*time.Second),
		rev("b", "ACTIVE", 63*time.Second), rev("b", "COMPLETED", 64*time.Second)} {
		sound.Observe(r)
	}
	if v := sound.Violations(); len(v) != 0 {
		t.Errorf("a sound stream: %v", v)
	}
	if p50, _, _, n := sound.Lateness(); n != 1 || p50 != time.Second {
		t.Errorf("lateness %s of %d", p50, n)
	}
	for name, stream := range map[string][]Revision{
		"oversubscribed":         {rev("a", "RESERVED", 0), rev("b", "RESERVED", 0)},
		"an early timeout":       {rev("a", "RESERVED", 0), rev("a", "TIMEDOUT", 59*time.Second)},
		"back to active":         {rev("a", "RESERVED", 0), rev("a", "ACTIVE", time.Second), rev("a", "COMPLETED", 2*time.Second), rev("a", "ACTIVE", 3*time.Second)},
		"timed out while active": {rev("a", "RESERVED", 0), rev("a", "ACTIVE", time.Second), rev("a", "TIMEDOUT", 90*time.Second)},
	} {
		o := &Observer{Timeout: time.Minute}
		for _, r := range stream {
			o.Observe(r)
		}
		if len(o.Violations()) == 0 {
			t.Errorf("%s: no violation reported", name)
		}
	}
}
