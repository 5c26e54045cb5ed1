package gameservers

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
)

// TestActiveProcessBehindTheCache: the process a game session is placed on is found ACTIVE whether this
// replica's cache of Computes has seen its ProcessReady or not (the GameSession informer ahead of the
// Compute informer: the push would otherwise be skipped, with nothing to retry it); a process that ended,
// or a compute that is gone, takes no push.
func TestActiveProcessBehindTheCache(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := gamev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	compute := func(processes ...gamev1.ServerProcess) *gamev1.Compute {
		return &gamev1.Compute{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "c-1"}, Status: gamev1.ComputeStatus{Processes: processes}}
	}
	process := func(status gamev1.ServerProcessStatusValue) gamev1.ServerProcess {
		return gamev1.ServerProcess{ProcessID: "proc-1", Status: status, Port: 7777}
	}
	ref := &gamev1.ServerProcessRef{Compute: "c-1", ProcessID: "proc-1"}
	for _, tc := range []struct {
		name        string
		cache, live *gamev1.Compute // nil: not there
		want        bool
	}{
		{name: "the cache shows it ACTIVE", cache: compute(process(gamev1.ServerProcessActive)), live: compute(process(gamev1.ServerProcessActive)), want: true},
		{name: "the cache has not seen ProcessReady", cache: compute(), live: compute(process(gamev1.ServerProcessActive)), want: true},
		{name: "the cache has not seen the compute", live: compute(process(gamev1.ServerProcessActive)), want: true},
		{name: "the process ended", cache: compute(process(gamev1.ServerProcessActive)), live: compute(process(gamev1.ServerProcessTerminated)),
			want: true}, // the cache's word is taken when it says ACTIVE: the push then goes to a connection that is closing
		{name: "the process ended, seen by both", cache: compute(process(gamev1.ServerProcessTerminated)), live: compute(process(gamev1.ServerProcessTerminated))},
		{name: "the compute is gone", cache: compute()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reader := func(c *gamev1.Compute) client.Reader {
				b := fake.NewClientBuilder().WithScheme(scheme)
				if c != nil {
					b = b.WithObjects(c.DeepCopy()).WithStatusSubresource(&gamev1.Compute{})
				}
				return b.Build()
			}
			b := &Backend{Reader: reader(tc.cache), APIReader: reader(tc.live)}
			c, i := b.activeProcess(context.Background(), "team-a", ref)
			if got := c != nil; got != tc.want {
				t.Fatalf("found: %v, want %v", got, tc.want)
			}
			if c != nil && (i < 0 || c.Status.Processes[i].ProcessID != "proc-1" || c.Status.Processes[i].Port != 7777) {
				t.Errorf("process %d of %+v", i, c.Status.Processes)
			}
		})
	}
}
