package index

import (
	"context"

	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
)

// Feed keeps index in step with the PlayerSession informer of c, the manager's cache: the index shares the
// cache's objects, it does not copy them. For the index to hold its snapshot while the informer relists, the
// cache must build its informers with index.NewInformer (cache.Options.NewInformer).
func Feed(ctx context.Context, c cache.Cache, index *Index) error {
	inf, err := c.GetInformer(ctx, &gamev1.PlayerSession{})
	if err != nil {
		return err
	}
	if si, ok := inf.(toolscache.SharedIndexInformer); ok {
		index.SetSource(si.GetIndexer())
	}
	_, err = inf.AddEventHandler(index.Handler())
	return err
}

// Handler is the informer event handler that feeds the index.
func (ix *Index) Handler() toolscache.ResourceEventHandler {
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(o any) {
			if ps, ok := o.(*gamev1.PlayerSession); ok {
				ix.Upsert(ps)
			}
		},
		UpdateFunc: func(_, o any) {
			if ps, ok := o.(*gamev1.PlayerSession); ok {
				ix.Upsert(ps)
			}
		},
		DeleteFunc: func(o any) {
			if t, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
				o = t.Obj
			}
			if ps, ok := o.(*gamev1.PlayerSession); ok {
				ix.Delete(ps)
			}
		},
	}
}
