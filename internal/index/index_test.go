package index

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/watch"
	clocktesting "k8s.io/utils/clock/testing"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/internal/indexes"
)

var (
	t0  = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	ctx = context.Background()
)

type fixture struct {
	ix     *Index
	clock  *clocktesting.FakeClock
	tokens *Tokens
	rv     uint64
}

func newFixture() *fixture {
	clk := clocktesting.NewFakeClock(t0)
	return &fixture{ix: NewIndex(clk, time.Minute), clock: clk, tokens: NewTokens([]byte("test-key"))}
}

// put writes a new version of ns/name, as the informer would deliver it.
func (f *fixture) put(ns, name, player, game string, status gamev1.PlayerSessionStatusValue, lbls map[string]string) *gamev1.PlayerSession {
	f.rv++
	ps := &gamev1.PlayerSession{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, ResourceVersion: strconv.FormatUint(f.rv, 10), Labels: lbls},
		Spec:       gamev1.PlayerSessionSpec{PlayerID: player, GameSessionName: game},
		Status:     gamev1.PlayerSessionStatus{Status: status},
	}
	if status != "" {
		ps.Status.PlayerSessionID = "psess-" + ns + "-" + name
		ps.Status.GameSessionID = "gsid-" + ns + "-" + game
	}
	f.ix.Upsert(ps)
	return ps
}

func (f *fixture) del(ns, name string) {
	f.rv++
	f.ix.Delete(&gamev1.PlayerSession{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, ResourceVersion: strconv.FormatUint(f.rv, 10)}})
}

func names(items []*gamev1.PlayerSession) []string {
	var out []string
	for _, ps := range items {
		out = append(out, ps.Namespace+"/"+ps.Name)
	}
	return out
}

func (f *fixture) seed() {
	f.put("a", "p1", "alice", "g1", gamev1.PlayerSessionReserved, map[string]string{"team": "red"})
	f.put("a", "p2", "bob", "g1", gamev1.PlayerSessionActive, map[string]string{"team": "blue"})
	f.put("a", "p3", "alice", "g2", gamev1.PlayerSessionCompleted, nil)
	f.put("b", "p1", "alice", "g1", gamev1.PlayerSessionActive, map[string]string{"team": "red"})
	f.put("b", "p4", "carol", "g1", "", nil)
}

func TestListSelectors(t *testing.T) {
	f := newFixture()
	f.seed()
	red, _ := labels.Parse("team=red")
	for _, tt := range []struct {
		name string
		q    Query
		want []string
	}{
		{"everything", Query{}, []string{"a/p1", "a/p2", "a/p3", "b/p1", "b/p4"}},
		{"namespace", Query{Namespace: "b"}, []string{"b/p1", "b/p4"}},
		{"player across namespaces", Query{Fields: map[string]string{FieldPlayerID: "alice"}}, []string{"a/p1", "a/p3", "b/p1"}},
		{"player in a namespace", Query{Namespace: "a", Fields: map[string]string{FieldPlayerID: "alice"}}, []string{"a/p1", "a/p3"}},
		{"game session name", Query{Fields: map[string]string{FieldGameSessionName: "g1"}}, []string{"a/p1", "a/p2", "b/p1", "b/p4"}},
		{"game session id", Query{Fields: map[string]string{FieldGameSessionID: "gsid-a-g1"}}, []string{"a/p1", "a/p2"}},
		{"player session id", Query{Fields: map[string]string{FieldPlayerSessionID: "psess-b-p1"}}, []string{"b/p1"}},
		{"status", Query{Fields: map[string]string{FieldStatus: "ACTIVE"}}, []string{"a/p2", "b/p1"}},
		{"pending status", Query{Fields: map[string]string{FieldStatus: indexes.StatusPending}}, []string{"b/p4"}},
		{"game session and status", Query{Fields: map[string]string{FieldGameSessionID: "gsid-a-g1", FieldStatus: "RESERVED"}}, []string{"a/p1"}},
		{"player and status", Query{Fields: map[string]string{FieldPlayerID: "alice", FieldStatus: "ACTIVE"}}, []string{"b/p1"}},
		{"name in namespace", Query{Namespace: "a", Fields: map[string]string{FieldName: "p2"}}, []string{"a/p2"}},
		{"name across namespaces", Query{Fields: map[string]string{FieldName: "p1"}}, []string{"a/p1", "b/p1"}},
		{"labels", Query{Labels: red}, []string{"a/p1", "b/p1"}},
		{"labels and player", Query{Labels: red, Fields: map[string]string{FieldPlayerID: "alice"}, Namespace: "b"}, []string{"b/p1"}},
		{"no match", Query{Fields: map[string]string{FieldPlayerID: "nobody"}}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			page, err := f.ix.List(ctx, tt.q, ListOptions{}, f.tokens)
			if err != nil {
				t.Fatal(err)
			}
			if got := names(page.Items); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			if page.Continue != "" {
				t.Errorf("unexpected continue token")
			}
		})
	}
}

