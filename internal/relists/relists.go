// Package relists tells the in-memory indexes fed by the manager's informers (internal/index,
// internal/search) when an informer relists, so that they never hand out a resourceVersion while a relist
// is half applied.
//
// Between relists an informer delivers the writes of its type in revision order, so the newest revision
// an index has applied is a snapshot: every write up to it is in the index. A relist (the informer's first
// list, and every list after its watch broke) is different: client-go hands over the listed state one
// object at a time in key order, each at its own revision, so an object at revision 30 can come before one
// at 20. An index that took 30 as its resourceVersion in between would answer a list at 30 without the
// object at 20, and the same resourceVersion would read differently a moment later (the soak found this:
// docs/reliability.md).
//
// So the informers of the indexed types list through a lister (Informers.NewInformer) that tells the
// index's Observer when a list begins and, at its last page, what it returned; the index holds its
// resourceVersion from the one to the moment everything the list brings is applied (Pending).
package relists

import (
	"context"
	"iter"
	"reflect"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"
)

// Observer is an index fed by an informer that needs to know when the informer relists.
type Observer interface {
	// BeginRelist: the informer is listing; what it delivers next may come out of revision order. A relist
	// that begins before the previous one is applied replaces it (that list failed or was overtaken).
	BeginRelist()
	// Relisted is what the list returned: the revision of every listed object by Key, and the list's
	// resourceVersion. It is called before the informer delivers any of it.
	Relisted(listed map[string]uint64, rv uint64)
}

// Key is the key of an object in a relist: namespace/name, the key order a list returns.
func Key(namespace, name string) string { return namespace + "/" + name }

// Informers builds the manager cache's informers (cache.Options.NewInformer): those of the observed types
// list through a lister that tells their observers of relists; every other one is client-go's own.
type Informers struct {
	observers map[reflect.Type][]Observer
	// Lists, if set, is the counter of the lists of an observed kind (its Go type's name): the first list,
	// then one after every watch that broke or expired.
	Lists func(kind string) prometheus.Counter
}

// Observe has o told of the relists of the informer of obj's type. Call it before the cache builds that
// informer.
func (i *Informers) Observe(obj runtime.Object, o Observer) {
	if i.observers == nil {
		i.observers = map[reflect.Type][]Observer{}
	}
	t := reflect.TypeOf(obj)
	i.observers[t] = append(i.observers[t], o)
}

// NewInformer is client-go's NewSharedIndexInformer, with the lister of an observed type wrapped.
func (i *Informers) NewInformer(lw toolscache.ListerWatcher, obj runtime.Object, resync time.Duration, indexers toolscache.Indexers) toolscache.SharedIndexInformer {
	return toolscache.NewSharedIndexInformer(i.lister(lw, obj), obj, resync, indexers)
}

func (i *Informers) lister(lw toolscache.ListerWatcher, obj runtime.Object) toolscache.ListerWatcher {
	if obs := i.observers[reflect.TypeOf(obj)]; len(obs) > 0 {
		l := NewLister(lw, obs...)
		if i.Lists != nil {
			l.relists = i.Lists(reflect.Indirect(reflect.ValueOf(obj)).Type().Name())
		}
		return l
	}
	return lw
}

// NewLister wraps lw so that each list (all its pages) tells the observers a relist begins, then what it
// returned.
//
// The lister lists, never watch-lists (a stream of the initial state): it tells client-go's reflector it
// does not support watch-list semantics. A list's end and resourceVersion are in its last page, which is
// all the observers need; a watch-list would need its stream read for the end bookmark.
func NewLister(lw toolscache.ListerWatcher, observers ...Observer) *Lister {
	return &Lister{inner: toolscache.ToListerWatcherWithContext(lw), observers: observers}
}

// Lister is a lister-watcher that tells observers of relists.
type Lister struct {
	inner     toolscache.ListerWatcherWithContext
	observers []Observer

	relists prometheus.Counter // counts the lists that returned whole (nil: none)

	mu     sync.Mutex
	listed map[string]uint64 // the pages so far of the list in progress
}

// ListWithContext lists a page, telling the observers at the first page that a relist begins and at the
// last what it returned.
func (l *Lister) ListWithContext(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if opts.Continue == "" {
		// A new list (a pager that restarts a list it could not continue starts one too).
		for _, o := range l.observers {
			o.BeginRelist()
		}
		l.listed = map[string]uint64{}
	}
	list, err := l.inner.ListWithContext(ctx, opts)
	if err != nil || l.listed == nil {
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
		rv, err := parseRV(m.GetResourceVersion())
		if err != nil {
			return err
		}
		l.listed[Key(m.GetNamespace(), m.GetName())] = rv
		return nil
	}); err != nil {
		return list, err
	}
	if lm.GetContinue() == "" {
		rv, err := parseRV(lm.GetResourceVersion())
		if err != nil {
			return list, err
		}
		for _, o := range l.observers {
			o.Relisted(l.listed, rv)
		}
		l.listed = nil
		if l.relists != nil {
			l.relists.Inc()
		}
	}
	return list, nil
}

