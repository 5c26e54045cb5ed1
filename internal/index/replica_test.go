package index

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/storage"
	clocktesting "k8s.io/utils/clock/testing"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
)

// write is one write of a player session as etcd numbers it; obj nil is a deletion.
type write struct {
	key string
	rv  uint64
	obj *gamev1.PlayerSession
}

func psAt(name, player string, rv uint64) *gamev1.PlayerSession {
	return &gamev1.PlayerSession{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, ResourceVersion: strconv.FormatUint(rv, 10)},
		Spec:       gamev1.PlayerSessionSpec{PlayerID: player, GameSessionName: "g"},
		Status:     gamev1.PlayerSessionStatus{Status: gamev1.PlayerSessionReserved},
	}
}

// history of writes interleaved with writes of other resources (the gaps in the revisions).
func writes() []write {
	var ws []write
	rv := uint64(100)
	for i := range 12 {
		rv += 3
		ws = append(ws, write{obj: psAt(fmt.Sprintf("p%02d", i), "alice", rv)})
	}
	rv += 5
	ws = append(ws, write{obj: psAt("p03", "alice", rv)}) // an update
	rv += 2
	del := psAt("p05", "alice", rv)
	ws = append(ws, write{obj: del, key: "delete"})
	return ws
}

func feed(ix *Index, ws []write) {
	for _, w := range ws {
		if w.key == "delete" {
			ix.Delete(w.obj)
		} else {
			ix.Upsert(w.obj)
		}
	}
}

func newReplica(clk *clocktesting.FakeClock) *Index {
	ix := NewIndex(clk, time.Minute)
	ix.SetFreshnessTimeout(200 * time.Millisecond)
	return ix
}

// TestResourceVersionsAreTheWrites: the resourceVersions a replica hands out are those of the writes it
// indexed, whatever the informer redelivers (resyncs, a relist in another order, a relist that finds an
// object gone), so two replicas that saw the same writes hand out the same numbers for the same contents.
func TestResourceVersionsAreTheWrites(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	ws := writes()
	a, b := newReplica(clk), newReplica(clk)
	feed(a, ws)

	// b saw the same writes, plus a resync of all and a relist that delivers them in reverse order.
	feed(b, ws[:len(ws)-1])
	for i := len(ws) - 2; i >= 0; i-- {
		b.Upsert(ws[i].obj)
	}
	// The relist finds p05 gone and hands over its last known state (DeletedFinalStateUnknown).
	b.Delete(psAt("p05", "alice", 118))

	last := uint64(0)
	for _, w := range ws {
		last = max(last, mustRV(t, w.obj))
	}
	if a.RV() != last {
		t.Errorf("replica a is at %d, want the last write's %d", a.RV(), last)
	}
	// b never saw p05's deletion revision: it records the deletion in its newest snapshot, not at a
	// number of its own.
	if b.RV() != mustRV(t, ws[len(ws)-2].obj) {
		t.Errorf("replica b is at %d, want %d (the newest write it saw)", b.RV(), mustRV(t, ws[len(ws)-2].obj))
	}
	pa, _ := a.List(ctx, Query{}, ListOptions{}, nil)
	pb, _ := b.List(ctx, Query{}, ListOptions{}, nil)
	if !slices.Equal(names(pa.Items), names(pb.Items)) || slices.Contains(names(pb.Items), "ns/p05") {
		t.Errorf("a lists %v, b lists %v", names(pa.Items), names(pb.Items))
	}
	for _, ps := range pb.Items {
		if got := a.Get(ps.Namespace, ps.Name); got.ResourceVersion != ps.ResourceVersion {
			t.Errorf("%s is at %s on a, %s on b", ps.Name, got.ResourceVersion, ps.ResourceVersion)
		}
	}

	// An older version delivered late (an out-of-order relist) never replaces a newer one.
	b.Upsert(psAt("p03", "bob", 110))
	if got := b.Get("ns", "p03"); got.Spec.PlayerID != "alice" {
		t.Errorf("an older version replaced the newer one: %+v", got.Spec)
	}
}

func mustRV(t *testing.T, ps *gamev1.PlayerSession) uint64 {
	t.Helper()
	rv, err := ParseRV(ps.ResourceVersion)
	if err != nil {
		t.Fatal(err)
	}
	return rv
}

