// Command benchsearch measures SearchGameSessions' index (internal/search) against a brute-force scan of
// the cache, in one run: N ACTIVE game sessions of one fleet, their seats changing at -writes per second
// (each change a new object, stored in a client-go indexer as the informer's cache stores it and filed in
// the index as the informer's handler files it), and, meanwhile, the documented example searches and a few
// a game backend makes, each answered by the index and by a scan of the cache (every game session of the
// fleet from its fleet index, filtered and sorted), the first page of each checked equal. See
// docs/benchmarks.md.
//
//	go run ./hack/benchsearch -sessions 100000 -writes 500
package main

import (
	"cmp"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/internal/search"
)

const (
	ns    = "games"
	fleet = "fleet-bench"
)

var modes = []string{"brawl", "ranked", "coop", "brawl", "ranked", "coop", "brawl", "ranked", "coop", "duel"} // duel: 1 in 10

func main() {
	n := flag.Int("sessions", 100000, "ACTIVE game sessions in the fleet")
	writes := flag.Int("writes", 500, "seat changes per second while searching")
	runs := flag.Duration("duration", 3*time.Second, "how long each search is repeated on the index")
	scans := flag.Int("scans", 20, "how many times each search is answered by the scan")
	flag.Parse()

	r := rand.New(rand.NewPCG(1, 2))
	store := toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, toolscache.Indexers{"fleet": func(o any) ([]string, error) {
		gs := o.(*gamev1.GameSession)
		return []string{gs.Namespace + "/" + gs.Spec.FleetID}, nil
	}})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	ix := search.NewIndex()
	sessions := make([]*gamev1.GameSession, *n)
	start := time.Now()
	for i := range sessions {
		sessions[i] = gameSession(r, i)
		ix.Upsert(sessions[i])
	}
	filed := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&after)
	for _, gs := range sessions {
		if err := store.Add(gs); err != nil {
			panic(err)
		}
	}
	fmt.Printf("%d ACTIVE game sessions filed in %s (%.1f µs each); the index's heap beyond the objects: %.0f MiB (%.0f bytes per game session)\n",
		*n, filed.Round(time.Millisecond), float64(filed.Microseconds())/float64(*n),
		float64(after.HeapAlloc-before.HeapAlloc)/(1<<20)-objectsMiB(sessions), (float64(after.HeapAlloc-before.HeapAlloc)-objectsMiB(sessions)*(1<<20))/float64(*n))

	// Seats change at -writes per second: a player joins or leaves a random game session.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	written := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		wr := rand.New(rand.NewPCG(3, 4))
		tick := time.NewTicker(time.Second / time.Duration(*writes))
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			mu.Lock()
			i := wr.IntN(len(sessions))
			gs := sessions[i].DeepCopy()
			gs.ResourceVersion = fmt.Sprint(wr.Int64())
			switch c := gs.Status.CurrentPlayerSessionCount; {
			case c == 0 || (c < gs.Spec.MaximumPlayerSessionCount && wr.IntN(2) == 0):
				gs.Status.CurrentPlayerSessionCount++
			default:
				gs.Status.CurrentPlayerSessionCount--
			}
			sessions[i] = gs
			written++
			mu.Unlock()
			if err := store.Update(gs); err != nil {
				panic(err)
			}
			ix.Upsert(gs)
		}
	}()

	fmt.Printf("\n| search | index p50 / p99 (read, returned) | scan of the cache p50 / p99 | scan / index at p99 |\n|---|---|---|---|\n")
	for _, s := range []struct{ filter, sort string }{
		{"maximumSessions>=10 AND hasAvailablePlayerSessions=true", ""},
		{"gameSessionProperties.gameMode = 'brawl' AND playerSessionCount < 4", ""},
		{"hasAvailablePlayerSessions=true", "playerSessionCount DESC"},
		{"gameSessionProperties.gameMode = 'duel' AND hasAvailablePlayerSessions=true", "creationTimeMillis ASC"},
		{"gameSessionName = 'match-4242'", ""},
		{"", "creationTimeMillis DESC"},
	} {
		q := search.Query{Namespace: ns, FleetID: fleet, Limit: 20}
		if s.filter != "" {
			e, err := search.ParseFilter(s.filter)
			if err != nil {
				panic(err)
			}
			q.Filter = e
		}
		if s.sort != "" {
			o, err := search.ParseSort(s.sort)
			if err != nil {
				panic(err)
			}
			q.Sort = &o
		}
		var indexed []time.Duration
		var res search.Result
		for begin := time.Now(); time.Since(begin) < *runs; {
			t := time.Now()
			res = ix.Search(q)
			indexed = append(indexed, time.Since(t))
		}
		var scanned []time.Duration
		for range *scans {
			t := time.Now()
			scan(store, q)
			scanned = append(scanned, time.Since(t))
		}
		// The same first page, as both see the fleet now (writes paused).
		mu.Lock()
		same := slices.Equal(ids(ix.Search(q).GameSessions), ids(scan(store, q)))
		mu.Unlock()
		if !same {
			fmt.Fprintf(os.Stderr, "%q sorted %q: the index and the scan disagree\n", s.filter, s.sort)
			os.Exit(1)
		}
		p50, p99 := percentile(indexed, 50), percentile(indexed, 99)
		name := "`" + s.filter + "`"
		if s.sort != "" {
			name += " sorted `" + s.sort + "`"
		}
		fmt.Printf("| %s | %s / %s (%d read, %d returned; %d runs) | %s / %s | %.0fx |\n", name, p50, p99, res.Examined, len(res.GameSessions), len(indexed),
			percentile(scanned, 50).Round(time.Microsecond), percentile(scanned, 99).Round(time.Microsecond), float64(percentile(scanned, 99))/float64(p99))
	}
	close(stop)
	wg.Wait()
	fmt.Printf("\nseat changes filed meanwhile: %d\n", written)
}

