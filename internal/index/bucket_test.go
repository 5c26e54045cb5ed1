package index

import (
	"fmt"
	"slices"
	"testing"
)

func TestBucketGrowsIntoATree(t *testing.T) {
	var b bucket
	var want []string
	for i := 199; i >= 0; i-- { // descending, to exercise inserts at the front
		k := fmt.Sprintf("k%03d", i)
		b.insert(k)
		b.insert(k) // idempotent
		want = append([]string{k}, want...)
		var got []string
		b.ascend("", func(k string) bool { got = append(got, k); return true })
		if !slices.Equal(got, want) {
			t.Fatalf("after %d inserts: %v", len(want), got)
		}
	}
	if b.tree == nil || b.len() != 200 || !b.has("k150") {
		t.Fatalf("tree=%v len=%d", b.tree != nil, b.len())
	}
	var from []string
	b.ascend("k197", func(k string) bool { from = append(from, k); return true })
	if !slices.Equal(from, []string{"k197", "k198", "k199"}) {
		t.Errorf("ascend from k197: %v", from)
	}
	b.remove("k150")
	if b.has("k150") || b.len() != 199 {
		t.Error("remove")
	}
	var small bucket
	for _, k := range []string{"b", "a", "c"} {
		small.insert(k)
	}
	small.remove("b")
	var got []string
	small.ascend("a", func(k string) bool { got = append(got, k); return k != "a" })
	if !slices.Equal(got, []string{"a"}) || small.tree != nil {
		t.Errorf("small bucket: %v", got)
	}
}
