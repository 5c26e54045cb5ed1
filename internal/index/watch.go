package index

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
)

// watcher receives the index's events for one watch request and turns them into watch events of its
// query: an object entering the selection is ADDED, one leaving it DELETED.
type watcher struct {
	q    Query
	in   chan Event
	out  chan watch.Event
	done chan struct{}
	stop sync.Once
	ix   *Index
	// initial, for a watch that starts with the state (ADDED events), is the snapshot it reads, a page at
	// a time as the client takes them: a watch never holds the whole of a large namespace.
	initial *snapshotStart
	// replay, for a watch from an older resourceVersion, is the part of the event ring it replays first, a
	// page at a time too.
	replay *ringRange
}

// ringRange is the events of the ring after `after` up to and including `until`.
type ringRange struct{ after, until uint64 }

// snapshotStart is where a watch's initial events come from.
type snapshotStart struct {
	rv       uint64
	bookmark bool // end them with a BOOKMARK annotated k8s.io/initial-events-end
}

// initialPage is how many initial events a watch reads from its snapshot at once.
const initialPage = 256

// WatchOptions are the options of a watch, as kube-apiserver takes them.
type WatchOptions struct {
	// ResourceVersion is where the watch starts: "" or "0" the newest snapshot the index holds, N snapshot
	// N (waited for if the index is behind it).
	ResourceVersion string
	// SendInitialEvents: the state at the start as ADDED events first (a watch-list). Unset means set for a
	// watch from "" or "0" (the legacy behaviour), unset otherwise.
	SendInitialEvents *bool
	// AllowBookmarks: after the initial events of a watch-list, a BOOKMARK at the snapshot's
	// resourceVersion annotated k8s.io/initial-events-end, which a watch-list client waits for.
	AllowBookmarks bool
}

// Watch starts a watch of q. convert builds the API object of an event (and of a bookmark, an empty
// PlayerSession with only a resourceVersion and annotations).
func (ix *Index) Watch(ctx context.Context, q Query, opts WatchOptions, convert func(watch.EventType, *gamev1.PlayerSession) watch.Event) (watch.Interface, error) {
	rv, err := ParseRV(opts.ResourceVersion)
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	initialEvents := rv == 0
	if opts.SendInitialEvents != nil {
		initialEvents = *opts.SendInitialEvents
	}
	if rv > 0 {
		if err := ix.WaitFor(ctx, rv); err != nil {
			return nil, err
		}
	}
	w := &watcher{q: q, in: make(chan Event, watchBuffer), out: make(chan watch.Event, 16), done: make(chan struct{}), ix: ix}
	// A read lock: no change applies while the watch takes its start and registers, so it misses none and
	// sees none twice; lists and other watches go on meanwhile.
	ix.mu.RLock()
	switch {
	case initialEvents:
		// The newest snapshot, which is not older than rv: WaitFor saw to that. run reads it page by page.
		w.initial = &snapshotStart{rv: ix.rv, bookmark: opts.SendInitialEvents != nil && opts.AllowBookmarks}
	case rv < ix.rv:
		oldest := ix.rv + 1
		if len(ix.events) > 0 {
			oldest = ix.events[0].RV
		}
		if rv+1 < oldest {
			ix.mu.RUnlock()
			return nil, errTooOld(rv, oldest)
		}
		w.replay = &ringRange{after: rv, until: ix.rv} // run reads the query's events of it, page by page
	}
	ix.watchMu.Lock()
	ix.watchers[w] = struct{}{}
	ix.watchMu.Unlock()
	ix.mu.RUnlock()
	go w.run(convert)
	return w, nil
}

// expired ends the watch with 410 Expired: what it was reading is no longer kept.
func (w *watcher) expired(err error) {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		expired := status.Status()
		select {
		case w.out <- watch.Event{Type: watch.Error, Object: &expired}:
		case <-w.done:
		}
	}
}

// replayEvents sends the query's events of the ring range, a page at a time (the index's lock is held only
// while a page is read). Events the ring dropped before the client took them (it read slower than the ring
// turns) end the watch with 410 Expired.
func (w *watcher) replayEvents(send func(Event) bool) bool {
	after := w.replay.after
	for after < w.replay.until {
		w.ix.mu.RLock()
		events := w.ix.events
		if after < w.ix.droppedRV { // the ring dropped events this watch had yet to send
			w.ix.mu.RUnlock()
			w.expired(errTooOld(after, w.ix.droppedRV+1))
			return false
		}
		i := sort.Search(len(events), func(i int) bool { return events[i].RV > after })
		var page []Event
		for ; i < len(events) && events[i].RV <= w.replay.until && len(page) < initialPage; i++ {
			if w.concerns(events[i]) { // only the events of the query, not the whole window
				page = append(page, events[i])
			}
			after = events[i].RV
		}
		if i == len(events) || events[i].RV > w.replay.until {
			after = w.replay.until
		}
		w.ix.mu.RUnlock()
		for _, e := range page {
			if !send(e) {
				return false
			}
		}
	}
	return true
}