// TestPagingReadsOneSnapshot: pages come in key order from the snapshot of the first page, whatever
// changes in between.
func TestPagingReadsOneSnapshot(t *testing.T) {
	f := newFixture()
	for i := range 10 {
		f.put("ns", fmt.Sprintf("p%02d", i), "alice", "g", gamev1.PlayerSessionReserved, nil)
	}
	q := Query{Fields: map[string]string{FieldPlayerID: "alice"}}
	page, err := f.ix.List(ctx, q, ListOptions{Limit: 4}, f.tokens)
	if err != nil {
		t.Fatal(err)
	}
	got := names(page.Items)
	snapshot := page.RV

	// The set changes under the pager: a deletion, an addition, a player session leaving the selection.
	f.del("ns", "p06")
	f.put("ns", "p05", "bob", "g", gamev1.PlayerSessionReserved, nil)
	f.put("ns", "p99", "alice", "g", gamev1.PlayerSessionReserved, nil)
	for page.Continue != "" {
		if page, err = f.ix.List(ctx, q, ListOptions{Limit: 4, Continue: page.Continue}, f.tokens); err != nil {
			t.Fatal(err)
		}
		if page.RV != snapshot {
			t.Fatalf("page read at %d, want the snapshot %d", page.RV, snapshot)
		}
		got = append(got, names(page.Items)...)
	}
	var want []string
	for i := range 10 {
		want = append(want, fmt.Sprintf("ns/p%02d", i))
	}
	if !slices.Equal(got, want) {
		t.Errorf("pages = %v, want the snapshot %v", got, want)
	}
	// A fresh list sees the changes.
	page, _ = f.ix.List(ctx, q, ListOptions{}, f.tokens)
	if got := names(page.Items); slices.Contains(got, "ns/p06") || slices.Contains(got, "ns/p05") || !slices.Contains(got, "ns/p99") {
		t.Errorf("fresh list = %v", got)
	}
}

func TestContinueTokenErrors(t *testing.T) {
	f := newFixture()
	f.seed()
	q := Query{Fields: map[string]string{FieldPlayerID: "alice"}}
	page, err := f.ix.List(ctx, q, ListOptions{Limit: 1}, f.tokens)
	if err != nil || page.Continue == "" {
		t.Fatalf("first page: %v %q", err, page.Continue)
	}
	tampered := []byte(page.Continue)
	tampered[3] ^= 1
	for _, tt := range []struct {
		name   string
		q      Query
		token  string
		tokens *Tokens
	}{
		{"malformed", q, "not-a-token", f.tokens},
		{"tampered", q, string(tampered), f.tokens},
		{"other selectors", Query{Fields: map[string]string{FieldPlayerID: "bob"}}, page.Continue, f.tokens},
		{"other namespace", Query{Namespace: "a", Fields: q.Fields}, page.Continue, f.tokens},
		{"other server key", q, page.Continue, NewTokens([]byte("another key"))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.ix.List(ctx, tt.q, ListOptions{Limit: 1, Continue: tt.token}, tt.tokens)
			if !apierrors.IsBadRequest(err) {
				t.Fatalf("got %v, want 400", err)
			}
		})
	}

	t.Run("expired", func(t *testing.T) {
		f.clock.Step(2 * time.Minute)
		f.put("a", "p1", "alice", "g1", gamev1.PlayerSessionActive, nil) // supersedes a version
		f.clock.Step(2 * time.Minute)
		f.put("a", "p9", "zed", "g9", gamev1.PlayerSessionActive, nil) // compaction runs
		_, err := f.ix.List(ctx, q, ListOptions{Limit: 1, Continue: page.Continue}, f.tokens)
		if !apierrors.IsResourceExpired(err) || apierrors.ReasonForError(err) != metav1.StatusReasonExpired {
			t.Fatalf("got %v, want 410 Expired", err)
		}
		status := err.(apierrors.APIStatus).Status()
		if status.Code != http.StatusGone || status.ListMeta.Continue == "" {
			t.Fatalf("status %+v: want 410 with a fresh continue token", status)
		}
		rest, err := f.ix.List(ctx, q, ListOptions{Continue: status.ListMeta.Continue}, f.tokens)
		if err != nil {
			t.Fatal(err)
		}
		if got := names(rest.Items); !slices.Equal(got, []string{"a/p3", "b/p1"}) {
			t.Errorf("the fresh token continues after a/p1: got %v", got)
		}
	})
}

