package gamelift

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/internal/history"
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
