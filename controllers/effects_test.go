package controllers

import (
	"context"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/internal/metrics"
)

// TestTransitionsReportedOnceTheWriteLands: a pass whose status write meets a conflict reports nothing of
// the transitions it made (counters, events); the pass that makes them again reports them once. Before the
// effects waited for the write, a reservation, a timeout and an activation that met one conflict were
// counted and announced twice.
func TestTransitionsReportedOnceTheWriteLands(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t, newGS("gs", 2, true), newPS("a", "gs"))
	rec := events.NewFakeRecorder(100)
	conflicts := 0
	conflictOnce := interceptor.NewClient(f.c.(client.WithWatch), interceptor.Funcs{
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
			if conflicts == 0 {
				conflicts++
				return apierrors.NewConflict(schema.GroupResource{Group: gamev1.GroupVersion.Group}, obj.GetName(), nil)
			}
			return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
		}})
	f.gsr.Client, f.gsr.Recorder, f.psr.Client, f.psr.Recorder = conflictOnce, rec, conflictOnce, rec
	admissions, timeouts := testutil.ToFloat64(metrics.Admissions), testutil.ToFloat64(metrics.Timeouts)

	f.reconcileGS(t, "gs") // conflict: nothing written, nothing reported
	g.Expect(drain(rec)).To(BeEmpty())
	f.reconcileGS(t, "gs") // ACTIVE, the seat granted
	g.Expect(drain(rec)).To(ConsistOf(HavePrefix("Normal Activated"), HavePrefix("Normal SeatsGranted")))

	conflicts = 0
	f.reconcilePS(t, "a") // conflict
	f.reconcilePS(t, "a") // RESERVED
	g.Expect(f.ps(t, "a").Status.Status).To(Equal(gamev1.PlayerSessionReserved))
	g.Expect(testutil.ToFloat64(metrics.Admissions) - admissions).To(Equal(1.0))

	f.clock.Step(f.psr.PlayerSessionTimeout)
	conflicts = 0
	f.reconcilePS(t, "a") // conflict
	g.Expect(drain(rec)).To(BeEmpty())
	f.reconcilePS(t, "a") // TIMEDOUT
	g.Expect(f.ps(t, "a").Status.Status).To(Equal(gamev1.PlayerSessionTimedOut))
	g.Expect(drain(rec)).To(ConsistOf(HavePrefix("Normal TimedOut")))
	g.Expect(testutil.ToFloat64(metrics.Timeouts) - timeouts).To(Equal(1.0))
}

// drain returns the events recorded so far.
func drain(rec *events.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-rec.Events:
			out = append(out, strings.TrimSpace(e))
		default:
			return out
		}
	}
}