// TestPagingAcrossReplicas: a continue token from one replica pages on another that shares the key, from
// the same snapshot; on a replica that is behind the token, the page waits for the index to catch up or
// fails as kube-apiserver does for a too-new resourceVersion, never answering from older data.
func TestPagingAcrossReplicas(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	tokens := NewTokens([]byte("shared"))
	ws := writes()
	a, b := newReplica(clk), newReplica(clk)
	feed(a, ws)
	feed(b, ws)
	q := Query{Fields: map[string]string{FieldPlayerID: "alice"}}

	page, err := a.List(ctx, q, ListOptions{Limit: 4}, tokens)
	if err != nil {
		t.Fatal(err)
	}
	got := names(page.Items)
	b.Upsert(psAt("p08", "bob", 200)) // b moves on: its pages still read a's snapshot, p08 included
	for i := 0; page.Continue != ""; i++ {
		from := []*Index{b, a}[i%2]
		if page, err = from.List(ctx, q, ListOptions{Limit: 4, Continue: page.Continue}, tokens); err != nil {
			t.Fatal(err)
		}
		got = append(got, names(page.Items)...)
	}
	full, _ := a.List(ctx, q, ListOptions{}, tokens)
	if !slices.Equal(got, names(full.Items)) || len(got) != 11 {
		t.Errorf("pages across replicas = %v, want %v", got, names(full.Items))
	}

	// c is behind a's token.
	c := newReplica(clk)
	feed(c, ws[:5])
	first, _ := a.List(ctx, q, ListOptions{Limit: 2}, tokens)
	_, err = c.List(ctx, q, ListOptions{Limit: 2, Continue: first.Continue}, tokens)
	assertTooLarge(t, err)
	if _, err := c.List(ctx, q, ListOptions{ResourceVersion: strconv.FormatUint(a.RV(), 10)}, tokens); !storage.IsTooLargeResourceVersion(err) {
		t.Errorf("a list not older than a's snapshot on c: got %v, want too large", err)
	}

	// c catches up while the request waits: the page is served, from the token's snapshot.
	go func() {
		time.Sleep(20 * time.Millisecond)
		feed(c, ws[5:])
	}()
	next, err := c.List(ctx, q, ListOptions{Limit: 2, Continue: first.Continue}, tokens)
	if err != nil {
		t.Fatalf("after catching up: %v", err)
	}
	if next.RV != first.RV || !slices.Equal(names(next.Items), []string{"ns/p02", "ns/p03"}) {
		t.Errorf("page at %d = %v, want snapshot %d from ns/p02", next.RV, names(next.Items), first.RV)
	}
}

func assertTooLarge(t *testing.T, err error) {
	t.Helper()
	if !storage.IsTooLargeResourceVersion(err) {
		t.Fatalf("got %v, want Too large resource version", err)
	}
	if status := err.(apierrors.APIStatus).Status(); status.Code != http.StatusGatewayTimeout || status.Reason != metav1.StatusReasonTimeout {
		t.Fatalf("status %d %s, want 504 Timeout as kube-apiserver answers", status.Code, status.Reason)
	}
}

