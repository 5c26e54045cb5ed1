package index

import (
	"slices"

	"github.com/google/btree"
)

// smallBucket is the size up to which a bucket is a sorted slice; past it, a B-tree. Most buckets are small
// (a player's sessions, a game session's, a unique id's) and a B-tree per bucket would cost more than the
// keys it holds.
const smallBucket = 64

// bucket is an ordered set of keys.
type bucket struct {
	keys []string
	tree *btree.BTreeG[string]
}

func (b *bucket) insert(key string) {
	if b.tree != nil {
		b.tree.ReplaceOrInsert(key)
		return
	}
	i, found := slices.BinarySearch(b.keys, key)
	if found {
		return
	}
	if len(b.keys) < smallBucket {
		b.keys = slices.Insert(b.keys, i, key)
		return
	}
	b.tree = newTree()
	for _, k := range b.keys {
		b.tree.ReplaceOrInsert(k)
	}
	b.tree.ReplaceOrInsert(key)
	b.keys = nil
}

func (b *bucket) remove(key string) {
	if b.tree != nil {
		b.tree.Delete(key)
		return
	}
	if i, found := slices.BinarySearch(b.keys, key); found {
		b.keys = slices.Delete(b.keys, i, i+1)
	}
}

func (b *bucket) has(key string) bool {
	if b.tree != nil {
		return b.tree.Has(key)
	}
	_, found := slices.BinarySearch(b.keys, key)
	return found
}

func (b *bucket) len() int {
	if b.tree != nil {
		return b.tree.Len()
	}
	return len(b.keys)
}

// ascend calls visit for the keys >= from, in order, until it returns false.
func (b *bucket) ascend(from string, visit func(string) bool) {
	if b.tree != nil {
		b.tree.AscendGreaterOrEqual(from, visit)
		return
	}
	i, _ := slices.BinarySearch(b.keys, from)
	for _, k := range b.keys[i:] {
		if !visit(k) {
			return
		}
	}
}
