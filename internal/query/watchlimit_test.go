package query

import (
	"context"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/authentication/user"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/utils/clock"

	"github.com/playersessions/operator/internal/index"
)

// TestWatchLimits: one user may hold at most its share of watches, and the server at most its total;
// beyond, a watch is refused with 429, and a stopped watch gives its place back. Before, any user allowed
// to watch one namespace could open watches until the manager ran out of memory.
func TestWatchLimits(t *testing.T) {
	r := &REST{index: index.NewIndex(clock.RealClock{}, 0), tokens: index.NewTokens([]byte("k")), watches: newWatchLimits(5, 3)}
	as := func(name string) context.Context {
		ctx := genericapirequest.WithNamespace(context.Background(), "ns")
		return genericapirequest.WithUser(ctx, &user.DefaultInfo{Name: name})
	}
	open := func(name string) (watch.Interface, error) {
		return r.Watch(as(name), &metainternalversion.ListOptions{})
	}
	var alice []watch.Interface
	for i := range 3 {
		w, err := open("alice")
		if err != nil {
			t.Fatalf("alice's watch %d: %v", i+1, err)
		}
		alice = append(alice, w)
	}
	if _, err := open("alice"); !apierrors.IsTooManyRequests(err) {
		t.Fatalf("alice's 4th watch: %v, want 429", err)
	}
	for i := range 2 {
		if _, err := open("bob"); err != nil {
			t.Fatalf("bob's watch %d: %v", i+1, err)
		}
	}
	if _, err := open("carol"); !apierrors.IsTooManyRequests(err) {
		t.Fatalf("a 6th watch on the server: %v, want 429", err)
	}
	alice[0].Stop()
	alice[0].Stop() // twice: the place is given back once
	if _, err := open("carol"); err != nil {
		t.Fatalf("after alice stopped one: %v", err)
	}
	if _, err := open("carol"); !apierrors.IsTooManyRequests(err) {
		t.Fatalf("the server is full again: %v, want 429", err)
	}
}
