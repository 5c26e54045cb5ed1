package index

import (
	"context"
	"sync"

	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Signal tells waiters that something changed: Next returns a channel that the next Notify closes. A nil
// Signal never fires.
type Signal struct {
	mu sync.Mutex
	ch chan struct{}
}

// Next returns a channel that the next Notify closes.
func (s *Signal) Next() <-chan struct{} {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

// Notify wakes everyone waiting on a channel Next returned.
func (s *Signal) Notify() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
}

// Until calls check, and again after every change that next signals, until check reports true or fails;
// it returns ctx's error if ctx ends first. next is called before each check, so a change made while check
// runs is not missed.
func Until(ctx context.Context, next func() <-chan struct{}, check func() (bool, error)) error {
	for {
		changed := next()
		if ok, err := check(); ok || err != nil {
			return err
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// SignalChanges notifies s at every add, update and delete of obj's kind in c, the manager's cache.
func SignalChanges(ctx context.Context, c cache.Cache, obj client.Object, s *Signal) error {
	inf, err := c.GetInformer(ctx, obj)
	if err != nil {
		return err
	}
	_, err = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { s.Notify() },
		UpdateFunc: func(_, _ any) { s.Notify() },
		DeleteFunc: func(any) { s.Notify() },
	})
	return err
}