// TestListResourceVersion: resourceVersion and resourceVersionMatch as kube-apiserver reads them.
func TestListResourceVersion(t *testing.T) {
	f := newFixture()
	f.seed()
	at := strconv.FormatUint(f.rv, 10)
	f.put("a", "p1", "zed", "g1", gamev1.PlayerSessionActive, nil) // a/p1 leaves alice's sessions
	q := Query{Fields: map[string]string{FieldPlayerID: "alice"}}
	for _, tt := range []struct {
		name  string
		opts  ListOptions
		want  []string
		check func(error) bool
	}{
		{"newest", ListOptions{}, []string{"a/p3", "b/p1"}, nil},
		{"any", ListOptions{ResourceVersion: "0"}, []string{"a/p3", "b/p1"}, nil},
		{"not older than a past snapshot: the newest", ListOptions{ResourceVersion: at}, []string{"a/p3", "b/p1"}, nil},
		{"exactly a past snapshot", ListOptions{ResourceVersion: at, ResourceVersionMatch: metav1.ResourceVersionMatchExact}, []string{"a/p1", "a/p3", "b/p1"}, nil},
		{"not a number", ListOptions{ResourceVersion: "x"}, nil, apierrors.IsBadRequest},
		{"newer than the index", ListOptions{ResourceVersion: strconv.FormatUint(f.rv+10, 10)}, nil, storage.IsTooLargeResourceVersion},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f.ix.SetFreshnessTimeout(50 * time.Millisecond)
			page, err := f.ix.List(ctx, q, tt.opts, f.tokens)
			if tt.check != nil {
				if !tt.check(err) {
					t.Fatalf("got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := names(page.Items); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	t.Run("exact snapshot no longer kept", func(t *testing.T) {
		f.clock.Step(2 * time.Minute)
		f.put("c", "x", "x", "x", "", nil) // compaction runs
		_, err := f.ix.List(ctx, q, ListOptions{ResourceVersion: at, ResourceVersionMatch: metav1.ResourceVersionMatchExact}, f.tokens)
		if !apierrors.IsResourceExpired(err) {
			t.Fatalf("got %v, want 410", err)
		}
	})
}

// TestWatchList: sendInitialEvents=true with resourceVersionMatch=NotOlderThan, as client-go's reflector
// sends it: the state as ADDED events, a bookmark annotated k8s.io/initial-events-end at the snapshot's
// resourceVersion, then the changes.
func TestWatchList(t *testing.T) {
	f := newFixture()
	f.seed()
	f.ix.SetFreshnessTimeout(50 * time.Millisecond)
	q := Query{Fields: map[string]string{FieldPlayerID: "alice"}}
	convert := func(t watch.EventType, ps *gamev1.PlayerSession) watch.Event { return watch.Event{Type: t, Object: ps} }
	yes, no := true, false

	for _, rv := range []string{"", "0", "3"} {
		t.Run("from "+strconv.Quote(rv), func(t *testing.T) {
			w, err := f.ix.Watch(ctx, q, WatchOptions{ResourceVersion: rv, SendInitialEvents: &yes, AllowBookmarks: true}, convert)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Stop()
			snapshot := strconv.FormatUint(f.ix.RV(), 10)
			var added []string
			for {
				e := recv(t, w)
				ps := e.Object.(*gamev1.PlayerSession)
				if e.Type == watch.Bookmark {
					if ps.ResourceVersion != snapshot || ps.Annotations[metav1.InitialEventsAnnotationKey] != "true" {
						t.Fatalf("bookmark %+v, want resourceVersion %s and the initial-events-end annotation", ps.ObjectMeta, snapshot)
					}
					break
				}
				if e.Type != watch.Added {
					t.Fatalf("initial event %s", e.Type)
				}
				added = append(added, ps.Namespace+"/"+ps.Name)
			}
			slices.Sort(added)
			if want := []string{"a/p1", "a/p3", "b/p1"}; !slices.Equal(added, want) {
				t.Fatalf("initial events %v, want %v", added, want)
			}
			f.put("z", "new"+rv, "alice", "g1", gamev1.PlayerSessionReserved, nil)
			if e := recv(t, w); e.Type != watch.Added || e.Object.(*gamev1.PlayerSession).Name != "new"+rv {
				t.Fatalf("after the bookmark: %s %v", e.Type, e.Object)
			}
			f.del("z", "new"+rv)
			if e := recv(t, w); e.Type != watch.Deleted {
				t.Fatalf("got %s", e.Type)
			}
		})
	}

	t.Run("without bookmarks: no bookmark", func(t *testing.T) {
		w, err := f.ix.Watch(ctx, q, WatchOptions{SendInitialEvents: &yes}, convert)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		for range 3 {
			if e := recv(t, w); e.Type != watch.Added {
				t.Fatalf("got %s", e.Type)
			}
		}
		select {
		case e := <-w.ResultChan():
			t.Fatalf("unexpected %s", e.Type)
		case <-time.After(50 * time.Millisecond):
		}
	})

	t.Run("sendInitialEvents=false from a resourceVersion: only changes", func(t *testing.T) {
		from := strconv.FormatUint(f.ix.RV(), 10)
		w, err := f.ix.Watch(ctx, q, WatchOptions{ResourceVersion: from, SendInitialEvents: &no, AllowBookmarks: true}, convert)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		f.put("a", "p3", "alice", "g2", gamev1.PlayerSessionTimedOut, nil)
		if e := recv(t, w); e.Type != watch.Modified || e.Object.(*gamev1.PlayerSession).Name != "p3" {
			t.Fatalf("got %s %v", e.Type, e.Object)
		}
	})

	t.Run("newer than the index", func(t *testing.T) {
		_, err := f.ix.Watch(ctx, q, WatchOptions{ResourceVersion: strconv.FormatUint(f.ix.RV()+1, 10), SendInitialEvents: &yes, AllowBookmarks: true}, convert)
		assertTooLarge(t, err)
	})
}

func recv(t *testing.T, w watch.Interface) watch.Event {
	t.Helper()
	select {
	case e, ok := <-w.ResultChan():
		if !ok {
			t.Fatal("watch closed")
		}
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
	}
	return watch.Event{}
}
