package search

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
)

// fleetOf makes n game sessions of fleet-1 in namespace ns with attributes from small domains (so that
// equalities, ties of every order and missing properties are common), a few of them not searchable, and
// the same number in another fleet and another namespace (which no search of fleet-1 in ns may return).
func fleetOf(r *rand.Rand, n int) []*gamev1.GameSession {
	var out []*gamev1.GameSession
	for _, where := range []struct{ ns, fleet string }{{"ns", "fleet-1"}, {"ns", "fleet-2"}, {"other", "fleet-1"}} {
		for i := range n {
			out = append(out, randomGS(r, where.ns, where.fleet, i))
		}
	}
	return out
}

func randomGS(r *rand.Rand, ns, fleet string, i int) *gamev1.GameSession {
	max := []int32{0, 2, 4, 8}[r.IntN(4)]
	gs := &gamev1.GameSession{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprint(fleet, "-gs-", i), UID: types.UID(fmt.Sprint(ns, "/", fleet, "/", i))},
		Spec: gamev1.GameSessionSpec{FleetID: fleet, Name: []string{"a", "b", "a'b", ""}[r.IntN(4)], MaximumPlayerSessionCount: max,
			PlayerSessionCreationPolicy: []gamev1.PlayerSessionCreationPolicy{gamev1.PlayerSessionCreationPolicyAcceptAll, gamev1.PlayerSessionCreationPolicyAcceptAll, gamev1.PlayerSessionCreationPolicyDenyAll}[r.IntN(3)]},
		Status: gamev1.GameSessionStatus{Status: gamev1.GameSessionActive, GameSessionID: fmt.Sprintf("arn:aws:gamelift:local::gamesession/%s/gsess-%03d", fleet, i),
			CurrentPlayerSessionCount: r.Int32N(max + 1), CreationTime: &metav1.MicroTime{Time: time.UnixMilli(1000 + r.Int64N(8))}},
	}
	if r.IntN(10) == 0 {
		gs.Status.Status = []gamev1.GameSessionStatusValue{gamev1.GameSessionActivating, gamev1.GameSessionTerminated}[r.IntN(2)]
	}
	for _, p := range []struct {
		key    string
		values []string
	}{{"gameMode", []string{"brawl", "ranked"}}, {"difficulty", []string{"novice", "expert", "b"}}} {
		if r.IntN(3) > 0 {
			gs.Spec.GameProperties = append(gs.Spec.GameProperties, gamev1.GameProperty{Key: p.key, Value: p.values[r.IntN(len(p.values))]})
		}
	}
	return gs
}

// Scan answers q by reading every game session of the fleet (the brute force the index is tested against).
func (ix *Index) Scan(q Query) Result {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	f := ix.fleets[fleetKey{q.Namespace, q.FleetID, gamev1.GameSessionActive}]
	if f == nil {
		return Result{}
	}
	var matched []*entry
	f.all.Ascend(func(e *entry) bool {
		if (q.Filter == nil || q.Filter.Match(&e.s)) && searchable(e) {
			matched = append(matched, e)
		}
		return true
	})
	r, _ := pageOf(matched, orderOf(q.Sort), q.After, max(q.Limit, 1), f.all.Len())
	return r
}

func indexOf(sessions []*gamev1.GameSession) *Index {
	ix := NewIndex()
	for _, gs := range sessions {
		ix.Upsert(gs)
	}
	return ix
}

// pages reads every page of q (limit per page) with search, and says what each page held and how it ended.
func pages(search func(Query) Result, q Query, limit int) []string {
	q.Limit, q.After = limit, nil
	var out []string
	for range 1000 {
		r := search(q)
		var ids []string
		for _, gs := range r.GameSessions {
			ids = append(ids, strings.TrimPrefix(gs.Status.GameSessionID, "arn:aws:gamelift:local::gamesession/"))
		}
		out = append(out, strings.Join(ids, ","))
		if r.Next == nil {
			return out
		}
		q.After = r.Next
	}
	return append(out, "(did not end)")
}

