package soak

import (
	"cmp"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anishathalye/porcupine"
)

// History records the operations clients made on game sessions: invocation and response times, inputs and
// outputs, per game session. Safe for concurrent use.
//
// Writes are checked as linearizable. A read (a describe, a list) is served from a replica's index, fed by
// its informer: it may lag the cluster (a replica partitioned from kube-apiserver serves what it last
// saw). A read is recorded with the snapshot it was served from at least (the replica's index revision when
// the call began, or the list's resourceVersion), and is checked as linearizable from the moment that
// snapshot was the cluster's newest: its invocation is moved back to the last etcd revision sample not
// newer than the snapshot (samples from Revision). A read staler than what the replica's index held, or
// newer than the cluster, still fails the check; how far reads were moved back is the replicas' read lag.
type History struct {
	mu      sync.Mutex
	start   time.Time
	ops     map[string][]porcupine.Operation
	reads   map[string]map[int]uint64 // game session -> index in ops -> the snapshot the read saw at least
	max     map[string]int
	samples []sample

	// Checking during the run (CheckSealed): histories sealed, and the results of checks so far.
	sealed     chan string
	background sync.WaitGroup
	stopping   atomic.Bool // Check has begun: what is left in sealed is checked there, in parallel
	results    map[string]result

	sighting func(gameSession, player string) Sighting // Resolve's
}

// result is the check of a history's first n operations.
type result struct {
	n    int
	v    *Violation
	took time.Duration
}

// sample is etcd's revision as read by a request sent at sent (ns since the start).
type sample struct {
	sent int64
	rev  uint64
}

// NewHistory starts recording.
func NewHistory() *History {
	return &History{start: time.Now(), ops: map[string][]porcupine.Operation{}, reads: map[string]map[int]uint64{}, max: map[string]int{},
		results: map[string]result{}}
}

// CheckSealed checks each history sealed from now on (Seal) in the background, one at a time, while the
// run goes on, so that a long run's check is mostly done when it ends; illegal ones are saved in dir.
func (h *History) CheckSealed(dir string, timeout time.Duration) {
	h.sealed = make(chan string, 1<<16)
	h.background.Go(func() {
		for name := range h.sealed {
			if h.stopping.Load() {
				continue
			}
			h.mu.Lock()
			ops, n := h.operations(name), len(h.ops[name])
			h.mu.Unlock()
			began := time.Now()
			v := h.check(dir, name, ops, timeout)
			h.mu.Lock()
			h.results[name] = result{n: n, v: v, took: time.Since(began)}
			h.mu.Unlock()
		}
	})
}

// Checked is how far CheckSealed is: histories checked, how many of them were not decided in time or
// illegal, and the longest check.
func (h *History) Checked() (n, failed int, longest string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var took time.Duration
	for name, r := range h.results {
		n++
		if r.v != nil {
			failed++
		}
		if r.took > took {
			longest, took = fmt.Sprintf("%s (%d operations, %s)", name, r.n, r.took.Round(time.Millisecond)), r.took
		}
	}
	return n, failed, longest
}

// Seal says a game session's history is complete (no call on it is waiting for an answer): with
// CheckSealed, it is checked now. One that grows afterwards is checked again by Check.
func (h *History) Seal(name string) {
	if h.sealed != nil {
		h.sealed <- name
	}
}

// Revision records etcd's revision rev, read by a request sent at sent. Call it in order of sent.
func (h *History) Revision(sent time.Time, rev uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if n := len(h.samples); n > 0 && h.samples[n-1].rev > rev {
		return // out of order: keep the samples monotonic
	}
	h.samples = append(h.samples, sample{sent: sent.Sub(h.start).Nanoseconds(), rev: rev})
}

