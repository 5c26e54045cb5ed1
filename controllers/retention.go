package controllers

import (
	"context"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
)

// Retention versus the applier. Deleting, when its retention ends, an object that Argo CD or Flux applies
// from Git would make the applier recreate it at its next sync, as a brand-new game (or player) session.
// So an object an applier declares is kept instead: it gets the RetentionEnded condition and an event
// telling its owner to remove it from Git. Objects created by game backends (the GameLift endpoint, their
// own clients) are deleted as before.

// Declared returns the applier that declares obj, or "": a field manager of DeclarativeManagers that owns a
// spec field, or else a tracking label or annotation of DeclarativeMarkers. obj must be read from the API
// server: the manager's cache drops managedFields.
func (o Options) Declared(obj client.Object) string {
	for _, mf := range obj.GetManagedFields() {
		if slices.Contains(o.DeclarativeManagers, mf.Manager) && mf.FieldsV1 != nil && strings.Contains(string(mf.FieldsV1.Raw), `"f:spec"`) {
			return mf.Manager
		}
	}
	for _, k := range o.DeclarativeMarkers {
		if _, ok := obj.GetLabels()[k]; ok {
			return "label " + k
		}
		if _, ok := obj.GetAnnotations()[k]; ok {
			return "annotation " + k
		}
	}
	return ""
}

// retainDeclared decides, when obj's retention has ended, whether to keep it: it reads obj live and, if an
// applier declares it, sets RetentionEnded in conditions (an event the first time) and reports true.
func retainDeclared(ctx context.Context, fx *effects, live client.Reader, rec events.EventRecorder, o Options, obj client.Object, fresh client.Object, conditions *[]metav1.Condition) (bool, error) {
	if !o.RetainDeclared {
		return false, nil
	}
	if err := live.Get(ctx, client.ObjectKeyFromObject(obj), fresh); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	by := o.Declared(fresh)
	if by == "" {
		return false, nil
	}
	if !meta.IsStatusConditionTrue(*conditions, gamev1.RetentionEndedCondition) {
		msg := "Retention ended; kept because it is declared by an applier (" + by + "): remove it from Git to delete it"
		fx.add(func() {
			ctrl.LoggerFrom(ctx).Info("Retention ended; keeping a declared object", "object", klog.KObj(obj), "declaredBy", by)
			rec.Eventf(obj, nil, corev1.EventTypeNormal, gamev1.RetentionEndedCondition, "Retain", "%s", msg)
		})
		meta.SetStatusCondition(conditions, metav1.Condition{Type: gamev1.RetentionEndedCondition, Status: metav1.ConditionTrue,
			Reason: gamev1.DeclaredByApplierReason, Message: msg, ObservedGeneration: obj.GetGeneration()})
	}
	return true, nil
}
