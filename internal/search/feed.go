package search

import (
	"context"

	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
)

// Feed keeps index in step with the GameSession informer of c, the manager's cache: the index shares the
// cache's objects, it does not copy them.
func Feed(ctx context.Context, c cache.Cache, index *Index) error {
	inf, err := c.GetInformer(ctx, &gamev1.GameSession{})
	if err != nil {
		return err
	}
	upsert := func(o any) {
		if gs, ok := o.(*gamev1.GameSession); ok {
			index.Upsert(gs)
		}
	}
	_, err = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    upsert,
		UpdateFunc: func(_, o any) { upsert(o) },
		DeleteFunc: func(o any) {
			if t, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
				o = t.Obj
			}
			if gs, ok := o.(*gamev1.GameSession); ok {
				index.Delete(gs)
			}
		},
	})
	return err
}
