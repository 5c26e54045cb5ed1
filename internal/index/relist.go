package index

import (
	"cmp"
	"iter"
	"slices"

	"github.com/playersessions/operator/internal/relists"
)

// Relists (internal/relists: why). From the start of a list to the moment everything it brings is
// applied, the index holds its snapshot where it was: it applies what arrives, but neither advances its
// resourceVersion nor shows the events to watchers. When the relist is whole, the snapshot becomes the
// newest write it brought and the held events go to the watchers in revision order. Until then the index
// answers from the snapshot before the relist: older, never inconsistent.

// Relists is the index's relists.Observer: a list holds the snapshot; what the index already holds of it
// is not waited for.
func (ix *Index) Relists() relists.Observer {
	return relists.Guarded[Event]{Lock: &ix.mu, Hold: &ix.relist, Live: ix.live, End: func() { ix.endRelist(0) }}
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

// endRelist makes the snapshot the newest write the relist brought (or rv, a newer write applied with
// it), shows the held events to the watchers in revision order, then files the deletions the relist found
// under that snapshot. Called with ix.mu held.
func (ix *Index) endRelist(rv uint64) {
	r := ix.relist
	ix.relist = nil
	before := ix.rv
	ix.rv = max(ix.rv, r.Pending.Snapshot(), rv)
	if ix.rv > before+1 {
		ix.gaps = append(slices.DeleteFunc(ix.gaps, func(g gap) bool { return g.until <= ix.compactedRV }), gap{after: before, until: ix.rv})
	}
	slices.SortStableFunc(r.Held, func(a, b Event) int { return cmp.Compare(a.RV, b.RV) })
	for _, e := range r.Held {
		ix.notify(e)
	}
	for _, e := range r.Deferred {
		ix.applyLocked(Key(e.Old.Namespace, e.Old.Name), ix.rv, nil)
	}
	ix.changed.Notify()
}

// gap is the snapshots a relist skipped, after and until exclusive: the index went from snapshot after
// to snapshot until at once, and learned of what changed between only at its newest version (an object
// created and changed meanwhile shows up at its last state), so it never held them. A read of one
// exactly (a continue token from another replica, a resourceVersion with Exact) is refused as a
// compacted one is, never answered without the object; the soak found such reads.
type gap struct{ after, until uint64 }

// skipped reports whether snapshot rv is one a relist skipped. Called with ix.mu held.
func (ix *Index) skipped(rv uint64) bool {
	for _, g := range ix.gaps {
		if rv > g.after && rv < g.until {
			return true
		}
	}
	return false
}

// Relisting reports whether a relist is being applied (the snapshot is held).
func (ix *Index) Relisting() bool {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.relist != nil
}