// WatchWithContext watches, unchanged.
func (l *Lister) WatchWithContext(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	return l.inner.WatchWithContext(ctx, opts)
}

// List lists a page (see ListWithContext).
func (l *Lister) List(opts metav1.ListOptions) (runtime.Object, error) {
	return l.ListWithContext(context.Background(), opts)
}

// Watch watches, unchanged.
func (l *Lister) Watch(opts metav1.ListOptions) (watch.Interface, error) {
	return l.WatchWithContext(context.Background(), opts)
}

// IsWatchListSemanticsUnSupported tells client-go's reflector to list, not watch-list.
func (l *Lister) IsWatchListSemanticsUnSupported() bool { return true }

func parseRV(s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	return strconv.ParseUint(s, 10, 64)
}

// Pending is what an index lacks of a relist: it is applied whole once every listed object is at its
// listed revision or later and every object the list no longer holds is deleted, or once a write newer
// than the list arrives (the informer delivers those only after all of the list).
type Pending struct {
	rv       uint64            // the list's resourceVersion
	snapshot uint64            // the newest revision of a listed object
	want     map[string]uint64 // key → the listed revision, 0 for a deletion
}

// NewPending compares a list's objects (listed, at resourceVersion rv) with what the index holds (held:
// every live object's key and revision).
func NewPending(listed map[string]uint64, rv uint64, held iter.Seq2[string, uint64]) *Pending {
	p := &Pending{rv: max(rv, 1), want: make(map[string]uint64, len(listed))}
	for key, want := range listed {
		p.want[key] = want
		p.snapshot = max(p.snapshot, want)
	}
	for key, have := range held {
		if want, ok := listed[key]; !ok {
			p.want[key] = 0
		} else if have >= want {
			delete(p.want, key)
		}
	}
	return p
}

// Snapshot is the revision an index that applied the list whole is at: the newest write of a listed
// object, not the list's resourceVersion. A list's resourceVersion is etcd's whole revision, which writes of
// other resources move; another replica fed the same writes of this resource reaches the one, not
// necessarily the other, so an index hands out only revisions of writes of its resource.
func (p *Pending) Snapshot() uint64 { return p.snapshot }

// Applied records that the index applied key at revision rv (deleted or not).
func (p *Pending) Applied(key string, rv uint64, deleted bool) {
	want, ok := p.want[key]
	if ok && (want == 0) == deleted && rv >= want {
		delete(p.want, key)
	}
}

// Done reports whether the relist is applied whole, given that the write at revision rv was the last
// applied (0: none).
func (p *Pending) Done(rv uint64) bool { return len(p.want) == 0 || rv > p.rv }

// Hold is what an index keeps while a relist is applied: what the list still lacks (nil until the list
// has returned) and the events held meanwhile, of the index's own type. An index outside a relist has none.
type Hold[E any] struct {
	Pending *Pending
	Held    []E
	// Deferred are changes without a revision of their own (deletions the relist found, which the informer
	// hands over with the last known state), for the index to file under the snapshot the relist ends at.
	Deferred []E
}

// Begin is h (a new Hold if nil) with no list returned yet: the start of a list, which replaces one that
// failed or was overtaken; the events held stay held.
func Begin[E any](h *Hold[E]) *Hold[E] {
	if h == nil {
		h = &Hold[E]{}
	}
	h.Pending = nil
	return h
}

// Listed records in h (a new Hold if nil) what the list returned, compared with what the index holds (held:
// every live object's key and revision), and reports whether the relist is applied already.
func Listed[E any](h *Hold[E], listed map[string]uint64, rv uint64, held iter.Seq2[string, uint64]) (*Hold[E], bool) {
	h = Begin(h)
	h.Pending = NewPending(listed, rv, held)
	return h, h.Pending.Done(0)
}

// Applied records that the index applied key at revision rv (deleted or not) and reports whether the
// relist is applied whole.
func (h *Hold[E]) Applied(key string, rv uint64, deleted bool) bool {
	if h.Pending == nil {
		return false
	}
	h.Pending.Applied(key, rv, deleted)
	return h.Pending.Done(rv)
}

// Guarded is the Observer of an index that keeps its Hold under its lock: Begin and Listed under Lock,
// End (under it too) once the relist is applied already when the list returns.
type Guarded[E any] struct {
	Lock sync.Locker
	Hold **Hold[E]
	// Live yields every live object's key and revision (called under Lock).
	Live func() iter.Seq2[string, uint64]
	// End ends the relist: the index takes the relist's snapshot and files the held events.
	End func()
}

// BeginRelist begins a relist (Observer).
func (g Guarded[E]) BeginRelist() {
	g.Lock.Lock()
	defer g.Lock.Unlock()
	*g.Hold = Begin(*g.Hold)
}

// Relisted records what the list returned (Observer).
func (g Guarded[E]) Relisted(listed map[string]uint64, rv uint64) {
	g.Lock.Lock()
	defer g.Lock.Unlock()
	var done bool
	if *g.Hold, done = Listed(*g.Hold, listed, rv, g.Live()); done {
		g.End()
	}
}
