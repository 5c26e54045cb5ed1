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
}

// sample is etcd's revision as read by a request sent at sent (ns since the start).
type sample struct {
	sent int64
	rev  uint64
}

// NewHistory starts recording.
func NewHistory() *History {
	return &History{start: time.Now(), ops: map[string][]porcupine.Operation{}, reads: map[string]map[int]uint64{}, max: map[string]int{}}
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
// the cluster's newest.
func (h *History) operations(name string) []porcupine.Operation {
	ops := slices.Clone(h.ops[name])
	for i, rv := range h.reads[name] {
		if rv == 0 {
			ops[i].Call = 0
			continue
		}
		ops[i].Call = min(ops[i].Call, h.since(rv))
	}
	return ops
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

// GameSession declares a game session of maximum max before its operations are recorded.
func (h *History) GameSession(name string, max int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.max[name] = max
}

// Invoke marks an operation's start; the returned func records it with its output when it returns.
func (h *History) Invoke(client int, gameSession string, in Input) func(Output) {
	call := time.Since(h.start).Nanoseconds()
	return func(out Output) {
		ret := time.Since(h.start).Nanoseconds()
		if out.Result == OutUnknown {
			ret = 1 << 62 // it may take effect at any time after it was invoked
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		h.ops[gameSession] = append(h.ops[gameSession], porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
	}
}

// Count is the number of operations recorded, by kind and outcome ("reserve ok", "accept TIMEDOUT", ...).
func (h *History) Count() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]int{}
	for _, ops := range h.ops {
		for _, op := range ops {
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
		fmt.Fprintf(&b, "%6d..%6s c%d %s(%s) -> %s\n", op.Call/1e6, ret, op.ClientId, op.Input.(Input).Op, op.Input.(Input).PS, op.Output.(Output).Result)
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

// Check checks every game session's history against Model, each within timeout, on every CPU; an illegal
// one is saved as porcupine's visualisation in dir. The violations come in game session order. progress,
// when not nil, is told after each history how many are checked, of how many, and the longest so far.
func (h *History) Check(dir string, timeout time.Duration, progress func(checked, of int, longest string)) []Violation {
	h.mu.Lock()
	histories := map[string][]porcupine.Operation{}
	for name := range h.ops {
		histories[name] = h.operations(name)
	}
	h.mu.Unlock()
	names := slices.Sorted(maps.Keys(histories))
	results := make([]*Violation, len(names))
	var next atomic.Int64
	var wg sync.WaitGroup
	var told sync.Mutex
	checked, longest, longestTook := 0, "", time.Duration(0)
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
					progress(checked, len(names), longest)
					told.Unlock()
				}
			}
		})
	}
	wg.Wait()
	var out []Violation
	for _, v := range results {
		if v != nil {
			out = append(out, *v)
		}
	}
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
