package controllers

import (
	"context"
	"errors"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
)

// TestWriteStatusPolicy: the one status write of both reconcilers, for each outcome of the write.
func TestWriteStatusPolicy(t *testing.T) {
	gr := schema.GroupResource{Group: gamev1.GroupVersion.Group, Resource: "playersessions"}
	boom := errors.New("boom")
	for _, tt := range []struct {
		name        string
		change      bool
		writeErr    error
		reconcile   error
		asked       time.Duration
		wantErr     bool
		wantAfter   time.Duration
		wantObserve bool
		// wantReported: the pass's effects (counters, events) are reported only once its write landed.
		wantReported bool
	}{
		{name: "nothing changed: no write", writeErr: boom, wantObserve: true, wantReported: true},
		{name: "written", change: true, wantObserve: true, wantReported: true},
		{name: "gone: nothing to write", change: true, writeErr: apierrors.NewNotFound(gr, "p"), wantObserve: true},
		{name: "conflict: look again soon", change: true, writeErr: apierrors.NewConflict(gr, "p", boom), wantAfter: ConflictRetry, wantObserve: true},
		{name: "conflict: sooner if asked", change: true, writeErr: apierrors.NewConflict(gr, "p", boom), asked: 200 * time.Millisecond, wantAfter: 200 * time.Millisecond, wantObserve: true},
		{name: "conflict: later deadline shortened", change: true, writeErr: apierrors.NewConflict(gr, "p", boom), asked: time.Hour, wantAfter: ConflictRetry, wantObserve: true},
		{name: "other error: returned", change: true, writeErr: boom, wantErr: true, wantObserve: true},
		{name: "failed reconcile: its error, the status written, observedGeneration kept", change: true, reconcile: boom, wantErr: true, wantReported: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ps := &gamev1.PlayerSession{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", Generation: 2}}
			writes := 0
			c := fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(ps).WithStatusSubresource(ps).
				WithInterceptorFuncs(interceptor.Funcs{SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
					writes++
					if tt.writeErr != nil {
						return tt.writeErr
					}
					return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
				}}).Build()
			if err := c.Get(context.Background(), client.ObjectKeyFromObject(ps), ps); err != nil {
				t.Fatal(err)
			}
			before := ps.DeepCopy()
			if tt.change {
				ps.Status.Status = gamev1.PlayerSessionReserved
			}
			result, retErr := ctrl.Result{RequeueAfter: tt.asked}, tt.reconcile
			observed, reported := false, false
			fx := &effects{}
			fx.add(func() { reported = true })
			writeStatus(context.Background(), c, before, ps, fx, func(ok bool) {
				observed = ok
				if ok && tt.change {
					ps.Status.ObservedGeneration = ps.Generation
				}
			}, &result, &retErr)
			if (retErr != nil) != tt.wantErr {
				t.Errorf("error = %v, want error %v", retErr, tt.wantErr)
			}
			if tt.wantErr && !errors.Is(retErr, boom) {
				t.Errorf("error %v does not carry the cause", retErr)
			}
			if result.RequeueAfter != max(tt.wantAfter, 0) && !(tt.wantAfter == 0 && result.RequeueAfter == tt.asked) {
				t.Errorf("RequeueAfter = %v, want %v", result.RequeueAfter, tt.wantAfter)
			}
			if observed != tt.wantObserve {
				t.Errorf("finish(ok=%v), want %v", observed, tt.wantObserve)
			}
			if reported != tt.wantReported {
				t.Errorf("effects reported = %v, want %v", reported, tt.wantReported)
			}
			if !tt.change && writes != 0 {
				t.Errorf("%d writes for no change", writes)
			}
			if tt.change && writes != 1 {
				t.Errorf("%d writes, want 1", writes)
			}
		})
	}
}

func testScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	if err := gamev1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}