func TestCompactionForgetsDeletedSessions(t *testing.T) {
	f := newFixture()
	f.seed()
	f.del("a", "p1")
	if f.ix.Len() != 4 {
		t.Fatalf("Len = %d", f.ix.Len())
	}
	f.clock.Step(2 * time.Minute)
	f.put("c", "x", "x", "x", "", nil)
	if _, ok := f.ix.objects["a/p1"]; ok {
		t.Error("a deleted player session is still held after the window")
	}
	if b := f.ix.bucket(FieldPlayerSessionID, "psess-a-p1", false); b != nil {
		t.Error("its bucket entries are still held")
	}
	if b := f.ix.bucket(FieldPlayerID, "alice", false); b == nil || b.has("a/p1") {
		t.Error("the shared bucket must keep the others and drop a/p1")
	}
}

func TestWatch(t *testing.T) {
	f := newFixture()
	f.seed()
	q := Query{Fields: map[string]string{FieldPlayerID: "alice"}}
	convert := func(t watch.EventType, ps *gamev1.PlayerSession) watch.Event { return watch.Event{Type: t, Object: ps} }
	w, err := f.ix.Watch(ctx, q, WatchOptions{ResourceVersion: "0"}, convert)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	next := func() (watch.EventType, string) {
		t.Helper()
		select {
		case e := <-w.ResultChan():
			ps := e.Object.(*gamev1.PlayerSession)
			return e.Type, ps.Namespace + "/" + ps.Name + "=" + string(ps.Status.Status)
		case <-time.After(5 * time.Second):
			t.Fatal("no event")
		}
		return "", ""
	}
	var initial []string
	for range 3 {
		typ, o := next()
		if typ != watch.Added {
			t.Fatalf("initial event %s", typ)
		}
		initial = append(initial, o)
	}
	slices.Sort(initial)
	if want := []string{"a/p1=RESERVED", "a/p3=COMPLETED", "b/p1=ACTIVE"}; !slices.Equal(initial, want) {
		t.Fatalf("initial = %v, want %v", initial, want)
	}
	rvBefore := f.rv
	f.put("a", "p1", "alice", "g1", gamev1.PlayerSessionActive, nil)
	f.put("a", "p2", "bob", "g1", gamev1.PlayerSessionCompleted, nil) // not selected: no event
	f.put("z", "new", "alice", "g1", gamev1.PlayerSessionReserved, nil)
	f.del("b", "p1")
	for _, want := range []string{"MODIFIED a/p1=ACTIVE", "ADDED z/new=RESERVED", "DELETED b/p1=ACTIVE"} {
		if typ, o := next(); string(typ)+" "+o != want {
			t.Fatalf("got %s %s, want %s", typ, o, want)
		}
	}

	// From a list's resourceVersion: the events since then are replayed.
	w2, err := f.ix.Watch(ctx, q, WatchOptions{ResourceVersion: strconv.FormatUint(rvBefore, 10)}, convert)
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Stop()
	e := <-w2.ResultChan()
	if e.Type != watch.Modified || e.Object.(*gamev1.PlayerSession).Name != "p1" {
		t.Fatalf("replay starts with %s %v", e.Type, e.Object)
	}

	// Too old: 410.
	f.ix.mu.Lock()
	f.ix.events = f.ix.events[len(f.ix.events)-1:]
	f.ix.mu.Unlock()
	if _, err := f.ix.Watch(ctx, q, WatchOptions{ResourceVersion: "1"}, convert); !apierrors.IsResourceExpired(err) {
		t.Fatalf("got %v, want 410", err)
	}
}

