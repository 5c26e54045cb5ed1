package relists

import (
	"context"
	"errors"
	"maps"
	"reflect"
	"strconv"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
)

// observer records what a lister tells it.
type observer struct {
	began  int
	listed map[string]uint64
	rv     uint64
}

func (o *observer) BeginRelist() { o.began++; o.listed = nil }

func (o *observer) Relisted(listed map[string]uint64, rv uint64) {
	o.listed, o.rv = maps.Clone(listed), rv
}

func ps(name string, rv uint64) gamev1.PlayerSession {
	return gamev1.PlayerSession{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, ResourceVersion: strconv.FormatUint(rv, 10)}}
}

// TestLister: a list's first page tells the observers a relist begins, its last page what the whole list
// returned; a failed list tells nothing more (the observer keeps holding); the lister lists rather than
// watch-lists.
func TestLister(t *testing.T) {
	pages := []*gamev1.PlayerSessionList{
		{ListMeta: metav1.ListMeta{ResourceVersion: "40", Continue: "1"}, Items: []gamev1.PlayerSession{ps("a", 30)}},
		{ListMeta: metav1.ListMeta{ResourceVersion: "40"}, Items: []gamev1.PlayerSession{ps("b", 20)}},
	}
	fail := true
	inner := &toolscache.ListWatch{
		ListWithContextFunc: func(_ context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			if fail {
				fail = false
				return nil, errors.New("connection refused")
			}
			i, _ := strconv.Atoi(opts.Continue)
			return pages[i].DeepCopy(), nil
		},
		WatchFuncWithContext: func(context.Context, metav1.ListOptions) (watch.Interface, error) { return watch.NewFake(), nil },
	}
	o := &observer{}
	l := NewLister(inner, o)
	ctx := context.Background()
	if _, err := l.ListWithContext(ctx, metav1.ListOptions{Limit: 1}); err == nil {
		t.Fatal("the failing list did not fail")
	}
	if o.began != 1 || o.listed != nil {
		t.Fatalf("after a failed list: began %d, listed %v; want 1, nothing", o.began, o.listed)
	}
	if _, err := l.ListWithContext(ctx, metav1.ListOptions{Limit: 1}); err != nil {
		t.Fatal(err)
	}
	if o.began != 2 || o.listed != nil {
		t.Fatalf("after a first page: began %d, listed %v; want 2, nothing yet", o.began, o.listed)
	}
	if _, err := l.ListWithContext(ctx, metav1.ListOptions{Limit: 1, Continue: "1"}); err != nil {
		t.Fatal(err)
	}
	if want := map[string]uint64{"ns/a": 30, "ns/b": 20}; o.began != 2 || !reflect.DeepEqual(o.listed, want) || o.rv != 40 {
		t.Errorf("after the last page: began %d, listed %v at %d; want 2, %v at 40", o.began, o.listed, o.rv, want)
	}
	if !l.IsWatchListSemanticsUnSupported() {
		t.Error("the lister must list: the observers read the end of a relist from its last page")
	}
}

// TestInformersWrapOnlyObservedTypes: only the informers of observed types list through a Lister.
func TestInformersWrapOnlyObservedTypes(t *testing.T) {
	var i Informers
	i.Observe(&gamev1.PlayerSession{}, &observer{})
	lw := &toolscache.ListWatch{}
	for _, tc := range []struct {
		obj  runtime.Object
		want bool
	}{{&gamev1.PlayerSession{}, true}, {&gamev1.GameSession{}, false}} {
		_, wrapped := i.lister(lw, tc.obj).(*Lister)
		if wrapped != tc.want {
			t.Errorf("%T: wrapped %v, want %v", tc.obj, wrapped, tc.want)
		}
	}
}

func TestPending(t *testing.T) {
	held := func(m map[string]uint64) func(func(string, uint64) bool) {
		return func(yield func(string, uint64) bool) {
			for k, v := range m {
				if !yield(k, v) {
					return
				}
			}
		}
	}
	type step struct {
		key     string
		rv      uint64
		deleted bool
	}
	cases := []struct {
		name   string
		listed map[string]uint64
		held   map[string]uint64
		steps  []step
		done   []bool // after each step
	}{
		{"nothing to wait for", map[string]uint64{"a": 10}, map[string]uint64{"a": 10}, nil, nil},
		{"out of order", map[string]uint64{"a": 30, "b": 20}, map[string]uint64{"a": 10},
			[]step{{"a", 30, false}, {"b", 20, false}}, []bool{false, true}},
		{"a deletion", map[string]uint64{"b": 11}, map[string]uint64{"a": 10, "b": 11},
			[]step{{"a", 40, true}}, []bool{true}},
		{"an older version is not enough", map[string]uint64{"a": 30}, map[string]uint64{"a": 10},
			[]step{{"a", 20, false}, {"a", 30, false}}, []bool{false, true}},
		{"a write newer than the list", map[string]uint64{"a": 30, "b": 20}, nil,
			[]step{{"a", 30, false}, {"c", 41, false}}, []bool{false, true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := NewPending(tc.listed, 40, held(tc.held))
			if got := p.Done(0); got != (len(tc.steps) == 0) {
				t.Errorf("before any event: done %v", got)
			}
			for i, s := range tc.steps {
				p.Applied(s.key, s.rv, s.deleted)
				if got := p.Done(s.rv); got != tc.done[i] {
					t.Errorf("after %v: done %v, want %v", s, got, tc.done[i])
				}
			}
		})
	}
}
