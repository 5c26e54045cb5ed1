package index

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
)

// Relists.
//
// Between relists the informer delivers the writes of player sessions in revision order, so the newest
// revision the index has applied is a snapshot: every write up to it is in the index. A relist (the
// informer's first list, and every list after its watch broke) is different: the informer hands over the
// listed state one object at a time in key order, each at its own revision, so an object at revision 30
// can come before one at revision 20. Had the index taken 30 as its snapshot in between, a list at 30 would
// miss the object at 20, and the same snapshot would read differently a moment later (the soak found this:
// docs/reliability.md).
//
// So the index learns of relists from the informer's lister (NewInformer) and, from the start of a list to
// the moment every change it brings has been applied, holds its snapshot where it was: it applies what
// arrives, but neither advances its resourceVersion nor shows the events to watchers. When the relist is
// whole (every listed object at its listed revision or later, every object the list no longer holds
// deleted), the snapshot becomes the list's resourceVersion and the held events go to the watchers in
// revision order. Until then the index answers from the snapshot before the relist: older, never
// inconsistent.

// relist is a relist in progress.
type relist struct {
	rv      uint64            // the list's resourceVersion; 0 until the list has returned
	pending map[string]uint64 // what the index lacks of the list: key → listed revision, 0 for a deletion
	held    []Event           // the events applied since the relist began, shown to watchers at its end
}

// applied records that key reached revision rv (obj nil: deleted).
func (r *relist) applied(key string, rv uint64, obj *gamev1.PlayerSession) {
	want, ok := r.pending[key]
	if !ok {
		return
	}
	if (want == 0) == (obj == nil) && rv >= want {
		delete(r.pending, key)
	}
}

// done reports whether the relist is applied whole, given that the write at revision rv was just applied:
// either nothing the list brings is missing, or the write is newer than the list, which the informer
// delivers only after all of the list.
func (r *relist) done(rv uint64) bool { return r.rv > 0 && (len(r.pending) == 0 || rv > r.rv) }

// beginRelist holds the snapshot: the informer is listing. A relist that begins while another has not
// ended replaces it (the earlier list failed or was overtaken); the held events stay held.
func (ix *Index) beginRelist() {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.relist == nil {
		ix.relist = &relist{}
	}
	ix.relist.rv, ix.relist.pending = 0, nil
}

// relisted records what the list returned: the revision of every listed player session (by key) and the
// list's resourceVersion. What the index already holds is not waited for.
func (ix *Index) relisted(listed map[string]uint64, rv uint64) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.relist == nil {
		ix.relist = &relist{}
	}
	r := ix.relist
	r.rv, r.pending = max(rv, 1), map[string]uint64{}
	for key, want := range listed {
		if h := ix.objects[key]; h == nil || h.latest() == nil || h.versions[len(h.versions)-1].rv < want {
			r.pending[key] = want
		}
	}
	for key, h := range ix.objects {
		if _, ok := listed[key]; !ok && h.latest() != nil {
			r.pending[key] = 0
		}
	}
	if len(r.pending) == 0 {
		ix.endRelist(0)
	}
}

// endRelist makes the relist's resourceVersion (or rv, a newer write applied with it) the snapshot and
// shows the held events to the watchers in revision order. Called with ix.mu held.
func (ix *Index) endRelist(rv uint64) {
	r := ix.relist
	ix.relist = nil
	ix.rv = max(ix.rv, r.rv, rv)
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
		if r.rv > 0 {
			return r.rv
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

// NewInformer is the manager cache's informer constructor (cache.Options.NewInformer): the informer of
// PlayerSessions lists through a lister that tells ix when a relist begins and what it returned; every
// other informer is client-go's own.
func (ix *Index) NewInformer(lw toolscache.ListerWatcher, obj runtime.Object, resync time.Duration, indexers toolscache.Indexers) toolscache.SharedIndexInformer {
	if _, ok := obj.(*gamev1.PlayerSession); ok {
		lw = &relistingLW{inner: toolscache.ToListerWatcherWithContext(lw), ix: ix}
	}
	return toolscache.NewSharedIndexInformer(lw, obj, resync, indexers)
}

// relistingLW is the lister of the PlayerSession informer: a list (all its pages) tells the index a
// relist begins, then what it returned.
//
// It lists, never watch-lists (a stream of the initial state): it tells client-go it does not support
// watch-list semantics. A list's end and resourceVersion are in its response, which is all the index
// needs; a watch-list would need its stream read for the end bookmark.
type relistingLW struct {
	inner toolscache.ListerWatcherWithContext
	ix    *Index

	mu     sync.Mutex
	listed map[string]uint64 // the pages so far of the list in progress
}

func (l *relistingLW) ListWithContext(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if opts.Continue == "" {
		// A new list (a pager that restarts a list it could not continue starts one too).
		l.ix.beginRelist()
		l.listed = map[string]uint64{}
	}
	list, err := l.inner.ListWithContext(ctx, opts)
	if err != nil {
		return list, err
	}
	lm, err := meta.ListAccessor(list)
	if err != nil {
		return list, err
	}
	if err := meta.EachListItem(list, func(o runtime.Object) error {
		m, err := meta.Accessor(o)
		if err != nil {
			return err
		}
		rv, err := ParseRV(m.GetResourceVersion())
		if err != nil {
			return err
		}
		if l.listed != nil {
			l.listed[Key(m.GetNamespace(), m.GetName())] = rv
		}
		return nil
	}); err != nil {
		return list, err
	}
	if lm.GetContinue() == "" && l.listed != nil {
		rv, err := ParseRV(lm.GetResourceVersion())
		if err != nil {
			return list, err
		}
		l.ix.relisted(l.listed, rv)
		l.listed = nil
	}
	return list, nil
}

func (l *relistingLW) WatchWithContext(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	return l.inner.WatchWithContext(ctx, opts)
}

func (l *relistingLW) List(opts metav1.ListOptions) (runtime.Object, error) {
	return l.ListWithContext(context.Background(), opts)
}

func (l *relistingLW) Watch(opts metav1.ListOptions) (watch.Interface, error) {
	return l.WatchWithContext(context.Background(), opts)
}

// IsWatchListSemanticsUnSupported tells client-go's reflector to list, not watch-list.
func (l *relistingLW) IsWatchListSemanticsUnSupported() bool { return true }
