package search

import (
	"cmp"
	"iter"
	"slices"
	"strconv"
	"sync"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/watch"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/internal/relists"
)

// The query API's side of the index (gamesessions.query.playersessions.dev): lists of any status, by
// namespace and fleet, paged in creation order, and the changes since a resourceVersion for watches.

// ListQuery selects game sessions for the query API.
type ListQuery struct {
	// Namespace ("" all), FleetID ("" all) and Status ("" all) choose the parts of the index read.
	Namespace, FleetID string
	Status             gamev1.GameSessionStatusValue
	// Name, when set, is the one object name selected.
	Name string
	// Filter (nil: all) and Labels (nil: all) select within them.
	Filter Expr
	Labels labels.Selector
	// Limit is the page's size (0: all); After where the previous page ended.
	Limit int
	After *Position
}

// Matches reports whether gs is selected by q.
func (q ListQuery) Matches(gs *gamev1.GameSession) bool {
	if gs == nil || (q.Namespace != "" && gs.Namespace != q.Namespace) || (q.FleetID != "" && gs.Spec.FleetID != q.FleetID) ||
		(q.Status != "" && gs.Status.Status != q.Status) || (q.Name != "" && gs.Name != q.Name) {
		return false
	}
	if q.Labels != nil && !q.Labels.Empty() && !q.Labels.Matches(labels.Set(gs.Labels)) {
		return false
	}
	s := SessionOf(gs)
	return q.Filter == nil || q.Filter.Match(&s)
}

// List is a page of the game sessions q selects, in creation order (then id, then UID), with where it
// ended when more follow, and the index's resourceVersion. Each part of the index that q reads gives its
// own page (from its narrowest range, as a search does), and the pages are merged.
func (ix *Index) List(q ListQuery) ([]*gamev1.GameSession, *Position, uint64) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	keep := func(e *entry) bool {
		return (q.Name == "" || e.obj.Name == q.Name) && (q.Labels == nil || q.Labels.Empty() || q.Labels.Matches(labels.Set(e.obj.Labels)))
	}
	limit := q.Limit
	if limit <= 0 {
		limit = len(ix.byUID) + 1
	}
	var merged []*entry
	more := false
	for key, f := range ix.fleets {
		if (q.Namespace != "" && key.namespace != q.Namespace) || (q.FleetID != "" && key.fleet != q.FleetID) || (q.Status != "" && key.status != q.Status) {
			continue
		}
		r, page := f.search(Query{Filter: q.Filter, Limit: limit, After: q.After}, keep)
		merged = append(merged, page...)
		more = more || r.Next != nil
	}
	o := orderOf(nil)
	slices.SortFunc(merged, o.compare)
	var next *Position
	if len(merged) > limit {
		merged, more = merged[:limit], true
	}
	if more && len(merged) > 0 {
		p := o.position(merged[len(merged)-1])
		next = &p
	}
	out := make([]*gamev1.GameSession, len(merged))
	for i, e := range merged {
		out[i] = e.obj
	}
	return out, next, ix.rv
}

// Event is a change of a game session: Old is nil for an addition, New the deleted object for a deletion.
type Event struct {
	Type     watch.EventType
	Old, New *gamev1.GameSession
	RV       uint64
}

// maxEvents is how many changes the index keeps for watches that start from a resourceVersion.
const maxEvents = 4096

// watchBuffer is how many events a watcher may have unread; a watcher further behind is ended (its client
// lists and watches again).
const watchBuffer = 1024

// changes are the index's recent events and its watchers. The index's lock guards them.
type changes struct {
	rv       uint64 // the newest resourceVersion filed
	events   []Event
	trimmed  uint64 // the resourceVersion of the newest event no longer kept (0: none dropped)
	watchers map[*Watcher]struct{}
	// relist, while the informer relists (internal/relists), holds rv and the events until the relist is
	// applied whole: a relist delivers objects in key order, not revision order, and an event filed under
	// a resourceVersion a list has already returned would be missed by a watch from that list.
	relist *relists.Hold[Event] // held events' RV: the object's own revision, until filed
}

