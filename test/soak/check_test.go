package soak

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// op is a recorded operation from call to ret (in arbitrary units: 10 apart, as written adds its
// operations 1 and 2 after a return).
func op(client int, kind, ps, result string, call, ret int64) porcupine.Operation {
	if ret < 1<<62 {
		ret *= 10
	}
	return porcupine.Operation{ClientId: client, Input: Input{Op: kind, PS: ps}, Output: Output{Result: result}, Call: 10 * call, Return: ret}
}

// recorded is a history as History records it: each reservation that returned ok followed by OpWritten.
func recorded(h []porcupine.Operation) []porcupine.Operation {
	var out []porcupine.Operation
	for _, o := range h {
		out = append(append(out, o), written(o)...)
	}
	return out
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
		if res := porcupine.CheckOperationsTimeout(Model(1), recorded(h), 10*time.Second); res != porcupine.Ok {
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
		if res := porcupine.CheckOperationsTimeout(Model(1), recorded(h), 10*time.Second); res != porcupine.Illegal {
			t.Errorf("%s: %s, want Illegal", name, res)
		}
	}
	hist := NewHistory()
	hist.GameSession("ns/g", 1)
	hist.ops["ns/g"] = recorded([]porcupine.Operation{op(0, OpReserve, "a", OutOK, 0, 1), op(1, OpReserve, "b", OutOK, 2, 3),
		op(0, OpDescribe, "a", "RESERVED", 4, 5), op(1, OpDescribe, "b", "RESERVED", 6, 7)})
	dir := t.TempDir()
	v := hist.Check(dir, 10*time.Second, nil)
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

// TestListOperation: a list must show every player session the game session holds, in its state, and
// nothing else.
func TestListOperation(t *testing.T) {
	list := func(client int, statuses map[string]string, call, ret int64) porcupine.Operation {
		return op(client, OpList, "", ListResult(statuses), call, ret)
	}
	legal := map[string][]porcupine.Operation{
		"reserved, then active": {
			op(0, OpReserve, "a", OutOK, 0, 1), list(1, map[string]string{"a": "RESERVED"}, 2, 3), op(0, OpAccept, "a", OutOK, 4, 5),
			list(1, map[string]string{"a": "ACTIVE"}, 6, 7),
		},
		"a timeout seen by a list": {
			op(0, OpReserve, "a", OutOK, 0, 1), list(1, map[string]string{"a": "TIMEDOUT"}, 2, 3), op(0, OpReserve, "b", OutOK, 4, 5),
		},
		"a refused one not listed": {
			op(0, OpReserve, "a", OutOK, 0, 1), op(1, OpReserve, "b", OutFull, 2, 3), list(1, map[string]string{"a": "RESERVED"}, 4, 5),
		},
		"a list during a reservation": {
			op(0, OpReserve, "a", OutOK, 0, 10), list(1, map[string]string{}, 1, 2), list(1, map[string]string{"a": "RESERVED"}, 3, 4),
		},
		// The two writes of a reservation: its seat granted in the ledger (b refused), its status not yet
		// written (listed undecided), then written.
		"a seat granted before its status is written": {
			op(0, OpReserve, "a", OutOK, 0, 10), op(1, OpReserve, "b", OutFull, 2, 3), list(1, map[string]string{"a": ""}, 4, 5),
			list(1, map[string]string{"a": "RESERVED"}, 6, 7),
		},
		"a refusal not yet written, listed undecided": {
			op(0, OpReserve, "a", OutOK, 0, 1), op(1, OpReserve, "b", OutFull, 2, 10), list(1, map[string]string{"a": "RESERVED", "b": ""}, 3, 4),
		},
	}
	for name, h := range legal {
		if res := porcupine.CheckOperationsTimeout(Model(1), recorded(h), 10*time.Second); res != porcupine.Ok {
			t.Errorf("%s: %s, want Ok", name, res)
		}
	}
	illegal := map[string][]porcupine.Operation{
		"a reserved one missing":                   {op(0, OpReserve, "a", OutOK, 0, 1), list(1, map[string]string{}, 2, 3)},
		"one never reserved":                       {list(1, map[string]string{"a": "RESERVED"}, 0, 1)},
		"a refused one listed":                     {op(0, OpReserve, "a", OutOK, 0, 1), op(1, OpReserve, "b", OutFull, 2, 3), list(1, map[string]string{"a": "RESERVED", "b": "RESERVED"}, 4, 5)},
		"a wrong state":                            {op(0, OpReserve, "a", OutOK, 0, 1), list(1, map[string]string{"a": "ACTIVE"}, 2, 3)},
		"back in time":                             {op(0, OpReserve, "a", OutOK, 0, 1), op(0, OpAccept, "a", OutOK, 2, 3), list(1, map[string]string{"a": "RESERVED"}, 4, 5)},
		"undecided after its reservation returned": {op(0, OpReserve, "a", OutOK, 0, 1), list(1, map[string]string{"a": ""}, 2, 3)},
		"a granted seat missing from a list": {
			op(0, OpReserve, "a", OutOK, 0, 10), op(1, OpReserve, "b", OutFull, 2, 3), list(1, map[string]string{}, 4, 5),
		},
		"undecided again after reserved": {
			op(0, OpReserve, "a", OutOK, 0, 10), list(1, map[string]string{"a": "RESERVED"}, 1, 2), list(1, map[string]string{"a": ""}, 3, 4),
		},
		"a refused one listed with a status": {
			op(0, OpReserve, "a", OutOK, 0, 1), op(1, OpReserve, "b", OutFull, 2, 3), list(1, map[string]string{"a": "RESERVED", "b": "TIMEDOUT"}, 4, 5),
		},
	}
	for name, h := range illegal {
		if res := porcupine.CheckOperationsTimeout(Model(1), recorded(h), 10*time.Second); res != porcupine.Illegal {
			t.Errorf("%s: %s, want Illegal", name, res)
		}
	}
}

// TestStaleReads: a read is checked from the moment its snapshot was the cluster's newest. A describe
// that misses a reservation is legal if it was served from a snapshot older than the reservation's write,
// illegal if its snapshot held it.
func TestStaleReads(t *testing.T) {
	for _, c := range []struct {
		name string
		rv   uint64
		want porcupine.CheckResult
	}{
		{"served from before the reservation", 10, porcupine.Ok},
		{"served from a snapshot with the reservation", 11, porcupine.Illegal},
		{"snapshot unknown: checked from the start", 0, porcupine.Ok},
	} {
		hist := NewHistory()
		hist.GameSession("ns/g", 1)
		// etcd at revision 10 when a sample was sent at 0, 11 (the reservation) when one was sent at 5 (50).
		hist.samples = []sample{{sent: 0, rev: 10}, {sent: 50, rev: 11}}
		hist.ops["ns/g"] = recorded([]porcupine.Operation{op(0, OpReserve, "a", OutOK, 2, 3), op(1, OpDescribe, "a", "", 6, 7)})
		hist.reads["ns/g"] = map[int]uint64{2: c.rv} // after the reservation and its OpWritten
		var got porcupine.CheckResult = porcupine.Ok
		if v := hist.Check(t.TempDir(), 10*time.Second, nil); len(v) > 0 {
			got = v[0].Result
		}
		if got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
	hist := NewHistory()
	hist.samples = []sample{{sent: 0, rev: 10}, {sent: int64(2 * time.Second), rev: 11}}
	hist.ops["ns/g"] = []porcupine.Operation{{ClientId: 1, Input: Input{Op: OpDescribe, PS: "a"}, Output: Output{}, Call: int64(3 * time.Second), Return: int64(4 * time.Second)}}
	hist.reads["ns/g"] = map[int]uint64{0: 10}
	if _, _, max, n := hist.ReadLag(); n != 1 || max != 3*time.Second {
		t.Errorf("read lag %s of %d reads, want 3s of 1", max, n)
	}
}

// TestCheckSealed: a history sealed during the run is checked then, and again at the end if it grew.
func TestCheckSealed(t *testing.T) {
	hist := NewHistory()
	for _, name := range []string{"ns/legal", "ns/illegal", "ns/grew"} {
		hist.GameSession(name, 1)
	}
	hist.ops["ns/legal"] = recorded([]porcupine.Operation{op(0, OpReserve, "a", OutOK, 0, 1), op(0, OpDescribe, "a", "RESERVED", 2, 3)})
	hist.ops["ns/illegal"] = recorded([]porcupine.Operation{op(0, OpReserve, "a", OutOK, 0, 1), op(0, OpDescribe, "a", "", 2, 3)})
	hist.ops["ns/grew"] = recorded([]porcupine.Operation{op(0, OpReserve, "a", OutOK, 0, 1)})
	hist.CheckSealed(t.TempDir(), 10*time.Second)
	for _, name := range []string{"ns/legal", "ns/illegal", "ns/grew"} {
		hist.Seal(name)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		hist.mu.Lock()
		n := len(hist.results)
		hist.mu.Unlock()
		if n == 3 || time.Now().After(deadline) {
			break
		}
	}
	hist.mu.Lock()
	hist.ops["ns/grew"] = append(hist.ops["ns/grew"], recorded([]porcupine.Operation{op(1, OpReserve, "b", OutOK, 4, 5), // oversubscribed
		op(0, OpDescribe, "a", "RESERVED", 6, 7), op(1, OpDescribe, "b", "RESERVED", 8, 9)})...)
	hist.mu.Unlock()
	var got []string
	var progressed int
	for _, v := range hist.Check(t.TempDir(), 10*time.Second, func(checked, of int, _ string) { progressed = checked }) {
		got = append(got, v.GameSession)
	}
	if !slices.Equal(got, []string{"ns/grew", "ns/illegal"}) || progressed != 3 {
		t.Errorf("violations %v, %d checked; want ns/grew and ns/illegal, 3", got, progressed)
	}
}

// TestStepStopsWhenTheTimeIsUp: a step over a set of states stops once the check's context is done (so a
// history's timeout holds however large its sets grow), and merges equal states.
func TestStepStopsWhenTheTimeIsUp(t *testing.T) {
	var states []state
	for i := range 1000 {
		states = append(states, state{max: 4, ps: map[string]string{}}.with(fmt.Sprint("p", i), "RESERVED"), state{max: 4, ps: map[string]string{}}.with(fmt.Sprint("p", i), "RESERVED"))
	}
	big := newSet(states)
	if len(big.states) != 1000 {
		t.Fatalf("%d states after merging, want 1000", len(big.states))
	}
	m := Model(4)
	in, out := Input{Op: OpReserve, PS: "x"}, Output{Result: OutOK}
	if ok, _ := m.StepContext(context.Background(), big, in, out); !ok {
		t.Fatal("a reservation with free seats refused")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if ok, _ := m.StepContext(ctx, big, in, out); ok {
		t.Error("a step went on after its context was done")
	}
}

// TestResolve: a reservation without an answer whose player session the watch never saw is left out; one
// seen decided returns when the decision was delivered; one seen undecided keeps an open end; the others
// are untouched.
func TestResolve(t *testing.T) {
	hist := NewHistory()
	hist.GameSession("ns/g", 2)
	at := func(d time.Duration) int64 { return int64(d) }
	hist.ops["ns/g"] = []porcupine.Operation{
		{Input: Input{Op: OpReserve, PS: "never"}, Output: Output{Result: OutUnknown}, Call: at(time.Second), Return: 1 << 62},
		{Input: Input{Op: OpReserve, PS: "decided"}, Output: Output{Result: OutUnknown}, Call: at(time.Second), Return: 1 << 62},
		{Input: Input{Op: OpGroup, PS: "g0,g1"}, Output: Output{Result: OutUnknown}, Call: at(time.Second), Return: 1 << 62},
		{Input: Input{Op: OpReserve, PS: "pending"}, Output: Output{Result: OutUnknown}, Call: at(time.Second), Return: 1 << 62},
		{Input: Input{Op: OpReserve, PS: "answered"}, Output: Output{Result: OutOK}, Call: at(time.Second), Return: at(2 * time.Second)},
	}
	seen := map[string]Sighting{
		"ns/g/decided":  {Seen: true, Decided: hist.start.Add(3 * time.Second)},
		"ns/g/g1":       {Seen: true, Decided: hist.start.Add(4 * time.Second)},
		"ns/g/g0":       {Seen: true, Decided: hist.start.Add(5 * time.Second)},
		"ns/g/pending":  {Seen: true},
		"ns/g/answered": {Seen: true, Decided: hist.start.Add(time.Second)},
	}
	hist.Resolve(func(game, player string) Sighting { return seen[game+"/"+player] })
	got := map[string]int64{}
	for _, op := range hist.operations("ns/g") {
		got[op.Input.(Input).PS] = op.Return
	}
	want := map[string]int64{"decided": at(3 * time.Second), "g0,g1": at(4 * time.Second), "pending": 1 << 62, "answered": at(2 * time.Second)}
	if !maps.Equal(got, want) {
		t.Errorf("returns %v, want %v", got, want)
	}
}

// TestObserverRelisted: what a relist no longer shows (deleted while the watch was down) is forgotten, so
// that the observer can be found to hold what the API server holds.
func TestObserverRelisted(t *testing.T) {
	o := &Observer{Timeout: time.Minute}
	for _, name := range []string{"a", "b"} {
		o.Observe(Revision{Namespace: "ns", Name: name, GameSession: "g", Status: "RESERVED", Max: 2})
	}
	if o.Holds("ns", map[string]string{"a": "RESERVED"}) {
		t.Fatal("holds a without b")
	}
	o.Relisted("ns", map[string]bool{"a": true})
	if !o.Holds("ns", map[string]string{"a": "RESERVED"}) {
		t.Error("b, deleted while the watch was down, still held")
	}
	o.Observe(Revision{Namespace: "ns", Name: "c", GameSession: "g", Status: "RESERVED", Max: 2})
	if v := o.Violations(); len(v) != 0 {
		t.Errorf("b's seat still counted: %v", v)
	}
}

// TestDumpSaysWhereReadsWereServed: a dumped history names, for each read, the replicas and revisions that
// served it, so that a list missing a record can be traced to the index that answered it.
func TestDumpSaysWhereReadsWereServed(t *testing.T) {
	list := porcupine.Operation{ClientId: 2, Input: Input{Op: OpList}, Call: 3e6, Return: 5e6,
		Output: Output{Result: ListResult(map[string]string{"a": "RESERVED"}), Served: "r1@120(ix 118) 1; r2@120(ix 125) 0"}}
	path := t.TempDir() + "/h.txt"
	dump(path, []porcupine.Operation{op(1, OpReserve, "a", OutOK, 0, 1), list})
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"reserve(a) -> ok\n", "[r1@120(ix 118) 1; r2@120(ix 125) 0]\n"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("dump lacks %q:\n%s", want, text)
		}
	}
	if got := Model(2).DescribeOperation(list.Input, list.Output); !strings.Contains(got, "[r1@120") {
		t.Errorf("the visualisation does not say where the list was served: %s", got)
	}
}
