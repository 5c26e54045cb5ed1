package index

import (
	"time"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
)

// Source is the informer's store the index is fed from (client-go's cache.Store is one).
type Source interface {
	List() []any
	LastStoreSyncResourceVersion() string
}

// SetSource gives the index the informer's store it is fed from, to find when it has caught up with it
// (WaitFor). Call it before the index is used.
func (ix *Index) SetSource(s Source) { ix.source = s }

// caughtUpPoll is how often a WaitFor looks whether the index has caught up with its informer's store.
const caughtUpPoll = 100 * time.Millisecond

// caughtUp reports whether the index holds snapshot rv because it holds exactly what the informer's store
// holds (every player session at the same revision, no other) and the store is at rv or later: then the
// index holds every write up to the store's revision, though its newest write may be older. The store's
// revision moves with every event it applies, a list's resourceVersion and the watch's bookmarks. It costs
// a walk of the store and the index, so only a request for a snapshot newer than the index's newest write
// pays it. With client-go's AtomicFIFO off, a store has no revision and this reports false.
func (ix *Index) caughtUp(rv uint64) bool {
	s := ix.source
	if s == nil {
		return false
	}
	before := s.LastStoreSyncResourceVersion()
	objs := s.List()
	at, err := ParseRV(before)
	if err != nil || at < rv || s.LastStoreSyncResourceVersion() != before {
		return false
	}
	if !ix.holdsAll(objs) {
		return false
	}
	// The index held the store's state at that moment; what it holds later only grows from it.
	ix.mu.Lock()
	ix.confirmed = max(ix.confirmed, at)
	ix.mu.Unlock()
	return true
}

// holdsAll reports whether the index, outside a relist, holds exactly objs: every one at its revision and
// no other live player session. Under a read lock: lists and watches go on during the walk.
func (ix *Index) holdsAll(objs []any) bool {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.relist != nil {
		return false
	}
	live := 0
	for range ix.live() {
		live++
	}
	if live != len(objs) {
		return false
	}
	for _, o := range objs {
		ps, ok := o.(*gamev1.PlayerSession)
		if !ok {
			return false
		}
		h := ix.objects[Key(ps.Namespace, ps.Name)]
		if h == nil || h.latest() == nil || h.latest().ResourceVersion != ps.ResourceVersion {
			return false
		}
	}
	return true
}