// initialEvents sends the watch's snapshot as ADDED events, a page at a time (the index's lock is held only
// while a page is read), then its bookmark. A snapshot that the index stops keeping before the client has
// taken it all (the client read slower than the snapshot window) ends the watch with 410 Expired.
func (w *watcher) initialEvents(send func(Event) bool) bool {
	after := ""
	for {
		w.ix.mu.RLock()
		if w.initial.rv < w.ix.compactedRV {
			err := errTooOld(w.initial.rv, w.ix.compactedRV)
			w.ix.mu.RUnlock()
			w.expired(err)
			return false
		}
		items, more := w.ix.collect(w.q, w.initial.rv, after, initialPage)
		w.ix.mu.RUnlock()
		for _, ps := range items {
			if !send(Event{Type: watch.Added, New: ps}) {
				return false
			}
		}
		if !more {
			break
		}
		after = Key(items[len(items)-1].Namespace, items[len(items)-1].Name)
	}
	return !w.initial.bookmark || send(Event{RV: w.initial.rv, Type: watch.Bookmark})
}

func (w *watcher) run(convert func(watch.EventType, *gamev1.PlayerSession) watch.Event) {
	defer close(w.out)
	defer w.Stop()
	send := func(e Event) bool {
		if e.Type == watch.Bookmark {
			mark := &gamev1.PlayerSession{ObjectMeta: metav1.ObjectMeta{
				ResourceVersion: strconv.FormatUint(e.RV, 10),
				Annotations:     map[string]string{metav1.InitialEventsAnnotationKey: "true"},
			}}
			select {
			case w.out <- convert(watch.Bookmark, mark):
				return true
			case <-w.done:
				return false
			}
		}
		var typ watch.EventType
		var obj *gamev1.PlayerSession
		was, is := w.q.matches(e.Old), w.q.matches(e.New)
		switch {
		case is && was:
			typ, obj = watch.Modified, e.New
		case is:
			typ, obj = watch.Added, e.New
		case was && e.New == nil:
			typ, obj = watch.Deleted, withRV(e.Old, e.RV)
		case was:
			typ, obj = watch.Deleted, e.New
		default:
			return true
		}
		select {
		case w.out <- convert(typ, obj):
			return true
		case <-w.done:
			return false
		}
	}
	if w.initial != nil && !w.initialEvents(send) {
		return
	}
	if w.replay != nil && !w.replayEvents(send) {
		return
	}
	for {
		select {
		case e, ok := <-w.in:
			if !ok || !send(e) {
				return
			}
		case <-w.done:
			return
		}
	}
}

func withRV(ps *gamev1.PlayerSession, rv uint64) *gamev1.PlayerSession {
	c := *ps
	c.ResourceVersion = strconv.FormatUint(rv, 10)
	return &c
}

// ResultChan implements watch.Interface.
func (w *watcher) ResultChan() <-chan watch.Event { return w.out }

// Stop implements watch.Interface.
func (w *watcher) Stop() {
	w.stop.Do(func() {
		close(w.done)
		w.ix.watchMu.Lock()
		delete(w.ix.watchers, w)
		w.ix.watchMu.Unlock()
	})
}

// watchBuffer is how many events of its query a watch holds for its client: a watch's memory is bounded
// by it (about 40 bytes an event), and a client that falls this far behind is closed.
const watchBuffer = 256

// concerns reports whether e is an event of the watcher's query: its object matched before or after.
func (w *watcher) concerns(e Event) bool { return w.q.matches(e.Old) || w.q.matches(e.New) }

// notify hands an event to the event window and to the watchers it concerns; called with ix.mu held. A
// watcher too slow to keep up is closed (the client re-watches), never waited for.
func (ix *Index) notify(e Event) {
	ix.events = append(ix.events, e)
	if len(ix.events) > ix.maxEvents {
		keep := len(ix.events) - ix.maxEvents/2
		ix.droppedRV = ix.events[keep-1].RV
		ix.events = append(ix.events[:0:0], ix.events[keep:]...)
	}
	ix.watchMu.Lock()
	defer ix.watchMu.Unlock()
	for w := range ix.watchers {
		if !w.concerns(e) {
			continue
		}
		select {
		case w.in <- e:
		default:
			delete(ix.watchers, w)
			close(w.in)
		}
	}
}