// InvokeRead marks a read's start; the returned func records it with its output and rv, the snapshot
// (etcd revision) it was served from at least (0: unknown, checked from the start of the history).
func (h *History) InvokeRead(client int, gameSession string, in Input) func(Output, uint64) {
	call := time.Since(h.start).Nanoseconds()
	return func(out Output, rv uint64) {
		ret := time.Since(h.start).Nanoseconds()
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.reads[gameSession] == nil {
			h.reads[gameSession] = map[int]uint64{}
		}
		h.reads[gameSession][len(h.ops[gameSession])] = rv
		h.ops[gameSession] = append(h.ops[gameSession], porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
	}
}

// since is the send time of the last sample not newer than rv: the cluster was at rv or before then, so
// the snapshot rv was (or was about to be) its newest at that moment. 0 when there is none.
func (h *History) since(rv uint64) int64 {
	i, _ := slices.BinarySearchFunc(h.samples, rv+1, func(s sample, rv uint64) int { return cmp.Compare(s.rev, rv) })
	if i == 0 {
		return 0
	}
	return h.samples[i-1].sent
}

// operations is a game session's history as checked: each read invoked no later than its snapshot was
// the cluster's newest; with Resolve, reservations without an answer narrowed by what the watch saw.
func (h *History) operations(name string) []porcupine.Operation {
	ops := slices.Clone(h.ops[name])
	for i, rv := range h.reads[name] {
		if rv == 0 {
			ops[i].Call = 0
			continue
		}
		ops[i].Call = min(ops[i].Call, h.since(rv))
	}
	if h.sighting == nil {
		return ops
	}
	out := ops[:0]
	for _, op := range ops {
		in := op.Input.(Input)
		if op.Output.(Output).Result == OutUnknown && (in.Op == OpReserve || in.Op == OpGroup) {
			seen, decided := false, time.Time{}
			for _, id := range strings.Split(in.PS, ",") {
				s := h.sighting(name, id)
				seen = seen || s.Seen
				if !s.Decided.IsZero() && (decided.IsZero() || s.Decided.Before(decided)) {
					decided = s.Decided
				}
			}
			if !seen {
				continue // it created nothing: no effect
			}
			if !decided.IsZero() { // its seat, if any, was granted before the watch delivered a decision
				op.Return = max(op.Call+1, decided.Sub(h.start).Nanoseconds())
			}
		}
		out = append(out, op)
	}
	return out
}

// Resolve narrows the reservations without an answer (a 5xx, a lost connection) by what a watch of every
// player session revision saw, so that their histories are decided: one of which no player session was
// ever seen created nothing and is left out; one seen decided took effect, if at all, before the watch
// delivered the decision (its return, instead of any time). Call it once the watch has seen every
// revision. A player session created
// and deleted while the watch was relisting is missed: its reservation is left out, which can only make a
// history fail, never pass.
func (h *History) Resolve(sighting func(gameSession, player string) Sighting) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sighting = sighting
}

// ReadLag is how far reads were moved back (how stale the replicas that served them could be): p50, p99,
// max, and the number of reads.
func (h *History) ReadLag() (p50, p99, max time.Duration, n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var lags []time.Duration
	for name, reads := range h.reads {
		for i, rv := range reads {
			if rv != 0 {
				op := h.ops[name][i]
				lags = append(lags, time.Duration(op.Call-min(op.Call, h.since(rv))))
			}
		}
	}
	return percentiles(lags)
}

// Histories is how many game sessions have a history.
func (h *History) Histories() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.ops)
}

// GameSession declares a game session of maximum max before its operations are recorded.
func (h *History) GameSession(name string, max int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.max[name] = max
}

// Invoke marks an operation's start; the returned func records it with its output when it returns. A
// reservation that returned ok is followed by OpWritten for each of its player sessions.
func (h *History) Invoke(client int, gameSession string, in Input) func(Output) {
	call := time.Since(h.start).Nanoseconds()
	return func(out Output) {
		ret := time.Since(h.start).Nanoseconds()
		if out.Result == OutUnknown {
			ret = 1 << 62 // it may take effect at any time after it was invoked
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		op := porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret}
		h.ops[gameSession] = append(append(h.ops[gameSession], op), written(op)...)
	}
}

// written is what a recorded operation tells of the writes before its return: for a reservation that
// returned ok, OpWritten for each of its player sessions (the call waited until it saw its status).
func written(op porcupine.Operation) []porcupine.Operation {
	in := op.Input.(Input)
	if op.Output.(Output).Result != OutOK || (in.Op != OpReserve && in.Op != OpGroup) {
		return nil
	}
	var out []porcupine.Operation
	for _, id := range strings.Split(in.PS, ",") {
		out = append(out, porcupine.Operation{ClientId: op.ClientId, Input: Input{Op: OpWritten, PS: id}, Call: op.Return + 1, Output: Output{Result: OutOK}, Return: op.Return + 2})
	}
	return out
}

// Count is the number of operations recorded, by kind and outcome ("reserve ok", "accept TIMEDOUT", ...).
func (h *History) Count() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]int{}
	for _, ops := range h.ops {
		for _, op := range ops {
			if op.Input.(Input).Op == OpWritten {
				continue // not a client's
			}
			result := op.Output.(Output).Result
			if in := op.Input.(Input); in.Op == OpList && result != OutRejected {
				result = "ok"
			}
			out[op.Input.(Input).Op+" "+result]++
		}
	}
	return out
}

