package index

import (
	"cmp"
	"iter"
	"slices"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/internal/relists"
)

// Relists (internal/relists: why). From the start of a list to the moment everything it brings is
// applied, the index holds its snapshot where it was: it applies what arrives, but neither advances its
// resourceVersion nor shows the events to watchers. When the relist is whole, the snapshot becomes the
// list's resourceVersion and the held events go to the watchers in revision order. Until then the index
// answers from the snapshot before the relist: older, never inconsistent.

// relist is a relist in progress.
type relist struct {
	pending *relists.Pending // nil until the list has returned
	held    []Event          // the events applied since the relist began, shown to watchers at its end
}

// applied records that key reached revision rv (obj nil: deleted) and reports whether the relist is
// applied whole.
func (r *relist) applied(key string, rv uint64, obj *gamev1.PlayerSession) bool {
	if r.pending == nil {
		return false
	}
	r.pending.Applied(key, rv, obj == nil)
	return r.pending.Done(rv)
}

// BeginRelist holds the snapshot: the informer is listing (relists.Observer).
func (ix *Index) BeginRelist() {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.relist == nil {
		ix.relist = &relist{}
	}
	ix.relist.pending = nil
}

// Relisted records what the list returned (relists.Observer); what the index already holds is not
// waited for.
func (ix *Index) Relisted(listed map[string]uint64, rv uint64) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.relist == nil {
		ix.relist = &relist{}
	}
	ix.relist.pending = relists.NewPending(listed, rv, ix.live())
	if ix.relist.pending.Done(0) {
		ix.endRelist(0)
	}
}

// live yields the key and newest revision of every player session the index holds, deleted ones
// excluded. Called with ix.mu held.
func (ix *Index) live() iter.Seq2[string, uint64] {
	return func(yield func(string, uint64) bool) {
		for key, h := range ix.objects {
			if last := h.versions[len(h.versions)-1]; last.obj != nil && !yield(key, last.rv) {
				return
			}
		}
	}
}

// endRelist makes the relist's resourceVersion (or rv, a newer write applied with it) the snapshot and
// shows the held events to the watchers in revision order. Called with ix.mu held.
func (ix *Index) endRelist(rv uint64) {
	r := ix.relist
	ix.relist = nil
	ix.rv = max(ix.rv, r.pending.RV(), rv)
	slices.SortStableFunc(r.held, func(a, b Event) int { return cmp.Compare(a.RV, b.RV) })
	for _, e := range r.held {
		ix.notify(e)
	}
	ix.changed.Notify()
}

// unknownDeletionRV is the revision to record a deletion at whose revision the informer does not know (a
// relist found the object gone; its last known version is at last): the relist's resourceVersion, by
// which it had happened; outside a relist the newest snapshot. Never a snapshot the index has handed out
// already. Called with ix.mu held.
func (ix *Index) unknownDeletionRV(last uint64) uint64 {
	if r := ix.relist; r != nil {
		if r.pending != nil {
			return r.pending.RV()
		}
		return max(ix.rv, last) + 1
	}
	return max(ix.rv, last)
}

// Relisting reports whether a relist is being applied (the snapshot is held).
func (ix *Index) Relisting() bool {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.relist != nil
}
