package soak

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// History records the operations clients made on game sessions: invocation and response times, inputs and
// outputs, per game session. Safe for concurrent use.
type History struct {
	mu    sync.Mutex
	start time.Time
	ops   map[string][]porcupine.Operation
	max   map[string]int
}

// NewHistory starts recording.
func NewHistory() *History {
	return &History{start: time.Now(), ops: map[string][]porcupine.Operation{}, max: map[string]int{}}
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
			out[op.Input.(Input).Op+" "+op.Output.(Output).Result]++
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

// Check checks every game session's history against Model, each within timeout; an illegal one is saved as
// porcupine's visualisation in dir.
func (h *History) Check(dir string, timeout time.Duration) []Violation {
	h.mu.Lock()
	defer h.mu.Unlock()
	names := make([]string, 0, len(h.ops))
	for name := range h.ops {
		names = append(names, name)
	}
	sort.Strings(names)
	var out []Violation
	for _, name := range names {
		model := Model(h.max[name])
		res, info := porcupine.CheckOperationsVerbose(model, slices.Clone(h.ops[name]), timeout)
		if res == porcupine.Ok {
			continue
		}
		v := Violation{GameSession: name, Result: res}
		if res == porcupine.Illegal {
			if os.Getenv("SOAK_DUMP") != "" {
				dump(filepath.Join(dir, strings.ReplaceAll(name, "/", "_")+".txt"), h.ops[name])
			}
			v.Visualization = filepath.Join(dir, strings.ReplaceAll(name, "/", "_")+".html")
			if err := porcupine.VisualizePath(model, info, v.Visualization); err != nil {
				v.Visualization = "not written: " + err.Error()
			}
		}
		out = append(out, v)
	}
	return out
}
