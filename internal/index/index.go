// Package index is the in-memory index of player sessions that the query API (internal/query) and the
// GameLift endpoint (internal/gamelift) answer from: fed by the manager's informer cache, with bucket
// indexes, consistent paged snapshots, signed continue tokens, watches, and the merge with the history
// store. A query costs what it returns, not what the cluster holds.
package index

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/google/btree"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/utils/clock"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/internal/indexes"
	"github.com/playersessions/operator/internal/relists"
)

// Indexed fields, by their canonical field-selector names.
const (
	FieldName            = "metadata.name"
	FieldNamespace       = "metadata.namespace"
	FieldPlayerSessionID = "playerSessionId"
	FieldGameSessionID   = "gameSessionId"
	FieldGameSessionName = "gameSessionName"
	FieldPlayerID        = "playerId"
	FieldStatus          = "status"
)

// indexedFields are the fields with a bucket index, most selective first: a query is driven by the first
// one it constrains.
var indexedFields = []string{FieldPlayerSessionID, FieldGameSessionID, FieldPlayerID, FieldGameSessionName, FieldStatus, FieldNamespace}

// fieldValue returns the value of an indexed field of ps.
func fieldValue(ps *gamev1.PlayerSession, field string) string {
	switch field {
	case FieldName:
		return ps.Name
	case FieldNamespace:
		return ps.Namespace
	case FieldPlayerSessionID:
		return ps.Status.PlayerSessionID
	case FieldGameSessionID:
		return ps.Status.GameSessionID
	case FieldGameSessionName:
		return ps.Spec.GameSessionName
	case FieldPlayerID:
		return ps.Spec.PlayerID
	case FieldStatus:
		return indexes.StatusOf(ps)
	}
	return ""
}

// version is one state of a player session; obj is nil once deleted.
type version struct {
	rv  uint64
	obj *gamev1.PlayerSession
}

// chain holds the versions of one player session that a live snapshot may still need, oldest first.
type chain struct {
	versions []version
}

// at returns the state at snapshot rv (nil: absent then).
func (h *chain) at(rv uint64) *gamev1.PlayerSession {
	for i := len(h.versions) - 1; i >= 0; i-- {
		if h.versions[i].rv <= rv {
			return h.versions[i].obj
		}
	}
	return nil
}

func (h *chain) latest() *gamev1.PlayerSession { return h.versions[len(h.versions)-1].obj }

// superseded is a version that a newer one replaced, kept until the snapshot window has passed.
type superseded struct {
	key string
	rv  uint64 // the replacing version's resourceVersion: snapshots from rv on no longer need it
	at  time.Time
}

// Event is a change of one player session, as watchers see it.
type Event struct {
	RV       uint64
	Type     watch.EventType
	Old, New *gamev1.PlayerSession
}

// Index holds every player session the informer has seen, with bucket indexes on the fields of
// indexedFields (each a B-tree of keys "namespace/name", so pages come in a stable order), a window of
// superseded versions so a paged list reads one consistent snapshot, and a window of recent events so a
// watch can start from a list's resourceVersion.
//
// Every resourceVersion the index hands out is the resourceVersion (etcd revision) of a write of a player
// session, never a number of its own: snapshot N is the state after every write up to revision N, so it
// means the same on every replica that has seen those writes. A request for a snapshot newer than the
// index waits up to the freshness timeout for the informer to deliver it, then fails as kube-apiserver
// does ("Too large resource version", 504), never answering from an older snapshot.
type Index struct {
	clock     clock.PassiveClock
	window    time.Duration
	freshness time.Duration

	mu          sync.RWMutex
	rv          uint64 // the newest resourceVersion applied
	changed     Signal // every change, for WaitFor and the GameLift endpoint's waits
	compactedRV uint64 // snapshots older than this are no longer consistent
	gaps        []gap  // snapshots a relist skipped: this replica never held them (relist.go)
	objects     map[string]*chain
	buckets     map[string]map[string]*bucket
	all         *bucket
	pending     []superseded // FIFO by time
	events      []Event      // ring of recent events, oldest first
	droppedRV   uint64       // the newest event the ring has dropped
	maxEvents   int
	watchMu     sync.Mutex // the watchers: registered under a read lock of mu, notified under its write lock
	watchers    map[*watcher]struct{}
	// relist, while the informer relists (relist.go), holds the snapshot at rv until the relist is applied
	// whole: a relist delivers objects in key order, not revision order.
	relist *relists.Hold[Event]
	// source is the informer's store the index is fed from; confirmed the newest revision of it the index
	// was found to hold whole (progress.go).
	source    Source
	confirmed uint64
}

