package search

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
)

// TestListMatchesScan: the query API's lists (any status, any fleet, a name, labels, a filter), paged 1, 7
// and 50 at a time, give exactly what selecting from every game session and sorting by creation time, id
// and UID gives.
func TestListMatchesScan(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	all := fleetOf(r, 200)
	for i, gs := range all {
		gs.ResourceVersion = fmt.Sprint(i + 1)
		if i%3 == 0 {
			gs.Labels = map[string]string{"tier": "gold"}
		}
		if i%50 == 0 {
			gs.Status.GameSessionID = "" // not initialised yet
		}
	}
	ix := indexOf(all)
	available, _ := ParseFilter("hasAvailablePlayerSessions = true AND gameSessionProperties.gameMode = 'brawl'")
	gold, _ := labels.Parse("tier=gold")
	for _, q := range []ListQuery{
		{},
		{Namespace: "ns"},
		{Namespace: "ns", FleetID: "fleet-1"},
		{Namespace: "ns", Status: gamev1.GameSessionActive},
		{Namespace: "ns", Status: gamev1.GameSessionTerminated},
		{Namespace: "ns", FleetID: "fleet-2", Filter: available},
		{Namespace: "other", Labels: gold},
		{Namespace: "ns", Name: "fleet-1-gs-17"},
	} {
		var want []string
		for _, gs := range all {
			if q.Matches(gs) {
				want = append(want, gs.Namespace+"/"+gs.Name)
			}
		}
		slices.SortFunc(want, func(a, b string) int {
			x, y := byKey(all, a), byKey(all, b)
			ex, ey := SessionOf(x), SessionOf(y)
			return cmp.Or(cmp.Compare(ex.CreationTimeMillis, ey.CreationTimeMillis), strings.Compare(ex.ID, ey.ID), strings.Compare(string(x.UID), string(y.UID)))
		})
		for _, limit := range []int{1, 7, 50, 0} {
			q.Limit, q.After = limit, nil
			var got []string
			for range 1000 {
				page, next, rv := ix.List(q)
				if rv != uint64(len(all)) {
					t.Fatalf("rv %d", rv)
				}
				if limit > 0 && len(page) > limit {
					t.Fatalf("a page of %d", len(page))
				}
				for _, gs := range page {
					got = append(got, gs.Namespace+"/"+gs.Name)
				}
				if next == nil {
					break
				}
				q.After = next
			}
			if !slices.Equal(got, want) {
				t.Errorf("%+v, %d per page:\n got  %v\n want %v", q, limit, got, want)
			}
		}
	}
}

func byKey(all []*gamev1.GameSession, key string) *gamev1.GameSession {
	for _, gs := range all {
		if gs.Namespace+"/"+gs.Name == key {
			return gs
		}
	}
	return nil
}

// TestWatchReplaysAndExpires: a watch from a resourceVersion first gets the changes the index kept after it,
// then the new ones; one from a resourceVersion whose changes are no longer kept is refused.
func TestWatchReplaysAndExpires(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	ix := NewIndex()
	gs := randomGS(r, "ns", "fleet-1", 1)
	for rv := 1; rv <= 3; rv++ {
		gs = gs.DeepCopy()
		gs.ResourceVersion = fmt.Sprint(rv)
		ix.Upsert(gs)
	}
	w, replay, now, ok := ix.Watch(1)
	if !ok || now != 3 || len(replay) != 2 || replay[0].RV != 2 || replay[0].Type != watch.Modified {
		t.Fatalf("replay %+v now %d ok %v", replay, now, ok)
	}
	gone := gs.DeepCopy()
	gone.ResourceVersion = "4"
	ix.Delete(gone)
	if e := <-w.Events(); e.Type != watch.Deleted || e.RV != 4 {
		t.Errorf("got %+v", e)
	}
	w.Stop()
	for rv := 5; rv <= 5+maxEvents; rv++ {
		gs = gs.DeepCopy()
		gs.ResourceVersion = fmt.Sprint(rv)
		ix.Upsert(gs)
	}
	if _, _, _, ok := ix.Watch(2); ok {
		t.Error("a watch from a resourceVersion whose changes are gone is served")
	}
	if _, replay, _, ok := ix.Watch(uint64(5 + maxEvents - 1)); !ok || len(replay) != 1 {
		t.Errorf("a recent resourceVersion: ok %v, %d replayed", ok, len(replay))
	}
}

// TestRelistLosesNoChange: a relist delivers game-a at 30 before game-b at 20. A list taken between the two
// answers with the resourceVersion before the relist, and a watch from it sees both changes, in revision
// order; after the relist the index is at the newest write the relist brought.
func TestRelistLosesNoChange(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 9))
	at := func(name string, rv int) *gamev1.GameSession {
		gs := randomGS(r, "ns", "fleet-1", rv)
		gs.Name, gs.ResourceVersion = name, fmt.Sprint(rv)
		gs.UID = types.UID(name)
		return gs
	}
	ix := NewIndex()
	ix.Upsert(at("game-a", 10))
	ix.Relists().BeginRelist()
	ix.Relists().Relisted(map[string]uint64{"ns/game-a": 30, "ns/game-b": 20}, 40)
	ix.Upsert(at("game-a", 30))
	_, _, listRV := ix.List(ListQuery{})
	if listRV != 10 || !ix.Relisting() {
		t.Fatalf("mid-relist a list answers at %d (relisting %v), want 10", listRV, ix.Relisting())
	}
	w, replay, _, ok := ix.Watch(listRV)
	if !ok || len(replay) != 0 {
		t.Fatalf("watch from %d: ok %v, replay %+v", listRV, ok, replay)
	}
	defer w.Stop()
	ix.Upsert(at("game-b", 20))
	var got []string
	for range 2 {
		e := <-w.Events()
		got = append(got, fmt.Sprintf("%s@%s/%d", e.New.Name, e.New.ResourceVersion, e.RV))
	}
	if want := []string{"game-b@20/20", "game-a@30/30"}; !slices.Equal(got, want) {
		t.Errorf("the watch saw %v, want %v", got, want)
	}
	if _, _, rv := ix.List(ListQuery{}); rv != 30 || ix.Relisting() {
		t.Errorf("after the relist the index is at %d (relisting %v), want 30 (the newest write it brought)", rv, ix.Relisting())
	}
}
