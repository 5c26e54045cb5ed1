package history

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/playersessions/operator/internal/history/historytest"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func record(ns, name, game, player string, ended time.Time) Record {
	return Record{Namespace: ns, Name: name, PlayerSessionID: "psess-" + ns + "-" + name, GameSessionID: game, PlayerID: player,
		Status: "COMPLETED", GameSessionEndedAt: ended, Object: []byte(`{"metadata":{"name":"` + name + `"}}`)}
}

func names(rs []Record) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Namespace+"/"+r.Name)
	}
	return out
}

func TestStore(t *testing.T) {
	url := historytest.Postgres(t)
	ctx := context.Background()
	clk := clocktesting.NewFakeClock(t0)
	const retention = 30 * 24 * time.Hour

	// Two replicas start at once: each migration is applied once.
	stores := make([]*Store, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range stores {
		wg.Go(func() { stores[i], errs[i] = Open(ctx, url, clk, retention) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	a, b := stores[0], stores[1]
	defer a.Close()
	defer b.Close()
	var versions int
	if err := a.pool.QueryRow(ctx, `SELECT COUNT(*) FROM ps_history_schema`).Scan(&versions); err != nil || versions != len(migrations) {
		t.Fatalf("schema versions recorded: %d (%v), want %d", versions, err, len(migrations))
	}

	// Records over three days of game-session ends, two namespaces.
	var recs []Record
	for i := range 30 {
		ns := []string{"team-a", "team-b"}[i%2]
		ended := t0.Add(time.Duration(i%3) * 24 * time.Hour)
		recs = append(recs, record(ns, fmt.Sprintf("p%02d", i), fmt.Sprintf("game-%d", i%5), fmt.Sprintf("player-%d", i%4), ended))
	}

	t.Run("archiving twice, and from two replicas at once, keeps one copy", func(t *testing.T) {
		if err := a.Archive(ctx, recs[:20]); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, s := range []*Store{a, b} {
			wg.Go(func() { errs[i] = s.Archive(ctx, recs) }) // a crash after archiving, before deleting: archived again
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		all, err := a.List(ctx, Query{}, Key{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != len(recs) {
			t.Fatalf("%d records, want %d", len(all), len(recs))
		}
	})

	t.Run("the three questions, the status filter, the namespace", func(t *testing.T) {
		for _, tt := range []struct {
			name string
			q    Query
			want int
		}{
			{"player session id", Query{PlayerSessionID: "psess-team-b-p07"}, 1},
			{"player session id in another namespace", Query{Namespace: "team-a", PlayerSessionID: "psess-team-b-p07"}, 0},
			{"game session", Query{GameSessionID: "game-2"}, 6},
			{"game session and status", Query{GameSessionID: "game-2", Status: "COMPLETED"}, 6},
			{"game session, other status", Query{GameSessionID: "game-2", Status: "ACTIVE"}, 0},
			{"player", Query{PlayerID: "player-1"}, 8},
			{"player in a namespace", Query{Namespace: "team-b", PlayerID: "player-1"}, 8},
			{"player in the other namespace", Query{Namespace: "team-a", PlayerID: "player-1"}, 0},
		} {
			got, err := a.List(ctx, tt.q, Key{}, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.want {
				t.Errorf("%s: %d records (%v), want %d", tt.name, len(got), names(got), tt.want)
			}
			if !slices.IsSortedFunc(got, func(x, y Record) int { return strings.Compare(x.Namespace+"/"+x.Name, y.Namespace+"/"+y.Name) }) {
				t.Errorf("%s: not in key order: %v", tt.name, names(got))
			}
		}
	})

	t.Run("paging across day tables in key order", func(t *testing.T) {
		var got []string
		after := Key{}
		for {
			page, err := b.List(ctx, Query{}, after, 7)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, names(page)...)
			if len(page) < 7 {
				break
			}
			after = Key{page[len(page)-1].Namespace, page[len(page)-1].Name}
		}
		want := names(recs)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("pages %v, want %v", got, want)
		}
	})

	t.Run("game sessions: archived once, by id and by fleet in name order", func(t *testing.T) {
		gsRec := func(name, id, fleet string, ended time.Time) GameSessionRecord {
			return GameSessionRecord{Namespace: "team-a", Name: name, GameSessionID: id, FleetID: fleet, Status: "TERMINATED", EndedAt: ended, Object: []byte(`{}`)}
		}
		recs := []GameSessionRecord{gsRec("arena-2", "gs-2", "f1", t0), gsRec("arena-1", "gs-1", "f1", t0.Add(24*time.Hour)), gsRec("arena-3", "gs-3", "f2", t0),
			gsRec("arena-1", "gs-0", "f1", t0)} // a name reused: the key is (name, id)
		for range 2 {
			if err := b.ArchiveGameSessions(ctx, recs); err != nil {
				t.Fatal(err)
			}
		}
		byFleet, err := a.ListGameSessions(ctx, GameSessionQuery{Namespace: "team-a", FleetID: "f1"}, GameSessionKey{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(byFleet) != 3 || byFleet[0].GameSessionID != "gs-0" || byFleet[1].GameSessionID != "gs-1" || byFleet[2].GameSessionID != "gs-2" {
			t.Errorf("by fleet: %+v", byFleet)
		}
		after, _ := a.ListGameSessions(ctx, GameSessionQuery{Namespace: "team-a", FleetID: "f1"}, GameSessionKey{Name: "arena-1", GameSessionID: "gs-0"}, 1)
		if len(after) != 1 || after[0].GameSessionID != "gs-1" {
			t.Errorf("after arena-1/gs-0: %+v", after)
		}
		after, _ = a.ListGameSessions(ctx, GameSessionQuery{Namespace: "team-a", FleetID: "f1"}, GameSessionKey{Name: "arena-1", GameSessionID: "gs-1"}, 1)
		if len(after) != 1 || after[0].GameSessionID != "gs-2" {
			t.Errorf("after arena-1/gs-1: %+v", after)
		}
		byID, _ := a.ListGameSessions(ctx, GameSessionQuery{Namespace: "team-a", GameSessionID: "gs-3"}, GameSessionKey{}, 1)
		other, _ := a.ListGameSessions(ctx, GameSessionQuery{Namespace: "team-b", GameSessionID: "gs-3"}, GameSessionKey{}, 1)
		if len(byID) != 1 || len(other) != 0 {
			t.Errorf("by id: %+v, in another namespace: %+v", byID, other)
		}
	})

	t.Run("retention drops whole days, never before 30 days after the end", func(t *testing.T) {
		// Day 0 holds game sessions that ended at t0 (12:00); it may go only once the last instant of day 0
		// is 30 days past: at midnight ending day 0, plus 30 days.
		lastDue := day(t0).AddDate(0, 0, 1).Add(retention)
		clk.SetTime(lastDue.Add(-time.Nanosecond))
		dropped, err := a.DropExpired(ctx)
		if err != nil || len(dropped) != 0 {
			t.Fatalf("dropped %v (%v) a nanosecond early", dropped, err)
		}
		clk.SetTime(lastDue)
		if dropped, err = a.DropExpired(ctx); err != nil || len(dropped) != 1 || !dropped[0].Equal(day(t0)) {
			t.Fatalf("dropped %v (%v), want day 0", dropped, err)
		}
		left, err := a.List(ctx, Query{}, Key{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(left) != 20 {
			t.Errorf("%d records left, want 20 (days 1 and 2)", len(left))
		}
		for _, r := range left {
			if r.GameSessionEndedAt.Before(day(t0).AddDate(0, 0, 1)) {
				t.Errorf("%s ended on day 0 and was kept", r.Name)
			}
			if lastDue.Sub(r.GameSessionEndedAt) >= retention+24*time.Hour {
				t.Errorf("%s kept too long", r.Name)
			}
		}
		// Two days later, the other two days go too.
		clk.SetTime(lastDue.AddDate(0, 0, 2))
		if dropped, err = a.DropExpired(ctx); err != nil || len(dropped) != 2 {
			t.Fatalf("dropped %v (%v), want days 1 and 2", dropped, err)
		}
	})
}

// TestNoDDLOnTheHotPath: only the first archive into a day creates its tables; later archives into that
// day, of player or game sessions, run no DDL (a PostgreSQL event trigger counts every DDL command). A
// day's tables dropped by another replica's retention are created again on the next archive into it.
func TestNoDDLOnTheHotPath(t *testing.T) {
	url := historytest.Postgres(t)
	ctx := context.Background()
	clk := clocktesting.NewFakeClock(t0)
	s, err := Open(ctx, url, clk, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, ddl := range []string{
		`CREATE TABLE ddl_log (tag TEXT NOT NULL)`,
		`CREATE FUNCTION log_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO ddl_log VALUES (tg_tag); END $$`,
		`CREATE EVENT TRIGGER count_ddl ON ddl_command_start EXECUTE FUNCTION log_ddl()`,
	} {
		if _, err := s.pool.Exec(ctx, ddl); err != nil {
			t.Fatal(err)
		}
	}
	ddl := func() int {
		t.Helper()
		var n int
		if err := s.pool.QueryRow(ctx, `SELECT COUNT(*) FROM ddl_log`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	game := func(name string) GameSessionRecord {
		return GameSessionRecord{Namespace: "ns", Name: name, GameSessionID: "gsess-" + name, FleetID: "fleet-1", Status: "TERMINATED", EndedAt: t0, Object: []byte(`{}`)}
	}

	if err := s.Archive(ctx, []Record{record("ns", "p1", "g", "alice", t0)}); err != nil {
		t.Fatal(err)
	}
	first := ddl()
	if first == 0 {
		t.Fatal("the first archive into a day created no table: the event trigger counts nothing")
	}
	for i := range 5 {
		if err := s.Archive(ctx, []Record{record("ns", fmt.Sprintf("q%d", i), "g", "bob", t0.Add(time.Hour))}); err != nil {
			t.Fatal(err)
		}
		if err := s.ArchiveGameSessions(ctx, []GameSessionRecord{game(fmt.Sprintf("g%d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	if n := ddl(); n != first {
		t.Errorf("%d DDL commands after 10 more archives into the same day, want none (%d for the first)", n-first, first)
	}

	// Another replica's retention drops the day: the next archive into it creates it again.
	other, err := Open(ctx, url, clk, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	clk.Step(3 * 24 * time.Hour)
	if dropped, err := other.DropExpired(ctx); err != nil || len(dropped) != 1 {
		t.Fatalf("dropped %v (%v), want the one day", dropped, err)
	}
	if err := s.Archive(ctx, []Record{record("ns", "late", "g", "carol", t0)}); err != nil {
		t.Fatalf("archive into a day another replica dropped: %v", err)
	}
	got, err := s.List(ctx, Query{Namespace: "ns"}, Key{}, 0)
	if err != nil || len(got) != 1 || got[0].Name != "late" {
		t.Fatalf("after re-creating the day: %v (%v), want [ns/late]", names(got), err)
	}
}