// NewIndex returns an empty index that keeps superseded versions and events for window.
func NewIndex(clk clock.PassiveClock, window time.Duration) *Index {
	ix := &Index{
		clock: clk, window: window, freshness: DefaultFreshnessTimeout, maxEvents: 100000,
		objects:  map[string]*chain{},
		buckets:  map[string]map[string]*bucket{},
		all:      &bucket{tree: newTree()},
		watchers: map[*watcher]struct{}{},
	}
	for _, f := range indexedFields {
		ix.buckets[f] = map[string]*bucket{}
	}
	return ix
}

// DefaultFreshnessTimeout is how long a request for a snapshot newer than the index waits for it: the
// time kube-apiserver's watch cache waits in the same case.
const DefaultFreshnessTimeout = 3 * time.Second

// SetFreshnessTimeout sets how long a request for a snapshot newer than the index waits for it (tests
// shorten it). Call it before the index is used.
func (ix *Index) SetFreshnessTimeout(d time.Duration) { ix.freshness = d }

// RV is the newest resourceVersion the index holds.
func (ix *Index) RV() uint64 {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.rv
}

// WaitFor waits until the index holds snapshot rv (every write up to revision rv), for at most the
// freshness timeout. It returns kube-apiserver's "Too large resource version" error (a 504 Timeout with
// cause ResourceVersionTooLarge, which client-go's reflector recognises) if the index is still behind.
//
// The index holds snapshot rv once its newest write is at rv or later, or once it holds exactly what the
// informer's store holds and the store is at rv or later (caughtUp): the writes after the index's newest
// may be of other resources, or deletions a relist found without their revision, which no write of a
// player session will ever move the index past.
func (ix *Index) WaitFor(ctx context.Context, rv uint64) error {
	if ix.holds(rv) {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, ix.freshness)
	defer cancel()
	tick := time.NewTicker(caughtUpPoll)
	defer tick.Stop()
	for {
		changed := ix.changed.Next()
		if ix.holds(rv) || ix.caughtUp(rv) {
			return nil
		}
		select {
		case <-changed:
		case <-tick.C:
		case <-ctx.Done():
			return storage.NewTooLargeResourceVersionError(rv, ix.RV(), 1)
		}
	}
}

// holds reports whether the index holds snapshot rv.
func (ix *Index) holds(rv uint64) bool {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return max(ix.rv, ix.confirmed) >= rv
}

// Changes returns the signal of the index's changes: its channel closes at the next one.
func (ix *Index) Changes() *Signal { return &ix.changed }

func newTree() *btree.BTreeG[string] { return btree.NewG(32, func(a, b string) bool { return a < b }) }

// Key is the index key of a player session: namespace/name, which is also the list order.
func Key(namespace, name string) string { return namespace + "/" + name }

// ParseRV parses a resourceVersion; the index needs them ordered, which etcd revisions are.
func ParseRV(s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	rv, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("resourceVersion %q is not a number", s)
	}
	return rv, nil
}

// Upsert records ps (an add or an update). ps must not be mutated afterwards; the informer's objects are not.
func (ix *Index) Upsert(ps *gamev1.PlayerSession) {
	rv, err := ParseRV(ps.ResourceVersion)
	if err != nil {
		return
	}
	ix.apply(Key(ps.Namespace, ps.Name), rv, ps)
}

// Delete records the deletion of ps at its (final) resourceVersion.
func (ix *Index) Delete(ps *gamev1.PlayerSession) {
	rv, _ := ParseRV(ps.ResourceVersion)
	ix.apply(Key(ps.Namespace, ps.Name), rv, nil)
}

func (ix *Index) apply(key string, rv uint64, obj *gamev1.PlayerSession) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.applyLocked(key, rv, obj)
}

