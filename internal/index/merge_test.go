package index

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/internal/history"
)

// fakeHistory is a history tier in memory, in key order, that counts the questions it is asked.
type fakeHistory struct {
	recs  []history.Record
	calls int
}

func (h *fakeHistory) archive(t *testing.T, ns, name, player, game string) {
	t.Helper()
	ps := &gamev1.PlayerSession{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       gamev1.PlayerSessionSpec{PlayerID: player, GameSessionName: game},
		Status: gamev1.PlayerSessionStatus{Status: gamev1.PlayerSessionCompleted,
			PlayerSessionID: "psess-" + ns + "-" + name, GameSessionID: "gsid-" + ns + "-" + game},
	}
	obj, err := json.Marshal(ps)
	if err != nil {
		t.Fatal(err)
	}
	h.recs = append(h.recs, history.Record{Namespace: ns, Name: name, PlayerSessionID: ps.Status.PlayerSessionID,
		GameSessionID: ps.Status.GameSessionID, PlayerID: player, Status: string(ps.Status.Status), Object: obj})
	slices.SortFunc(h.recs, func(a, b history.Record) int {
		return strings.Compare(Key(a.Namespace, a.Name), Key(b.Namespace, b.Name))
	})
}

func (h *fakeHistory) List(_ context.Context, q history.Query, after history.Key, limit int) ([]history.Record, error) {
	h.calls++
	var out []history.Record
	for _, r := range h.recs {
		switch {
		case Key(r.Namespace, r.Name) <= Key(after.Namespace, after.Name) && after != (history.Key{}),
			q.Namespace != "" && r.Namespace != q.Namespace,
			q.PlayerSessionID != "" && r.PlayerSessionID != q.PlayerSessionID,
			q.GameSessionID != "" && r.GameSessionID != q.GameSessionID,
			q.PlayerID != "" && r.PlayerID != q.PlayerID:
			continue
		}
		if out = append(out, r); limit > 0 && len(out) == limit {
			break
		}
	}
	return out, nil
}

func TestListAllMergesBothTiers(t *testing.T) {
	f := newFixture()
	f.seed() // live: a/p1 alice, a/p2 bob, a/p3 alice, b/p1 alice, b/p4 carol (waiting)
	h := &fakeHistory{}
	h.archive(t, "a", "p0", "alice", "g0")
	h.archive(t, "a", "p3", "alice", "g2") // archived, not yet deleted: answered once, from the live tier
	h.archive(t, "a", "p9", "alice", "g0")
	h.archive(t, "a", "p5", "bob", "g0")

	for _, tc := range []struct {
		name      string
		fields    map[string]string
		want      []string
		wantCalls int
	}{
		{"a player in both tiers", map[string]string{FieldPlayerID: "alice"}, []string{"a/p0", "a/p1", "a/p3", "a/p9"}, 1},
		{"a game session only in the store", map[string]string{FieldGameSessionID: "gsid-a-g0"}, []string{"a/p0", "a/p5", "a/p9"}, 1},
		{"a live player session id: the store is not asked", map[string]string{FieldPlayerSessionID: "psess-a-p1"}, []string{"a/p1"}, 0},
		{"a live player session id also archived: once, not asked", map[string]string{FieldPlayerSessionID: "psess-a-p3"}, []string{"a/p3"}, 0},
		{"an archived player session id", map[string]string{FieldPlayerSessionID: "psess-a-p9"}, []string{"a/p9"}, 1},
		{"an unknown player session id", map[string]string{FieldPlayerSessionID: "psess-a-nobody"}, nil, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.calls = 0
			page, err := f.ix.ListAll(ctx, Query{Namespace: "a", Fields: tc.fields}, ListOptions{}, f.tokens, h)
			if err != nil {
				t.Fatal(err)
			}
			if got := names(page.Items); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			if h.calls != tc.wantCalls {
				t.Errorf("the store was asked %d times, want %d", h.calls, tc.wantCalls)
			}
		})
	}
}

func TestListAllPagesAcrossTiers(t *testing.T) {
	f := newFixture()
	f.seed()
	h := &fakeHistory{}
	h.archive(t, "a", "p0", "alice", "g0")
	h.archive(t, "a", "p3", "alice", "g2")
	h.archive(t, "a", "p9", "alice", "g0")
	q := Query{Namespace: "a", Fields: map[string]string{FieldPlayerID: "alice"}}
	var got []string
	opts := ListOptions{Limit: 1}
	for range 10 {
		page, err := f.ix.ListAll(ctx, q, opts, f.tokens, h)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, names(page.Items)...)
		if page.Continue == "" {
			break
		}
		opts.Continue = page.Continue
	}
	if want := []string{"a/p0", "a/p1", "a/p3", "a/p9"}; !slices.Equal(got, want) {
		t.Errorf("pages of one: %v, want %v", got, want)
	}
}

// TestListReturnsEverythingOrSaysSo: a list either returns every matching player session or says there is
// more with a continue token, whatever the limit (none, small, larger than a page, the largest int64) and
// with more records in each tier than any batch the index or the store reads at once (the store's
// batches are of 100, a page at most MaxPageSize). Before the fix, a list without a limit returned 100
// archived records and no token.
func TestListReturnsEverythingOrSaysSo(t *testing.T) {
	for _, tc := range []struct {
		name          string
		live, archive int
	}{
		{"151 archived, none live (the reported case)", 0, 151},
		{"more of each than a page", 1234, 2345},
		{"live only, more than a page", 2222, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture()
			h := &fakeHistory{}
			var want []string
			for i := range tc.live {
				name := fmt.Sprintf("live-%05d", i)
				f.put("ns", name, "alice", "g", gamev1.PlayerSessionActive, nil)
				want = append(want, "ns/"+name)
			}
			for i := range tc.archive {
				name := fmt.Sprintf("old-%05d", i)
				h.archive(t, "ns", name, "alice", "g")
				want = append(want, "ns/"+name)
			}
			slices.Sort(want)
			for _, limit := range []int64{0, 7, 100, MaxPageSize, MaxPageSize + 1, math.MaxInt64} {
				for _, q := range []Query{{Namespace: "ns"}, {Namespace: "ns", Fields: map[string]string{FieldPlayerID: "alice"}}} {
					var got []string
					opts := ListOptions{Limit: limit}
					for pages := 0; ; pages++ {
						if pages > len(want)+1 {
							t.Fatalf("limit %d: no end", limit)
						}
						page, err := f.ix.ListAll(ctx, q, opts, f.tokens, h)
						if err != nil {
							t.Fatal(err)
						}
						if int64(len(page.Items)) > PageSize(limit) {
							t.Fatalf("limit %d: a page of %d, more than %d", limit, len(page.Items), PageSize(limit))
						}
						got = append(got, names(page.Items)...)
						if page.Continue == "" {
							break
						}
						opts.Continue = page.Continue
					}
					if !slices.Equal(got, want) {
						t.Fatalf("limit %d, %v: %d items (first %v), want all %d once, in order", limit, q.Fields, len(got), got[:min(3, len(got))], len(want))
					}
				}
			}
		})
	}
}