// record files a change (under the index's lock) and hands it to the watchers; mid-relist it holds it.
func (ix *Index) record(t watch.EventType, old, cur *gamev1.GameSession) {
	rv, _ := strconv.ParseUint(cur.ResourceVersion, 10, 64)
	e := Event{Type: t, Old: old, New: cur, RV: rv}
	r := ix.relist
	if r == nil {
		ix.file(e)
		return
	}
	r.Held = append(r.Held, e)
	if r.Applied(relists.Key(cur.Namespace, cur.Name), rv, t == watch.Deleted) {
		ix.endRelist()
	}
}

// file files e, whose RV is its object's revision, under the newest resourceVersion (a deletion a relist
// discovers carries an older revision than the index's) and hands it to the watchers.
func (ix *Index) file(e Event) {
	ix.rv = max(ix.rv, e.RV)
	e.RV = ix.rv
	if len(ix.events) == maxEvents {
		ix.trimmed = ix.events[maxEvents/4-1].RV
		ix.events = slices.Delete(ix.events, 0, maxEvents/4)
	}
	ix.events = append(ix.events, e)
	for w := range ix.watchers {
		select {
		case w.in <- e:
		default: // too far behind: ended
			delete(ix.watchers, w)
			w.overflow()
		}
	}
}

// Relists is the index's relists.Observer: a list holds the resourceVersion and the events.
func (ix *Index) Relists() relists.Observer {
	return relists.Guarded[Event]{Lock: &ix.mu, Hold: &ix.relist, Live: ix.live, End: ix.endRelist}
}

// live yields the key and revision of every game session the index holds. Called with ix.mu held.
func (ix *Index) live() iter.Seq2[string, uint64] {
	return func(yield func(string, uint64) bool) {
		for name, e := range ix.byName {
			rv, _ := strconv.ParseUint(e.obj.ResourceVersion, 10, 64)
			if !yield(relists.Key(name.Namespace, name.Name), rv) {
				return
			}
		}
	}
}

// endRelist files the held changes in revision order, then takes the relist's snapshot (the newest write
// it brought).
func (ix *Index) endRelist() {
	r := ix.relist
	ix.relist = nil
	slices.SortStableFunc(r.Held, func(a, b Event) int { return cmp.Compare(a.RV, b.RV) })
	for _, e := range r.Held {
		ix.file(e)
	}
	ix.rv = max(ix.rv, r.Pending.Snapshot())
}

// Relisting reports whether a relist is being applied (the resourceVersion is held).
func (ix *Index) Relisting() bool {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.relist != nil
}

// Watcher receives the index's events after a resourceVersion.
type Watcher struct {
	in   chan Event
	once sync.Once
	ix   *Index
}

// Events are the watcher's events, in order; the channel closes when the watcher falls too far behind.
func (w *Watcher) Events() <-chan Event { return w.in }

func (w *Watcher) overflow() { w.once.Do(func() { close(w.in) }) }

// Stop unregisters the watcher.
func (w *Watcher) Stop() {
	w.ix.mu.Lock()
	delete(w.ix.watchers, w)
	w.ix.mu.Unlock()
}

// Watch registers a watcher of the changes after rv (0: from now), with the changes the index kept after
// rv first; ok is false when the index no longer keeps them all (the caller answers 410 Expired). It also
// returns the index's resourceVersion when it registered.
func (ix *Index) Watch(rv uint64) (w *Watcher, replay []Event, now uint64, ok bool) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if rv > 0 && rv < ix.rv {
		if rv < ix.trimmed {
			return nil, nil, ix.rv, false
		}
		i, _ := slices.BinarySearchFunc(ix.events, rv, func(e Event, after uint64) int {
			if e.RV <= after {
				return -1
			}
			return 1
		})
		replay = slices.Clone(ix.events[i:])
	}
	w = &Watcher{in: make(chan Event, watchBuffer), ix: ix}
	if ix.watchers == nil {
		ix.watchers = map[*Watcher]struct{}{}
	}
	ix.watchers[w] = struct{}{}
	return w, replay, ix.rv, true
}