// dump writes a history as text, by invocation time (for reading an illegal one).
func dump(path string, ops []porcupine.Operation) {
	ops = slices.Clone(ops)
	slices.SortFunc(ops, func(a, b porcupine.Operation) int { return int(a.Call - b.Call) })
	var b strings.Builder
	for _, op := range ops {
		ret := "∞"
		if op.Return < 1<<62 {
			ret = fmt.Sprint(op.Return / 1e6)
		}
		served := ""
		if s := op.Output.(Output).Served; s != "" {
			served = " [" + s + "]"
		}
		fmt.Fprintf(&b, "%6d..%6s c%d %s(%s) -> %s%s\n", op.Call/1e6, ret, op.ClientId, op.Input.(Input).Op, op.Input.(Input).PS, op.Output.(Output).Result, served)
	}
	_ = os.WriteFile(path, []byte(b.String()), 0o644)
}

// Violation is a game session whose history is not linearizable (or could not be decided in time).
type Violation struct {
	GameSession string
	Result      porcupine.CheckResult
	// Visualization is porcupine's HTML of the history (written for an illegal one).
	Visualization string
}

func (v Violation) String() string {
	return fmt.Sprintf("game session %s: %s (%s)", v.GameSession, v.Result, v.Visualization)
}

// Check checks every game session's history against Model, each within timeout, on every CPU (those
// CheckSealed has checked already, unchanged since, are not checked again); an illegal one is saved as
// porcupine's visualisation in dir. The violations come in game session order. progress, when not nil, is
// told after each history how many are checked, of how many, and the longest so far.
func (h *History) Check(dir string, timeout time.Duration, progress func(checked, of int, longest string)) []Violation {
	if h.sealed != nil { // what CheckSealed has not checked yet is checked here
		h.stopping.Store(true)
		close(h.sealed)
		h.background.Wait()
	}
	h.mu.Lock()
	histories := map[string][]porcupine.Operation{}
	var out []Violation
	checked, longest, longestTook := 0, "", time.Duration(0)
	for name := range h.ops {
		// Decided during the run (and unchanged since): kept; an undecided one is checked again, with the
		// whole time and what the watch resolved (which only narrows: an illegal one stays illegal).
		if r, ok := h.results[name]; ok && r.n == len(h.ops[name]) && (r.v == nil || r.v.Result == porcupine.Illegal) {
			checked++
			if r.v != nil {
				out = append(out, *r.v)
			}
			if r.took > longestTook {
				longest, longestTook = fmt.Sprintf("%s (%d operations, %s)", name, r.n, r.took.Round(time.Millisecond)), r.took
			}
			continue
		}
		histories[name] = h.operations(name)
	}
	h.mu.Unlock()
	names := slices.Sorted(maps.Keys(histories))
	of := checked + len(names)
	results := make([]*Violation, len(names))
	var next atomic.Int64
	var wg sync.WaitGroup
	var told sync.Mutex
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < len(names); i = int(next.Add(1)) - 1 {
				began := time.Now()
				results[i] = h.check(dir, names[i], histories[names[i]], timeout)
				if progress != nil {
					told.Lock()
					checked++
					if took := time.Since(began); took > longestTook {
						longest, longestTook = fmt.Sprintf("%s (%d operations, %s)", names[i], len(histories[names[i]]), took.Round(time.Millisecond)), took
					}
					progress(checked, of, longest)
					told.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if progress != nil && len(names) == 0 {
		progress(checked, of, longest)
	}
	for _, v := range results {
		if v != nil {
			out = append(out, *v)
		}
	}
	slices.SortFunc(out, func(a, b Violation) int { return cmp.Compare(a.GameSession, b.GameSession) })
	return out
}

func (h *History) check(dir, name string, ops []porcupine.Operation, timeout time.Duration) *Violation {
	h.mu.Lock()
	model := Model(h.max[name])
	h.mu.Unlock()
	res, info := porcupine.CheckOperationsVerbose(model, ops, timeout)
	if res == porcupine.Ok {
		return nil
	}
	v := &Violation{GameSession: name, Result: res}
	if res != porcupine.Illegal && os.Getenv("SOAK_DUMP") != "" { // not decided in time: keep it, to see why
		dump(filepath.Join(dir, strings.ReplaceAll(name, "/", "_")+".undecided.txt"), ops)
	}
	if res == porcupine.Illegal {
		if os.Getenv("SOAK_DUMP") != "" {
			dump(filepath.Join(dir, strings.ReplaceAll(name, "/", "_")+".txt"), ops)
		}
		v.Visualization = filepath.Join(dir, strings.ReplaceAll(name, "/", "_")+".html")
		if err := porcupine.VisualizePath(model, info, v.Visualization); err != nil {
			v.Visualization = "not written: " + err.Error()
		}
	}
	return v
}