// searchCases are the documented examples, every operand and comparator, the precedence cases, and sorts
// by every operand both ways (a property's: the game sessions without it last).
var searchCases = []struct{ filter, sort string }{
	{"", ""},
	{"maximumSessions>=10 AND hasAvailablePlayerSessions=true", ""},
	{"gameSessionProperties.gameMode = 'brawl' AND playerSessionCount < 4", ""},
	{`gameSessionProperties.difficulty = "novice"`, "creationTimeMillis DESC"},
	{"hasAvailablePlayerSessions=true", ""},
	{"hasAvailablePlayerSessions=true", "playerSessionCount ASC"},
	{"hasAvailablePlayerSessions=false", "maximumSessions DESC"},
	{"hasAvailablePlayerSessions<>true", ""},
	{`gameSessionName = 'a\'b'`, ""},
	{"gameSessionName = 'a'", "gameSessionName ASC"},
	{"gameSessionName <> 'b' AND hasAvailablePlayerSessions = true", "gameSessionName DESC"},
	{"gameSessionName <> ''", "gameSessionId DESC"},
	{"gameSessionId = 'arn:aws:gamelift:local::gamesession/fleet-1/gsess-007'", ""},
	{"gameSessionId = 'arn:aws:gamelift:local::gamesession/fleet-2/gsess-007'", ""},
	{"gameSessionId <> 'arn:aws:gamelift:local::gamesession/fleet-1/gsess-100'", "gameSessionId ASC"},
	{"playerSessionCount = 0", "creationTimeMillis ASC"},
	{"playerSessionCount > 2", "playerSessionCount ASC"},
	{"playerSessionCount >= 2 AND playerSessionCount <= 4", "playerSessionCount DESC"},
	{"maximumSessions = 8 AND playerSessionCount < 8", ""},
	{"maximumSessions <> 0", "hasAvailablePlayerSessions DESC"},
	{"creationTimeMillis > 1003", ""},
	{"creationTimeMillis <= 1001", "creationTimeMillis DESC"},
	{"gameSessionProperties.gameMode = 'ranked' OR gameSessionProperties.difficulty = 'expert'", ""},
	{"NOT gameSessionProperties.gameMode = 'ranked'", "gameSessionProperties.gameMode ASC"},
	{"gameSessionProperties.gameMode <> 'ranked'", "gameSessionProperties.difficulty DESC"},
	{"gameSessionProperties.difficulty = 'b'", "gameSessionProperties.difficulty ASC"},
	{"gameSessionProperties.nothing = 'x'", ""},
	{"", "gameSessionProperties.nothing DESC"},
	{"", "gameSessionProperties.gameMode DESC"},
	{"playerSessionCount = 4 OR playerSessionCount = 0 AND maximumSessions = 4", ""},
	{"(playerSessionCount = 4 OR playerSessionCount = 0) AND maximumSessions = 8", "gameSessionName ASC"},
	{"NOT playerSessionCount = 4 AND maximumSessions > 2", ""},
	{"playerSessionCount > 9223372036854775807", ""},
}

func parse(t testing.TB, filter, sort string) (Expr, *Sort) {
	t.Helper()
	var e Expr
	var s *Sort
	if filter != "" {
		var err error
		if e, err = ParseFilter(filter); err != nil {
			t.Fatalf("%q: %v", filter, err)
		}
	}
	if sort != "" {
		v, err := ParseSort(sort)
		if err != nil {
			t.Fatalf("%q: %v", sort, err)
		}
		s = &v
	}
	return e, s
}

// TestSearchMatchesScan: every case, paged 1, 3 and 20 at a time, gives exactly the pages of a brute-force
// scan, before and after the fleet changes (seats taken and freed, game sessions ended, deleted, created,
// their policy and properties changed).
func TestSearchMatchesScan(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	all := fleetOf(r, 300)
	ix := indexOf(all)
	check := func(t *testing.T) {
		for _, tc := range searchCases {
			e, s := parse(t, tc.filter, tc.sort)
			q := Query{Namespace: "ns", FleetID: "fleet-1", Filter: e, Sort: s}
			for _, limit := range []int{1, 3, 20} {
				got, want := pages(ix.Search, q, limit), pages(ix.Scan, q, limit)
				if !slices.Equal(got, want) {
					t.Errorf("%q sorted %q, %d per page:\n got  %q\n want %q", tc.filter, tc.sort, limit, got, want)
				}
			}
		}
	}
	t.Run("as created", check)
	for i, gs := range all {
		switch gs = gs.DeepCopy(); r.IntN(6) {
		case 0:
			gs.Status.CurrentPlayerSessionCount = r.Int32N(gs.Spec.MaximumPlayerSessionCount + 1)
		case 1:
			gs.Status.Status = gamev1.GameSessionTerminated
		case 2:
			ix.Delete(gs)
			continue
		case 3:
			gs = randomGS(r, gs.Namespace, gs.Spec.FleetID, 1000+i)
		case 4:
			gs.Spec.PlayerSessionCreationPolicy = gamev1.PlayerSessionCreationPolicyDenyAll
			gs.Spec.GameProperties = nil
		}
		ix.Upsert(gs)
	}
	t.Run("changed", check)
	if n := len(pages(ix.Search, Query{Namespace: "ns", FleetID: "fleet-1"}, 1000)); n != 1 {
		t.Errorf("%d pages", n)
	}
	if got := ix.Search(Query{Namespace: "ns", FleetID: "fleet-9", Limit: 5}); len(got.GameSessions) != 0 || got.Next != nil {
		t.Errorf("a fleet without game sessions: %+v", got)
	}
}