// TestWatchMemoryIsBounded: an idle watch holds a bounded buffer of its own events, not a buffer sized
// for the whole index's traffic: 500 watches of an empty namespace cost well under 60 KB each (before:
// 10,000 event slots each, about 400 KB, 200 MB for 500).
func TestWatchMemoryIsBounded(t *testing.T) {
	f := newFixture()
	f.seed()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var ws []watch.Interface
	for range 500 {
		w, err := f.ix.Watch(ctx, Query{Namespace: "empty"}, WatchOptions{}, func(t watch.EventType, ps *gamev1.PlayerSession) watch.Event {
			return watch.Event{Type: t, Object: ps}
		})
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, w)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if per := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / 500; per > 60<<10 {
		t.Errorf("%d bytes of heap per idle watch, want under 60 KiB", per)
	}
	for _, w := range ws {
		w.Stop()
	}
}

// TestWatchSeesOnlyItsEvents: a watch is handed only the events of its query, so a busy namespace cannot
// fill (and close) the buffer of a watch of a quiet one.
func TestWatchSeesOnlyItsEvents(t *testing.T) {
	f := newFixture()
	w, err := f.ix.Watch(ctx, Query{Namespace: "quiet"}, WatchOptions{}, func(t watch.EventType, ps *gamev1.PlayerSession) watch.Event {
		return watch.Event{Type: t, Object: ps}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for i := range 3 * watchBuffer { // more than the watch's buffer, none of its query, nobody reading
		f.put("busy", fmt.Sprintf("p%d", i), "x", "g", gamev1.PlayerSessionReserved, nil)
	}
	f.put("quiet", "q1", "y", "g", gamev1.PlayerSessionReserved, nil)
	select {
	case e, ok := <-w.ResultChan():
		if !ok {
			t.Fatal("the watch of the quiet namespace was closed by another namespace's events")
		}
		if got := e.Object.(*gamev1.PlayerSession).Name; got != "q1" {
			t.Fatalf("got %s, want q1", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event for q1")
	}
}

// TestWatchInitialEventsArePaged: a watch that starts with the state of a large namespace reads it from its
// snapshot a page at a time as its client takes the events, so a watch that is not read holds one page, not
// the namespace (before: every object's event, about 40 bytes each, per watch: 100 watches of 20,000 player
// sessions held 80 MB).
func TestWatchInitialEventsArePaged(t *testing.T) {
	f := newFixture()
	const objects, watches = 20_000, 100
	for i := range objects {
		f.put("big", fmt.Sprintf("p%05d", i), "x", "g", gamev1.PlayerSessionReserved, nil)
	}
	ws, after, before := unreadWatches(t, f, WatchOptions{ResourceVersion: "0"}, watches)
	if per := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / watches; per > 64<<10 {
		t.Errorf("%d bytes of heap per unread watch of %d objects, want under 64 KiB", per, objects)
	}
	// Each watch still delivers the whole namespace, in order, once.
	for i, w := range ws {
		if i%25 == 0 {
			n := 0
			for e := range w.ResultChan() {
				if e.Type != watch.Added || e.Object.(*gamev1.PlayerSession).Name != fmt.Sprintf("p%05d", n) {
					t.Fatalf("event %d: %s %s", n, e.Type, e.Object.(*gamev1.PlayerSession).Name)
				}
				if n++; n == objects {
					break
				}
			}
		}
		w.Stop()
	}
}

// TestWatchInitialEventsOutliveTheirSnapshot: a client that takes a large namespace's initial events slower
// than the snapshot window gets 410 Expired (and re-lists), never a mix of two snapshots.
func TestWatchInitialEventsOutliveTheirSnapshot(t *testing.T) {
	f := newFixture()
	n := 2*initialPage + 10
	for i := range n {
		f.put("big", fmt.Sprintf("p%05d", i), "x", "g", gamev1.PlayerSessionReserved, nil)
	}
	w, err := f.ix.Watch(ctx, Query{Namespace: "big"}, WatchOptions{ResourceVersion: "0"}, func(t watch.EventType, ps *gamev1.PlayerSession) watch.Event {
		return watch.Event{Type: t, Object: ps}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	<-w.ResultChan()
	for i := range n { // every object changes, and the old versions outlive the window
		f.put("big", fmt.Sprintf("p%05d", i), "x", "g", gamev1.PlayerSessionActive, nil)
	}
	f.clock.Step(2 * time.Minute)
	f.put("other", "trigger", "y", "g", gamev1.PlayerSessionReserved, nil) // compacts
	added := 1
	for e := range w.ResultChan() {
		switch e.Type {
		case watch.Added:
			if s := e.Object.(*gamev1.PlayerSession).Status.Status; s != gamev1.PlayerSessionReserved {
				t.Fatalf("an initial event from a newer snapshot: %s", s)
			}
			added++
		case watch.Error:
			if status, ok := e.Object.(*metav1.Status); !ok || status.Code != 410 {
				t.Fatalf("error event %v, want 410", e.Object)
			}
			if added >= n {
				t.Fatalf("all %d initial events were sent before the error", added)
			}
			return
		default:
			t.Fatalf("%s before the initial events ended", e.Type)
		}
	}
	t.Fatal("the watch ended without an error")
}

// TestWatchReplayIsPaged: a watch from an older resourceVersion replays its query's events of the ring a
// page at a time as its client takes them (before: every matching event copied at the start, up to the
// ring's 100,000); events the ring drops before the client takes them end the watch with 410.
func TestWatchReplayIsPaged(t *testing.T) {
	f := newFixture()
	f.put("other", "first", "y", "g", gamev1.PlayerSessionReserved, nil) // resourceVersion 0 would mean "the state"
	start := strconv.FormatUint(f.rv, 10)
	const objects, watches = 20_000, 100
	for i := range objects {
		f.put("big", fmt.Sprintf("p%05d", i), "x", "g", gamev1.PlayerSessionReserved, nil)
	}
	ws, after, before := unreadWatches(t, f, WatchOptions{ResourceVersion: start}, watches)
	if per := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / watches; per > 64<<10 {
		t.Errorf("%d bytes of heap per unread watch replaying %d events, want under 64 KiB", per, objects)
	}
	n := 0
	for e := range ws[0].ResultChan() {
		if e.Type != watch.Added || e.Object.(*gamev1.PlayerSession).Name != fmt.Sprintf("p%05d", n) {
			t.Fatalf("event %d: %s %s", n, e.Type, e.Object.(*gamev1.PlayerSession).Name)
		}
		if n++; n == objects {
			break
		}
	}
	for _, w := range ws {
		w.Stop()
	}

	// A small ring that turns while a watch replays it.
	f = newFixture()
	f.ix.maxEvents = 2 * initialPage
	f.put("other", "first", "y", "g", gamev1.PlayerSessionReserved, nil)
	start = strconv.FormatUint(f.rv, 10)
	for i := range initialPage + 10 {
		f.put("big", fmt.Sprintf("p%05d", i), "x", "g", gamev1.PlayerSessionReserved, nil)
	}
	w, err := f.ix.Watch(ctx, Query{Namespace: "big"}, WatchOptions{ResourceVersion: start}, func(t watch.EventType, ps *gamev1.PlayerSession) watch.Event {
		return watch.Event{Type: t, Object: ps}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	<-w.ResultChan()
	for i := range 4 * initialPage {
		f.put("other", fmt.Sprintf("q%05d", i), "y", "g", gamev1.PlayerSessionReserved, nil)
	}
	for e := range w.ResultChan() {
		if e.Type == watch.Error {
			if status, ok := e.Object.(*metav1.Status); !ok || status.Code != 410 {
				t.Fatalf("error event %v, want 410", e.Object)
			}
			return
		}
	}
	t.Fatal("the watch ended without an error")
}

// unreadWatches opens n watches of the namespace "big" that nobody reads, and the heap before and after.
func unreadWatches(t *testing.T, f *fixture, opts WatchOptions, n int) (ws []watch.Interface, after, before runtime.MemStats) {
	t.Helper()
	convert := func(t watch.EventType, ps *gamev1.PlayerSession) watch.Event { return watch.Event{Type: t, Object: ps} }
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range n {
		w, err := f.ix.Watch(ctx, Query{Namespace: "big"}, opts, convert)
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, w)
	}
	time.Sleep(100 * time.Millisecond) // let each watch read what it reads before its client takes anything
	runtime.GC()
	runtime.ReadMemStats(&after)
	return ws, after, before
}
