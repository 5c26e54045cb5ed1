package gamelift

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/internal/history"
	"github.com/playersessions/operator/internal/index"
)

func gameSession(name, id string, status gamev1.GameSessionStatusValue) *gamev1.GameSession {
	gs := &gamev1.GameSession{ObjectMeta: metav1.ObjectMeta{Name: name}}
	gs.Status.GameSessionID, gs.Status.Status = id, status
	return gs
}

// TestPageGameSessions pages DescribeGameSessions by fleet over both tiers: every game session exactly once
// whatever the page size, including a name reused by a live game session after an archived one ended.
func TestPageGameSessions(t *testing.T) {
	live := []*gamev1.GameSession{
		gameSession("arena", "gs-9", gamev1.GameSessionActive), // the name reused after gs-1 ended
		gameSession("cove", "gs-3", gamev1.GameSessionActive),
		gameSession("dune", "gs-4", gamev1.GameSessionTerminated), // ended, archived, not yet deleted
		gameSession("fresh", "", gamev1.GameSessionActivating),    // no id yet: not listed
	}
	archived := []*gamev1.GameSession{
		gameSession("arena", "gs-1", gamev1.GameSessionTerminated),
		gameSession("bay", "gs-2", gamev1.GameSessionTerminated),
		gameSession("dune", "gs-4", gamev1.GameSessionTerminated),
	}
	for _, tc := range []struct {
		name   string
		status string
		want   []string
	}{
		{name: "all", want: []string{"gs-1", "gs-9", "gs-2", "gs-3", "gs-4"}},
		{name: "TERMINATED", status: "TERMINATED", want: []string{"gs-1", "gs-2", "gs-4"}},
		{name: "ACTIVE", status: "ACTIVE", want: []string{"gs-9", "gs-3"}},
	} {
		for _, limit := range []int{0, 1, 2, 3, 10} {
			var got []string
			var after history.GameSessionKey
			for pages := 0; ; pages++ {
				if pages > 10 {
					t.Fatalf("%s, limit %d: no end", tc.name, limit)
				}
				// The store answers after the token's key, as ListGameSessions does.
				var rest []*gamev1.GameSession
				for _, gs := range archived {
					if compareKeys(keyOf(gs), after) > 0 {
						rest = append(rest, gs)
					}
				}
				page, last, more := pageGameSessions(live, rest, after, tc.status, limit)
				if limit > 0 && len(page) > limit {
					t.Fatalf("%s, limit %d: page of %d", tc.name, limit, len(page))
				}
				for _, gs := range page {
					got = append(got, gs.Status.GameSessionID)
				}
				if !more {
					break
				}
				// The token round-trips through its string form.
				after = parseGameSessionKey(last.Name + "/" + last.GameSessionID)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%s, limit %d: got %v, want %v", tc.name, limit, got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("%s, limit %d: got %v, want %v", tc.name, limit, got, tc.want)
				}
			}
		}
	}
}

// fakeGameSessionHistory is DescribeGameSessions' history tier in memory, in key order.
type fakeGameSessionHistory struct{ recs []history.GameSessionRecord }

func (h *fakeGameSessionHistory) ListGameSessions(_ context.Context, q history.GameSessionQuery, after history.GameSessionKey, limit int) ([]history.GameSessionRecord, error) {
	return upTo(h.recs, limit, func(r history.GameSessionRecord) bool {
		return r.Namespace == q.Namespace && (q.FleetID == "" || r.FleetID == q.FleetID) && compareKeys(history.GameSessionKey{Name: r.Name, GameSessionID: r.GameSessionID}, after) > 0
	}), nil
}

// upTo returns the first limit (0: all) records that keep accepts, in order, as the store reads them.
func upTo[R any](recs []R, limit int, keep func(R) bool) []R {
	var out []R
	for _, r := range recs {
		if !keep(r) {
			continue
		}
		if out = append(out, r); limit > 0 && len(out) == limit {
			break
		}
	}
	return out
}

