package index

import (
	"fmt"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

// BenchmarkRelist is what a relist costs the index beyond applying what it changed: comparing the list
// with the index (relists.NewPending), for an index of n player sessions and a list that changed 1% of
// them, then applying those changes and releasing the held snapshot.
func BenchmarkRelist(b *testing.B) {
	for _, n := range []int{10000, 100000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			ix := NewIndex(clocktesting.NewFakeClock(t0), time.Minute)
			listed := make(map[string]uint64, n)
			for i := range n {
				ps := psAt(fmt.Sprintf("p%06d", i), "alice", uint64(i+1))
				ix.Upsert(ps)
				listed[Key("ns", ps.Name)] = uint64(i + 1)
			}
			rv := uint64(n)
			b.ResetTimer()
			for b.Loop() {
				changed := make([]string, 0, n/100)
				for i := 0; i < n; i += 100 {
					rv++
					name := fmt.Sprintf("p%06d", i)
					listed[Key("ns", name)] = rv
					changed = append(changed, name)
				}
				ix.Relists().BeginRelist()
				ix.Relists().Relisted(listed, rv)
				for _, name := range changed {
					ix.Upsert(psAt(name, "alice", listed[Key("ns", name)]))
				}
				if ix.Relisting() || ix.RV() != rv {
					b.Fatalf("relisting %v at %d, want done at %d", ix.Relisting(), ix.RV(), rv)
				}
			}
		})
	}
}