// gameSession is the i-th game session: 2 to 16 seats, some taken, most joinable; a game mode (duel for 1
// in 10), a difficulty for half; names shared by 20 game sessions each.
func gameSession(r *rand.Rand, i int) *gamev1.GameSession {
	max := int32(2 + r.IntN(15))
	gs := &gamev1.GameSession{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("gs-%06d", i), UID: types.UID(fmt.Sprintf("uid-%06d", i)), ResourceVersion: "1"},
		Spec: gamev1.GameSessionSpec{FleetID: fleet, Name: fmt.Sprintf("match-%d", i/20), MaximumPlayerSessionCount: max,
			PlayerSessionCreationPolicy: gamev1.PlayerSessionCreationPolicyAcceptAll,
			GameProperties:              []gamev1.GameProperty{{Key: "gameMode", Value: modes[i%len(modes)]}}},
		Status: gamev1.GameSessionStatus{Status: gamev1.GameSessionActive, GameSessionID: fmt.Sprintf("arn:aws:gamelift:local::gamesession/%s/gsess-%06d", fleet, i),
			CurrentPlayerSessionCount: r.Int32N(max + 1), CreationTime: &metav1.MicroTime{Time: time.UnixMilli(1_700_000_000_000 + int64(i)*7)}},
	}
	if r.IntN(2) == 0 {
		gs.Spec.GameProperties = append(gs.Spec.GameProperties, gamev1.GameProperty{Key: "difficulty", Value: []string{"novice", "expert"}[r.IntN(2)]})
	}
	return gs
}

// objectsMiB is an estimate of the game sessions' own heap (they are the cache's, not the index's): what
// a copy of each allocates.
func objectsMiB(sessions []*gamev1.GameSession) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	copies := make([]*gamev1.GameSession, 0, 1000)
	for _, gs := range sessions[:min(1000, len(sessions))] {
		copies = append(copies, gs.DeepCopy())
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / float64(len(copies))
	runtime.KeepAlive(copies)
	return per * float64(len(sessions)) / (1 << 20)
}

// scan answers q as a caller without the index would: every game session of the fleet from the cache's
// fleet index, filtered, sorted, the first page.
func scan(store toolscache.Indexer, q search.Query) []*gamev1.GameSession {
	objs, err := store.ByIndex("fleet", q.Namespace+"/"+q.FleetID)
	if err != nil {
		panic(err)
	}
	type match struct {
		gs *gamev1.GameSession
		s  search.Session
	}
	var matched []match
	for _, o := range objs {
		gs := o.(*gamev1.GameSession)
		if gs.Status.Status != gamev1.GameSessionActive {
			continue
		}
		if s := search.SessionOf(gs); q.Filter == nil || q.Filter.Match(&s) {
			matched = append(matched, match{gs, s})
		}
	}
	operand, desc := search.CreationTimeMillis, false
	if q.Sort != nil {
		operand, desc = q.Sort.Operand, q.Sort.Descending
	}
	slices.SortFunc(matched, func(a, b match) int {
		c := cmp.Or(cmp.Compare(number(&a.s, operand), number(&b.s, operand)), cmp.Compare(a.s.CreationTimeMillis, b.s.CreationTimeMillis), strings.Compare(a.s.ID, b.s.ID))
		if desc { // ties too, as GameLift's order leaves them to us
			return -c
		}
		return c
	})
	var out []*gamev1.GameSession
	for _, m := range matched[:min(q.Limit, len(matched))] {
		out = append(out, m.gs)
	}
	return out
}

// number is the numeric operands' value (the sorts this program uses).
func number(s *search.Session, operand string) int64 {
	switch operand {
	case search.PlayerSessionCount:
		return s.PlayerSessionCount
	case search.MaximumSessions:
		return s.MaximumSessions
	}
	return s.CreationTimeMillis
}

func ids(page []*gamev1.GameSession) []string {
	var out []string
	for _, gs := range page {
		out = append(out, gs.Status.GameSessionID)
	}
	return out
}

func percentile(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}
