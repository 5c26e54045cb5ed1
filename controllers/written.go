package controllers

import (
	"strconv"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// cacheLagRetry is how soon a reconcile that found the cache behind its own last write looks again.
const cacheLagRetry = 5 * time.Millisecond

// maxCacheLag bounds how long a reconcile waits for the cache to show its own last write before it plans
// from what the cache holds anyway (and lets optimistic concurrency decide).
const maxCacheLag = time.Second

// writtenVersions remembers, per object, the resourceVersion of the reconciler's own last write, so that
// the next reconcile does not plan from a cache that has not seen it yet: such a plan can only end in a
// conflict, and a conflict waits ConflictRetry. A game session is reconciled again right after its own
// ledger write whenever player sessions keep arriving, so without this the cache's lag (milliseconds)
// would turn into a second of waiting under load.
type writtenVersions struct {
	mu sync.Mutex
	m  map[types.NamespacedName]written
}

type written struct {
	rv uint64
	at time.Time
}

// wrote records that the reconciler wrote key at resourceVersion rv.
func (w *writtenVersions) wrote(key types.NamespacedName, rv string, now time.Time) {
	v, err := strconv.ParseUint(rv, 10, 64)
	if err != nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil {
		w.m = map[types.NamespacedName]written{}
	}
	w.m[key] = written{rv: v, at: now}
}

// behind reports whether the cached resourceVersion rv of key is older than the reconciler's own last
// write (for at most maxCacheLag); it forgets the write once the cache has caught up.
func (w *writtenVersions) behind(key types.NamespacedName, rv string, now time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	last, ok := w.m[key]
	if !ok {
		return false
	}
	v, err := strconv.ParseUint(rv, 10, 64)
	if err != nil || v >= last.rv || now.Sub(last.at) > maxCacheLag {
		delete(w.m, key)
		return false
	}
	return true
}

// forget drops key (the object is gone).
func (w *writtenVersions) forget(key types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.m, key)
}
