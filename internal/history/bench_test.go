package history

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/playersessions/operator/internal/history/historytest"
)

// BenchmarkList times the store's three questions over 30 day tables holding 300,000 records (10 per game
// session, 20 per player), analyzed, against a real PostgreSQL (historytest.Postgres):
//
//	go test -run '^$' -bench BenchmarkList ./internal/history
//
// It is the store's share of a describe call; hack/benchhistory measures the whole call at 10 million.
func BenchmarkList(b *testing.B) {
	const days, perDay, perGame, perPlayer = 30, 10000, 10, 20
	ctx := context.Background()
	url := historytest.Postgres(b)
	now := t0.Add(days * 24 * time.Hour)
	s, err := Open(ctx, url, clocktesting.NewFakeClock(now), 30*24*time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	total := days * perDay
	players := total / perPlayer
	for d := range days {
		ended := t0.Add(time.Duration(d) * 24 * time.Hour)
		recs := make([]Record, 0, perDay)
		for i := range perDay {
			n := d*perDay + i
			recs = append(recs, record("bench", fmt.Sprintf("ps-%07d", n), fmt.Sprintf("gs-%06d", n/perGame), fmt.Sprintf("player-%05d", n%players), ended))
		}
		if err := s.Archive(ctx, recs); err != nil {
			b.Fatal(err)
		}
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "ANALYZE"); err != nil {
		b.Fatal(err)
	}
	conn.Close(ctx)
	for _, q := range []struct {
		name  string
		query func(r *rand.Rand) Query
		want  int
	}{
		{"player session", func(r *rand.Rand) Query {
			return Query{Namespace: "bench", PlayerSessionID: fmt.Sprintf("psess-bench-ps-%07d", r.IntN(total))}
		}, 1},
		{"game session", func(r *rand.Rand) Query {
			return Query{Namespace: "bench", GameSessionID: fmt.Sprintf("gs-%06d", r.IntN(total/perGame))}
		}, perGame},
		{"player", func(r *rand.Rand) Query {
			return Query{Namespace: "bench", PlayerID: fmt.Sprintf("player-%05d", r.IntN(players))}
		}, perPlayer},
	} {
		b.Run(q.name, func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 2))
			for b.Loop() {
				recs, err := s.List(ctx, q.query(r), Key{}, 101)
				if err != nil {
					b.Fatal(err)
				}
				if len(recs) != q.want {
					b.Fatalf("%d records, want %d", len(recs), q.want)
				}
			}
		})
	}
}