func (ix *Index) applyLocked(key string, rv uint64, obj *gamev1.PlayerSession) {
	h := ix.objects[key]
	var old *gamev1.PlayerSession
	if h != nil {
		last := h.versions[len(h.versions)-1]
		old = last.obj
		switch {
		case obj != nil && old != nil && old.ResourceVersion == obj.ResourceVersion:
			return // a resync or relist of what we have
		case obj == nil && old == nil:
			return // deleted already
		case obj == nil && rv <= last.rv:
			// A deletion whose revision is unknown: a relist found the object gone and hands over its last
			// known state. Mid-relist it is filed when the relist ends, under its snapshot; otherwise in the
			// newest snapshot. Never under a revision of this replica's own, which another would not share.
			if r := ix.relist; r != nil {
				r.Deferred = append(r.Deferred, Event{Type: watch.Deleted, Old: old})
				if r.Applied(key, 0, true) {
					ix.endRelist(0)
				}
				return
			}
			rv = max(ix.rv, last.rv)
		case rv < last.rv:
			return // older than what we have (an out-of-order relist): never go back
		}
	} else if obj == nil {
		return
	}
	now := ix.clock.Now()
	if h == nil {
		h = &chain{}
		ix.objects[key] = h
		ix.all.insert(key)
	} else {
		ix.pending = append(ix.pending, superseded{key: key, rv: rv, at: now})
	}
	h.versions = append(h.versions, version{rv: rv, obj: obj})
	if obj != nil {
		for _, f := range indexedFields {
			ix.bucket(f, fieldValue(obj, f), true).insert(key)
		}
	}
	ev := Event{RV: rv, Type: eventType(old, obj), Old: old, New: obj}
	if r := ix.relist; r != nil {
		// Mid-relist: the snapshot and the watchers wait for the relist to be applied whole.
		r.Held = append(r.Held, ev)
		if r.Applied(key, rv, obj == nil) {
			ix.endRelist(rv)
		}
	} else {
		// Outside a relist the informer delivers writes in revision order: this one is the snapshot.
		ix.rv = max(ix.rv, rv)
		ix.changed.Notify()
		ix.notify(ev)
	}
	ix.compact(now)
}

func eventType(old, obj *gamev1.PlayerSession) watch.EventType {
	switch {
	case old == nil:
		return watch.Added
	case obj == nil:
		return watch.Deleted
	}
	return watch.Modified
}

// bucket returns the keys whose field has value.
func (ix *Index) bucket(field, value string, create bool) *bucket {
	b := ix.buckets[field][value]
	if b == nil && create {
		b = &bucket{}
		ix.buckets[field][value] = b
	}
	return b
}

// compact drops the versions superseded more than window ago; once a player session's only version is
// its deletion, it leaves the index. Bucket entries go when no kept version has that value any more.
func (ix *Index) compact(now time.Time) {
	n := 0
	for ; n < len(ix.pending) && now.Sub(ix.pending[n].at) >= ix.window; n++ {
		p := ix.pending[n]
		h := ix.objects[p.key]
		if h == nil || len(h.versions) < 2 {
			continue
		}
		dropped := h.versions[0]
		h.versions = h.versions[1:]
		if p.rv > ix.compactedRV {
			ix.compactedRV = p.rv
		}
		if dropped.obj != nil {
			for _, f := range indexedFields {
				v := fieldValue(dropped.obj, f)
				if !h.hasValue(f, v) {
					if b := ix.bucket(f, v, false); b != nil {
						b.remove(p.key)
						if b.len() == 0 {
							delete(ix.buckets[f], v)
						}
					}
				}
			}
		}
		if len(h.versions) == 1 && h.versions[0].obj == nil {
			delete(ix.objects, p.key)
			ix.all.remove(p.key)
		}
	}
	if n > 0 {
		ix.pending = append(ix.pending[:0:0], ix.pending[n:]...)
	}
}

func (h *chain) hasValue(field, value string) bool {
	for _, v := range h.versions {
		if v.obj != nil && fieldValue(v.obj, field) == value {
			return true
		}
	}
	return false
}

// Len is the number of player sessions currently indexed (deleted ones excluded).
func (ix *Index) Len() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	n := 0
	for _, h := range ix.objects {
		if h.latest() != nil {
			n++
		}
	}
	return n
}
