package index

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"
	clocktesting "k8s.io/utils/clock/testing"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/internal/relists"
)

// seen is what a list at the newest snapshot returned: the snapshot and name@resourceVersion of each item.
type seen struct {
	rv    uint64
	items []string
}

func itemsAt(items []*gamev1.PlayerSession) []string {
	var out []string
	for _, ps := range items {
		out = append(out, ps.Name+"@"+ps.ResourceVersion)
	}
	return out
}

// look lists the newest snapshot, as a client of the query API would between two informer events.
func look(t *testing.T, ix *Index) seen {
	t.Helper()
	p, err := ix.List(ctx, Query{}, ListOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return seen{p.RV, itemsAt(p.Items)}
}

// checkSnapshots: every snapshot handed out still reads the same, and the index never went back.
func checkSnapshots(t *testing.T, ix *Index, looks []seen) {
	t.Helper()
	for i, s := range looks {
		if s.rv == 0 {
			continue // before the first list: nothing, and "0" means the newest
		}
		if i > 0 && s.rv < looks[i-1].rv {
			t.Errorf("the snapshot went back from %d to %d", looks[i-1].rv, s.rv)
		}
		p, err := ix.List(ctx, Query{}, ListOptions{ResourceVersion: strconv.FormatUint(s.rv, 10), ResourceVersionMatch: metav1.ResourceVersionMatchExact}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := itemsAt(p.Items); !slices.Equal(got, s.items) {
			t.Errorf("snapshot %d read %v when it was the newest, %v now", s.rv, s.items, got)
		}
	}
}

// delivery is one informer event of a relist: an upsert, or a deletion (DeletedFinalStateUnknown: the
// relist found the object gone and hands over its last known state).
type delivery struct {
	ps  *gamev1.PlayerSession
	del bool
}

func TestRelistNeverChangesASnapshot(t *testing.T) {
	up := func(name string, rv uint64) delivery { return delivery{ps: psAt(name, "alice", rv)} }
	gone := func(name string, rv uint64) delivery { return delivery{ps: psAt(name, "alice", rv), del: true} }
	cases := []struct {
		name   string
		before []delivery // the watch, in revision order
		listRV uint64
		listed map[string]uint64
		relist []delivery // what the informer delivers of the relist: deletions, then changes in key order
		after  []delivery // the watch after the relist
		wantRV uint64
		want   []string // the newest snapshot at the end
	}{{
		// The soak's case (docs/reliability.md): a newer write first in key order, an older one after it.
		name:   "out of revision order",
		before: []delivery{up("game-a", 10)},
		listRV: 40, listed: map[string]uint64{"ns/game-a": 30, "ns/p4": 20},
		relist: []delivery{up("game-a", 30), up("p4", 20)},
		wantRV: 30, want: []string{"game-a@30", "p4@20"},
	}, {
		name:   "a deletion the relist found",
		before: []delivery{up("a", 10), up("b", 11)},
		listRV: 50, listed: map[string]uint64{"ns/b": 11, "ns/c": 45},
		relist: []delivery{gone("a", 10), up("c", 45)},
		wantRV: 45, want: []string{"b@11", "c@45"},
	}, {
		name:   "nothing changed",
		before: []delivery{up("a", 10)},
		listRV: 60, listed: map[string]uint64{"ns/a": 10},
		wantRV: 10, want: []string{"a@10"},
	}, {
		name:   "the watch's tail arrives after the list returned",
		before: []delivery{up("a", 10)},
		listRV: 70, listed: map[string]uint64{"ns/a": 10, "ns/b": 30, "ns/c": 20},
		relist: []delivery{up("b", 30), up("c", 20)},
		wantRV: 30, want: []string{"a@10", "b@30", "c@20"},
	}, {
		name:   "a write newer than the list",
		before: []delivery{up("a", 10)},
		listRV: 40, listed: map[string]uint64{"ns/a": 10, "ns/b": 30, "ns/c": 20},
		relist: []delivery{up("b", 30), up("c", 20)},
		after:  []delivery{up("a", 41)},
		wantRV: 41, want: []string{"a@41", "b@30", "c@20"},
	}, {
		name:   "the first list",
		listRV: 90, listed: map[string]uint64{"ns/a": 80, "ns/b": 12},
		relist: []delivery{up("a", 80), up("b", 12)},
		wantRV: 80, want: []string{"a@80", "b@12"},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ix := NewIndex(clocktesting.NewFakeClock(t0), time.Minute)
			var looks []seen
			deliver := func(ds []delivery) {
				for _, d := range ds {
					if d.del {
						ix.Delete(d.ps)
					} else {
						ix.Upsert(d.ps)
					}
					looks = append(looks, look(t, ix))
				}
			}
			deliver(tc.before)
			before := ix.RV()
			ix.Relists().BeginRelist()
			ix.Relists().Relisted(tc.listed, tc.listRV)
			looks = append(looks, look(t, ix))
			for i, d := range tc.relist {
				deliver([]delivery{d})
				if i < len(tc.relist)-1 && ix.RV() != before {
					t.Errorf("mid-relist the snapshot moved from %d to %d", before, ix.RV())
				}
			}
			deliver(tc.after)
			if ix.RV() != tc.wantRV || ix.Relisting() {
				t.Errorf("after the relist the index is at %d (relisting %v), want %d", ix.RV(), ix.Relisting(), tc.wantRV)
			}
			if got := look(t, ix).items; !slices.Equal(got, tc.want) {
				t.Errorf("the index holds %v, want %v", got, tc.want)
			}
			checkSnapshots(t, ix, looks)
		})
	}
}

// TestRelistAbandoned: a list that failed, then another: the snapshot is held until the one that returned
// is applied; what the first would have brought is not waited for.
func TestRelistAbandoned(t *testing.T) {
	ix := NewIndex(clocktesting.NewFakeClock(t0), time.Minute)
	ix.Upsert(psAt("a", "alice", 10))
	ix.Relists().BeginRelist()        // this list fails
	ix.Upsert(psAt("a", "alice", 12)) // the watch's tail
	ix.Relists().BeginRelist()
	if ix.RV() != 10 || !ix.Relisting() {
		t.Fatalf("index at %d, relisting %v; want 10, held", ix.RV(), ix.Relisting())
	}
	ix.Relists().Relisted(map[string]uint64{"ns/a": 12}, 30)
	if ix.RV() != 12 || ix.Relisting() {
		t.Errorf("index at %d, relisting %v; want 12, not held", ix.RV(), ix.Relisting())
	}
}

// TestWatchersSeeARelistInRevisionOrder: a watch sees the relist's events once it is whole, in revision
// order, so a client that resumes from the resourceVersion of any event it saw misses nothing.
func TestWatchersSeeARelistInRevisionOrder(t *testing.T) {
	ix := NewIndex(clocktesting.NewFakeClock(t0), time.Minute)
	ix.Upsert(psAt("a", "alice", 10))
	w, err := ix.Watch(ctx, Query{}, WatchOptions{ResourceVersion: "10"}, convertPS)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	ix.Relists().BeginRelist()
	ix.Relists().Relisted(map[string]uint64{"ns/a": 30, "ns/b": 20, "ns/c": 25}, 40)
	ix.Upsert(psAt("a", "alice", 30))
	ix.Upsert(psAt("b", "alice", 20))
	select {
	case e := <-w.ResultChan():
		t.Fatalf("a watcher saw %s of a relist not yet whole", e.Type)
	case <-time.After(50 * time.Millisecond):
	}
	ix.Upsert(psAt("c", "alice", 25))
	var rvs []string
	for range 3 {
		select {
		case e := <-w.ResultChan():
			rvs = append(rvs, e.Object.(*gamev1.PlayerSession).ResourceVersion)
		case <-time.After(5 * time.Second):
			t.Fatalf("the watch saw %v, want 3 events", rvs)
		}
	}
	if !slices.Equal(rvs, []string{"20", "25", "30"}) {
		t.Errorf("the watch saw revisions %v, want 20 25 30", rvs)
	}
}

func convertPS(t watch.EventType, ps *gamev1.PlayerSession) watch.Event {
	return watch.Event{Type: t, Object: ps}
}

// fakeLW is a lister-watcher whose lists come from pages the test sets and whose watches it drives.
type fakeLW struct {
	mu      sync.Mutex
	lists   [][]*gamev1.PlayerSessionList // the lists to come, each as pages
	cur     []*gamev1.PlayerSessionList   // the list being paged
	watches chan *watch.FakeWatcher
}

func (f *fakeLW) ListWithContext(_ context.Context, opts metav1.ListOptions) (runtime.Object, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	page := 0
	if opts.Continue != "" {
		page, _ = strconv.Atoi(opts.Continue)
	} else if len(f.lists) > 0 {
		f.cur, f.lists = f.lists[0], f.lists[1:]
	}
	return f.cur[page].DeepCopy(), nil
}

func (f *fakeLW) WatchWithContext(context.Context, metav1.ListOptions) (watch.Interface, error) {
	w := watch.NewFake()
	f.watches <- w
	return w, nil
}

func (f *fakeLW) List(opts metav1.ListOptions) (runtime.Object, error) {
	return f.ListWithContext(context.Background(), opts)
}

func (f *fakeLW) Watch(opts metav1.ListOptions) (watch.Interface, error) {
	return f.WatchWithContext(context.Background(), opts)
}

func psList(rv uint64, cont string, items ...*gamev1.PlayerSession) *gamev1.PlayerSessionList {
	l := &gamev1.PlayerSessionList{ListMeta: metav1.ListMeta{ResourceVersion: strconv.FormatUint(rv, 10), Continue: cont}}
	for _, ps := range items {
		l.Items = append(l.Items, *ps)
	}
	return l
}

// TestInformerRelistKeepsSnapshots drives client-go's own informer, built by relists.Informers, through a
// first list, a watch, a watch that expires (410) and the relist that follows, which delivers a newer
// object before an older one. A client lists the index between every two events it gets; every snapshot
// it was given must read the same at the end.
func TestInformerRelistKeepsSnapshots(t *testing.T) {
	ix := NewIndex(clocktesting.NewFakeClock(t0), time.Minute)
	lw := &fakeLW{lists: [][]*gamev1.PlayerSessionList{
		{psList(12, "", psAt("a", "alice", 5), psAt("b", "alice", 12))},
		{psList(40, "", psAt("a", "alice", 30), psAt("b", "alice", 12), psAt("c", "alice", 13), psAt("d", "alice", 20))},
	}, watches: make(chan *watch.FakeWatcher, 4)}

	var informers relists.Informers
	informers.Observe(&gamev1.PlayerSession{}, ix.Relists())
	inf := informers.NewInformer(lw, &gamev1.PlayerSession{}, 0, toolscache.Indexers{})
	var mu sync.Mutex
	var looks []seen
	h := ix.Handler()
	record := func() {
		mu.Lock()
		defer mu.Unlock()
		looks = append(looks, look(t, ix))
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { h.OnAdd(o, false); record() },
		UpdateFunc: func(o, n any) { h.OnUpdate(o, n); record() },
		DeleteFunc: func(o any) { h.OnDelete(o); record() },
	}); err != nil {
		t.Fatal(err)
	}
	stop, cancel := context.WithCancel(ctx)
	defer cancel()
	go inf.RunWithContext(stop)

	w := <-lw.watches
	w.Add(psAt("c", "alice", 13))
	// The watch expires: the informer lists again, at 40.
	w.Error(&metav1.Status{Status: metav1.StatusFailure, Code: http.StatusGone, Reason: metav1.StatusReasonExpired, Message: "too old resource version"})
	w2 := <-lw.watches
	waitUntil(t, func() bool { return ix.Get("ns", "d") != nil })
	w2.Add(psAt("e", "alice", 41))
	waitUntil(t, func() bool { return ix.Get("ns", "e") != nil })
	cancel()

	mu.Lock()
	defer mu.Unlock()
	checkSnapshots(t, ix, looks)
	if got, want := look(t, ix).items, []string{"a@30", "b@12", "c@13", "d@20", "e@41"}; !slices.Equal(got, want) {
		t.Errorf("the index holds %v, want %v", got, want)
	}
	if len(looks) < 6 || ix.RV() != 41 {
		t.Errorf("the client listed %d times, want one per event (at least 6); the index is at %d, want 41", len(looks), ix.RV())
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRelistHandsOutOnlyRevisionsOfWrites: a replica that relisted is at the same resourceVersion as one
// that watched the same writes, not at the list's (etcd's whole revision, which other resources' writes
// move): a continue token from either pages on the other with no write to come. The soak found a replica
// that had taken its list's resourceVersion, which the other could not reach in a quiet cluster.
func TestRelistHandsOutOnlyRevisionsOfWrites(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	watched, relisted := newReplica(clk), newReplica(clk)
	for _, ix := range []*Index{watched, relisted} {
		ix.Upsert(psAt("a", "alice", 10))
		ix.Upsert(psAt("b", "alice", 11))
	}
	watched.Upsert(psAt("c", "alice", 20))
	relisted.Relists().BeginRelist()
	relisted.Relists().Relisted(map[string]uint64{"ns/a": 10, "ns/b": 11, "ns/c": 20}, 90)
	relisted.Upsert(psAt("c", "alice", 20))
	if watched.RV() != 20 || relisted.RV() != 20 {
		t.Fatalf("watched at %d, relisted at %d; want both at 20 (the newest write, not the list's 90)", watched.RV(), relisted.RV())
	}
	// A token of the relisted replica serves on the watched one at once.
	tokens := NewTokens([]byte("shared"))
	p, err := relisted.List(ctx, Query{}, ListOptions{Limit: 1}, tokens)
	if err != nil {
		t.Fatal(err)
	}
	next, err := watched.List(ctx, Query{}, ListOptions{Limit: 2, Continue: p.Continue}, tokens)
	if err != nil {
		t.Fatalf("a token of the relisted replica on the watched one: %v", err)
	}
	if got := append(itemsAt(p.Items), itemsAt(next.Items)...); !slices.Equal(got, []string{"a@10", "b@11", "c@20"}) {
		t.Errorf("paged across replicas at 20: %v, want a@10 b@11 c@20", got)
	}
}

// TestRelistSkippedSnapshots: a replica that relisted from snapshot 10 to 30 never held the snapshots
// between: an object created at 15 and changed at 25 shows up at its last state only. A read of one of
// them exactly (another replica's continue token) is refused as a compacted one is (410, with a token
// that continues in the current snapshot), never answered without the object; 10 and 30 still read. The
// soak found a paged list whose second page, on a replica that had relisted, missed a player session
// reserved and timed out while that replica's watch was down.
func TestRelistSkippedSnapshots(t *testing.T) {
	ix := NewIndex(clocktesting.NewFakeClock(t0), time.Minute)
	tokens := NewTokens([]byte("shared"))
	ix.Upsert(psAt("a", "alice", 10))
	ix.Relists().BeginRelist()
	ix.Relists().Relisted(map[string]uint64{"ns/a": 10, "ns/b": 25, "ns/c": 30}, 40)
	ix.Upsert(psAt("b", "alice", 25)) // created at 15, RESERVED at 25: the relist brings its last state
	ix.Upsert(psAt("c", "alice", 30))
	if ix.RV() != 30 {
		t.Fatalf("index at %d, want 30", ix.RV())
	}
	exact := func(rv string) error {
		_, err := ix.List(ctx, Query{}, ListOptions{ResourceVersion: rv, ResourceVersionMatch: metav1.ResourceVersionMatchExact}, tokens)
		return err
	}
	for rv, skipped := range map[string]bool{"10": false, "11": true, "20": true, "29": true, "30": false} {
		if err := exact(rv); apierrors.IsResourceExpired(err) != skipped || (!skipped && err != nil) {
			t.Errorf("exactly %s: %v, want skipped %v", rv, err, skipped)
		}
	}
	// A continue token of another replica at 20, after a: 410 with a token that continues at 30.
	token := tokens.encode(continueToken{V: 1, RV: 20, Key: Key("ns", "a"), Q: Query{}.fingerprint()})
	_, err := ix.List(ctx, Query{}, ListOptions{Limit: 5, Continue: token}, tokens)
	status, ok := err.(apierrors.APIStatus)
	if !apierrors.IsResourceExpired(err) || !ok || status.Status().ListMeta.Continue == "" {
		t.Fatalf("a token at a skipped snapshot: %v, want 410 with a fresh token", err)
	}
	p, err := ix.List(ctx, Query{}, ListOptions{Limit: 5, Continue: status.Status().ListMeta.Continue}, tokens)
	if err != nil || p.RV != 30 || !slices.Equal(itemsAt(p.Items), []string{"b@25", "c@30"}) {
		t.Errorf("the fresh token: %v at %d (%v), want b@25 c@30 at 30", itemsAt(p.Items), p.RV, err)
	}
}