// TestSearchCost: a search reads about what it returns, not what the fleet holds. Over 20,000 ACTIVE game
// sessions: an id reads one; a name held by one game session reads that one; the first page of the
// joinable ones in creation order (most are) reads about a page; a page sorted by the player count among
// the joinable ones stops early too; a rare property value is read from its own order.
func TestSearchCost(t *testing.T) {
	ix := NewIndex()
	const n = 20000
	for i := range n {
		gs := &gamev1.GameSession{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: fmt.Sprint("gs-", i), UID: types.UID(fmt.Sprint(i))},
			Spec: gamev1.GameSessionSpec{FleetID: "fleet-1", Name: fmt.Sprint("game-", i%5000), MaximumPlayerSessionCount: 10,
				GameProperties: []gamev1.GameProperty{{Key: "gameMode", Value: "brawl"}}},
			Status: gamev1.GameSessionStatus{Status: gamev1.GameSessionActive, GameSessionID: fmt.Sprint("gsess-", i),
				CurrentPlayerSessionCount: int32(i % 11), CreationTime: &metav1.MicroTime{Time: time.UnixMilli(int64(i))}}}
		if i == 12345 {
			gs.Spec.Name, gs.Spec.GameProperties[0].Value = "rare", "duel"
		}
		ix.Upsert(gs)
	}
	for _, tc := range []struct {
		filter, sort string
		returned     int
		atMost       int
	}{
		{"gameSessionId = 'gsess-777'", "", 1, 1},
		{"gameSessionName = 'rare'", "", 1, 1},
		{"gameSessionName = 'game-7' AND playerSessionCount < 5", "", 2, 4},
		{"hasAvailablePlayerSessions = true", "", 20, 25},
		{"maximumSessions >= 10 AND hasAvailablePlayerSessions = true", "", 20, 25},
		{"hasAvailablePlayerSessions = true", "playerSessionCount ASC", 20, 25},
		{"playerSessionCount >= 5", "playerSessionCount ASC", 20, 21},
		{"gameSessionProperties.gameMode = 'duel'", "", 1, 1},
		{"gameSessionProperties.gameMode = 'brawl' AND playerSessionCount < 4", "", 20, 60},
	} {
		e, s := parse(t, tc.filter, tc.sort)
		got := ix.Search(Query{Namespace: "ns", FleetID: "fleet-1", Filter: e, Sort: s, Limit: 20})
		if len(got.GameSessions) != tc.returned || got.Examined > tc.atMost {
			t.Errorf("%q sorted %q: returned %d (want %d) and read %d game sessions (want at most %d)", tc.filter, tc.sort, len(got.GameSessions), tc.returned, got.Examined, tc.atMost)
		}
		if scan := ix.Scan(Query{Namespace: "ns", FleetID: "fleet-1", Filter: e, Sort: s, Limit: 20}); scan.Examined != n {
			t.Errorf("the scan read %d", scan.Examined)
		}
	}
}

// FuzzSearch: any filter and sort that parse give, page by page, exactly what a brute-force scan gives.
func FuzzSearch(f *testing.F) {
	for _, tc := range searchCases {
		f.Add(tc.filter, tc.sort, uint8(3))
	}
	r := rand.New(rand.NewPCG(3, 4))
	ix := indexOf(fleetOf(r, 120))
	f.Fuzz(func(t *testing.T, filter, sort string, limit uint8) {
		var q Query
		q.Namespace, q.FleetID = "ns", "fleet-1"
		if filter != "" {
			e, err := ParseFilter(filter)
			if err != nil {
				return
			}
			q.Filter = e
		}
		if sort != "" {
			s, err := ParseSort(sort)
			if err != nil {
				return
			}
			q.Sort = &s
		}
		n := int(limit%21) + 1
		if got, want := pages(ix.Search, q, n), pages(ix.Scan, q, n); !slices.Equal(got, want) {
			t.Fatalf("%q sorted %q, %d per page:\n got  %q\n want %q", filter, sort, n, got, want)
		}
	})
}