// TestDescribeGameSessionsReturnsEverythingOrSaysSo: DescribeGameSessions by fleet, over more game sessions
// in each tier than a page holds, returns every one once, in pages of at most index.MaxPageSize, whatever
// the Limit (none, or the largest int32), with a NextToken while there is more. Before, a call without a
// Limit read every archived game session of the fleet in one SQL statement without LIMIT.
func TestDescribeGameSessionsReturnsEverythingOrSaysSo(t *testing.T) {
	s := fakeServer(t)
	h := &fakeGameSessionHistory{}
	s.GameSessionHistory = h
	ctx := context.Background()
	var want []string
	for i := range 1100 {
		gs := gameSession(fmt.Sprintf("live-%05d", i), fmt.Sprintf("gs-live-%05d", i), gamev1.GameSessionActive)
		gs.Namespace, gs.Spec.FleetID = "tenant", "fleet-big"
		if err := s.Client.Create(ctx, gs); err != nil { // the fake API server keeps the status as given
			t.Fatal(err)
		}
		want = append(want, gs.Status.GameSessionID)
	}
	for i := range 1300 {
		gs := gameSession(fmt.Sprintf("old-%05d", i), fmt.Sprintf("gs-old-%05d", i), gamev1.GameSessionTerminated)
		gs.Namespace, gs.Spec.FleetID = "tenant", "fleet-big"
		obj, _ := json.Marshal(gs)
		h.recs = append(h.recs, history.GameSessionRecord{Namespace: "tenant", Name: gs.Name, GameSessionID: gs.Status.GameSessionID,
			FleetID: "fleet-big", Status: "TERMINATED", Object: obj})
		want = append(want, gs.Status.GameSessionID)
	}
	slices.Sort(want) // live-* before old-*: name order
	for _, limit := range []*int32{nil, ptr.To[int32](333), ptr.To[int32](math.MaxInt32)} {
		in := &describeGameSessionsInput{FleetId: "fleet-big", Limit: limit}
		got := allPages(t, func(token string) ([]string, string) {
			in.NextToken = token
			out, aerr := s.describeGameSessions(ctx, "tenant", in)
			if aerr != nil {
				t.Fatal(aerr)
			}
			page := out.(describeGameSessionsOutput)
			var ids []string
			for _, gs := range page.GameSessions {
				ids = append(ids, gs.GameSessionId)
			}
			return ids, page.NextToken
		})
		if !slices.Equal(got, want) {
			t.Fatalf("limit %v: %d game sessions, want all %d once, in order", limit, len(got), len(want))
		}
	}
}

// fakePlayerSessionHistory is DescribePlayerSessions' history tier in memory, in key order, read in the
// store's way (at most limit records after the key).
type fakePlayerSessionHistory struct{ recs []history.Record }

func (h *fakePlayerSessionHistory) List(_ context.Context, q history.Query, after history.Key, limit int) ([]history.Record, error) {
	return upTo(h.recs, limit, func(r history.Record) bool {
		return r.Namespace == q.Namespace && (q.PlayerID == "" || r.PlayerID == q.PlayerID) && index.Key(r.Namespace, r.Name) > index.Key(after.Namespace, after.Name)
	}), nil
}

// TestDescribePlayerSessionsReturnsEverythingOrSaysSo: DescribePlayerSessions by player, over more live
// player sessions than a page and more archived ones than the store's batch of 100, returns every one
// once, in pages, with or without a Limit. Before, without a Limit it returned 100 archived ones and no
// NextToken.
func TestDescribePlayerSessionsReturnsEverythingOrSaysSo(t *testing.T) {
	s := fakeServer(t)
	h := &fakePlayerSessionHistory{}
	s.History = h
	var want []string
	ps := func(name string, status gamev1.PlayerSessionStatusValue, rv int) *gamev1.PlayerSession {
		return &gamev1.PlayerSession{
			ObjectMeta: metav1.ObjectMeta{Namespace: "tenant", Name: name, ResourceVersion: fmt.Sprint(rv)},
			Spec:       gamev1.PlayerSessionSpec{PlayerID: "alice", GameSessionName: "g"},
			Status:     gamev1.PlayerSessionStatus{Status: status, PlayerSessionID: "psess-" + name, GameSessionID: "gsid"},
		}
	}
	for i := range 1200 {
		p := ps(fmt.Sprintf("live-%05d", i), gamev1.PlayerSessionActive, i+1)
		s.Index.Upsert(p)
		want = append(want, p.Status.PlayerSessionID)
	}
	for i := range 150 {
		p := ps(fmt.Sprintf("old-%05d", i), gamev1.PlayerSessionCompleted, 0)
		obj, _ := json.Marshal(p)
		h.recs = append(h.recs, history.Record{Namespace: "tenant", Name: p.Name, PlayerSessionID: p.Status.PlayerSessionID,
			GameSessionID: "gsid", PlayerID: "alice", Status: "COMPLETED", Object: obj})
		want = append(want, p.Status.PlayerSessionID)
	}
	slices.Sort(want)
	for _, limit := range []*int32{nil, ptr.To[int32](77), ptr.To[int32](math.MaxInt32)} {
		in := &describePlayerSessionsInput{PlayerId: "alice", Limit: limit}
		got := allPages(t, func(token string) ([]string, string) {
			in.NextToken = token
			out, aerr := s.describePlayerSessions(context.Background(), "tenant", in)
			if aerr != nil {
				t.Fatal(aerr)
			}
			page := out.(describePlayerSessionsOutput)
			var ids []string
			for _, p := range page.PlayerSessions {
				ids = append(ids, p.PlayerSessionId)
			}
			return ids, page.NextToken
		})
		if !slices.Equal(got, want) {
			t.Fatalf("limit %v: %d player sessions, want all %d once, in order", limit, len(got), len(want))
		}
	}
}

