package index

import (
	"slices"
	"strconv"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
)

// store is an informer's store as the index reads it.
type store struct {
	rv   uint64
	objs []*gamev1.PlayerSession
}

func (s *store) List() []any {
	out := make([]any, len(s.objs))
	for i, o := range s.objs {
		out[i] = o
	}
	return out
}

func (s *store) LastStoreSyncResourceVersion() string { return strconv.FormatUint(s.rv, 10) }

// TestWaitForACaughtUpIndex: a replica whose newest write is older than a snapshot asked for (another
// replica's token; the writes since were deletions its relist found without their revision, or of other
// resources) serves it once it holds exactly what its informer's store holds at that revision or later,
// and never when it lacks part of it. The soak's end check found a restarted replica that could never
// reach the other's snapshot: the newest writes were deletions.
func TestWaitForACaughtUpIndex(t *testing.T) {
	a10, c20 := psAt("a", "alice", 10), psAt("c", "alice", 20)
	cases := []struct {
		name  string
		store store
		ok    bool
	}{
		{"caught up, the store further on", store{rv: 30, objs: []*gamev1.PlayerSession{a10}}, true},
		{"the store not yet there", store{rv: 24, objs: []*gamev1.PlayerSession{a10}}, false},
		{"the index lacks a write", store{rv: 30, objs: []*gamev1.PlayerSession{a10, c20}}, false},
		{"the index holds one the store no longer does", store{rv: 30}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ix := NewIndex(clocktesting.NewFakeClock(t0), time.Minute)
			ix.SetFreshnessTimeout(300 * time.Millisecond)
			ix.SetSource(&tc.store)
			ix.Upsert(a10)
			p, err := ix.List(ctx, Query{}, ListOptions{ResourceVersion: "25"}, nil)
			if !tc.ok {
				if !apierrors.IsTimeout(err) {
					t.Errorf("want a 504 Too large resource version, got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.RV != 25 || !slices.Equal(itemsAt(p.Items), []string{"a@10"}) {
				t.Errorf("listed %v at %d, want a@10 at 25", itemsAt(p.Items), p.RV)
			}
			if _, err := ix.List(ctx, Query{}, ListOptions{ResourceVersion: "25", ResourceVersionMatch: metav1.ResourceVersionMatchExact}, nil); err != nil {
				t.Errorf("exactly 25: %v", err)
			}
		})
	}
}