// allPages reads every page that page answers, from the first (an empty token) while it returns a next
// token, and returns their ids in order. A page larger than index.MaxPageSize, or more pages than a
// thousand items each would need, fails the test.
func allPages(t *testing.T, page func(token string) (ids []string, next string)) []string {
	t.Helper()
	var all []string
	token := ""
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatal("no end")
		}
		ids, next := page(token)
		if len(ids) > index.MaxPageSize {
			t.Fatalf("a page of %d", len(ids))
		}
		all = append(all, ids...)
		if next == "" {
			return all
		}
		token = next
	}
}

// TestRecordUpdate: the served-updates annotation refuses a request already there (on any replica, since it
// is on the object), forgets requests whose signatures have expired, and bounds its size.
func TestRecordUpdate(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	s := &Server{Clock: clk}
	call := func(sig string, signedAt time.Time) caller {
		return caller{keyID: "AKID", namespace: "tenant", signature: sig, signedAt: signedAt}
	}
	gs := gameSession("arena", "gs-1", gamev1.GameSessionActive)
	for _, tc := range []struct {
		name    string
		advance time.Duration
		who     caller
		want    string // the error type, "" when recorded
		entries int
	}{
		{"first", 0, call("a", t0), "", 1},
		{"another", 0, call("b", t0), "", 2},
		{"a replay", time.Minute, call("a", t0), UnauthorizedException, 2},
		{"signed in the future, within the skew", 0, call("c", t0.Add(4*time.Minute)), "", 3},
		{"a and b expired, c kept", 5 * time.Minute, call("d", t0.Add(6*time.Minute)), "", 2},
		// Everything expired: c is forgotten (authenticate refuses a signature this old before it gets here).
		{"all expired", 5 * time.Minute, call("c", t0.Add(4*time.Minute)), "", 1},
	} {
		clk.Step(tc.advance)
		err := s.recordUpdate(gs, tc.who)
		got := ""
		if err != nil {
			got = err.Type
		}
		if got != tc.want || len(strings.Fields(gs.Annotations[ServedUpdatesAnnotation])) != tc.entries {
			t.Errorf("%s: error %q, annotation %q; want error %q and %d entries", tc.name, got, gs.Annotations[ServedUpdatesAnnotation], tc.want, tc.entries)
		}
	}
	for i := range maxServedUpdates {
		if err := s.recordUpdate(gs, call(fmt.Sprint("many-", i), clk.Now())); err != nil && i < maxServedUpdates-2 {
			t.Fatalf("update %d: %v", i, err)
		}
	}
	if err := s.recordUpdate(gs, call("one too many", clk.Now())); err == nil || err.Type != ThrottlingException {
		t.Errorf("beyond %d updates within 5 minutes: %v, want ThrottlingException", maxServedUpdates, err)
	}
	if n := len(gs.Annotations[ServedUpdatesAnnotation]); n > maxServedUpdates*40 {
		t.Errorf("the annotation grew to %d bytes", n)
	}
}
