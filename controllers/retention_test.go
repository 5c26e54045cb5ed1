package controllers

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
)

func TestDeclared(t *testing.T) {
	o := DefaultOptions()
	owns := func(manager, fields string) metav1.ManagedFieldsEntry {
		return metav1.ManagedFieldsEntry{Manager: manager, Operation: metav1.ManagedFieldsOperationApply, FieldsV1: &metav1.FieldsV1{Raw: []byte(fields)}}
	}
	for _, tc := range []struct {
		name    string
		managed []metav1.ManagedFieldsEntry
		labels  map[string]string
		annots  map[string]string
		want    string
	}{
		{name: "created by a backend", managed: []metav1.ManagedFieldsEntry{owns("playersessions-gamelift", `{"f:spec":{"f:fleetId":{}}}`)}, want: ""},
		{name: "Argo CD applies the spec", managed: []metav1.ManagedFieldsEntry{owns("argocd-controller", `{"f:spec":{"f:fleetId":{}}}`)}, want: "argocd-controller"},
		{name: "Flux applies the spec", managed: []metav1.ManagedFieldsEntry{owns("kustomize-controller", `{"f:metadata":{},"f:spec":{}}`)}, want: "kustomize-controller"},
		{name: "an applier owning only a label is not enough", managed: []metav1.ManagedFieldsEntry{owns("argocd-controller", `{"f:metadata":{"f:labels":{}}}`)}, want: ""},
		{name: "Argo CD tracking annotation", annots: map[string]string{"argocd.argoproj.io/tracking-id": "app:game.playersessions.dev/GameSession:ns/g"}, want: "annotation argocd.argoproj.io/tracking-id"},
		{name: "Flux label", labels: map[string]string{"kustomize.toolkit.fluxcd.io/name": "fleet"}, want: "label kustomize.toolkit.fluxcd.io/name"},
		{name: "other labels", labels: map[string]string{"team": "a"}, want: ""},
	} {
		gs := &gamev1.GameSession{ObjectMeta: metav1.ObjectMeta{ManagedFields: tc.managed, Labels: tc.labels, Annotations: tc.annots}}
		if got := o.Declared(gs); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
	o.DeclarativeManagers, o.DeclarativeMarkers = []string{"my-gitops"}, nil
	gs := &gamev1.GameSession{ObjectMeta: metav1.ObjectMeta{
		ManagedFields: []metav1.ManagedFieldsEntry{owns("my-gitops", `{"f:spec":{}}`)},
		Annotations:   map[string]string{"argocd.argoproj.io/tracking-id": "x"}}}
	if got := o.Declared(gs); got != "my-gitops" {
		t.Errorf("configured manager: got %q", got)
	}
	gs.ManagedFields = nil
	if got := o.Declared(gs); got != "" {
		t.Errorf("markers configured away: got %q", got)
	}
}

// TestIntegrationRetentionKeepsDeclared: when retention ends, what Argo CD applied (server-side apply as
// argocd-controller) or tracks (its annotation) is kept with RetentionEnded; what a backend created is deleted.
func TestIntegrationRetentionKeepsDeclared(t *testing.T) {
	g := NewWithT(t)
	c := controlPlane(t)
	ns := namespace(t, c)
	ctx := context.Background()
	opts := testOptions()
	opts.Retention = 2 * time.Second
	startManager(t, opts)

	applied := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": gamev1.GroupVersion.String(), "kind": "GameSession",
		"metadata": map[string]any{"namespace": ns, "name": "declared"},
		"spec":     map[string]any{"fleetId": "fleet-test", "maximumPlayerSessionCount": int64(2), "ipAddress": "10.0.0.1", "port": int64(7777)},
	}}
	g.Expect(c.Patch(ctx, applied, client.Apply, client.FieldOwner("argocd-controller"), client.ForceOwnership)).To(Succeed())
	createGS(t, c, ns, "backend", 2)
	tracked := &gamev1.PlayerSession{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "declared-p",
		Annotations: map[string]string{"argocd.argoproj.io/tracking-id": "fleet:game.playersessions.dev/PlayerSession:" + ns + "/declared-p"}},
		Spec: gamev1.PlayerSessionSpec{GameSessionName: "declared", PlayerID: "alice"}}
	g.Expect(c.Create(ctx, tracked)).To(Succeed())
	createPS(t, c, ns, "backend-p", "backend")
	waitForStatus(t, c, ns, "declared-p", gamev1.PlayerSessionReserved)
	waitForStatus(t, c, ns, "backend-p", gamev1.PlayerSessionReserved)
	for _, name := range []string{"declared", "backend"} {
		g.Expect(c.Status().Patch(ctx, &gamev1.GameSession{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}},
			client.RawPatch("application/merge-patch+json", []byte(`{"status":{"status":"TERMINATED"}}`)))).To(Succeed())
	}

	g.Eventually(func(g Gomega) {
		for _, o := range []client.Object{&gamev1.GameSession{}, &gamev1.PlayerSession{}} {
			name := map[bool]string{true: "backend", false: "backend-p"}[isGameSession(o)]
			err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, o)
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "%s should be deleted: %v", name, err)
		}
		gs := getGS(g, c, ns, "declared")
		cond := meta.FindStatusCondition(gs.Status.Conditions, gamev1.RetentionEndedCondition)
		g.Expect(cond).NotTo(BeNil())
		g.Expect(cond.Reason).To(Equal(gamev1.DeclaredByApplierReason))
		g.Expect(cond.Message).To(ContainSubstring("argocd-controller"))
		ps := getPS(g, c, ns, "declared-p")
		g.Expect(meta.IsStatusConditionTrue(ps.Status.Conditions, gamev1.RetentionEndedCondition)).To(BeTrue())
		g.Expect(ps.Status.Status).To(Equal(gamev1.PlayerSessionCompleted))
	}).WithTimeout(30 * time.Second).Should(Succeed())

	// One event each, and they stay.
	time.Sleep(time.Second)
	var list eventsv1.EventList
	g.Expect(c.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
	n := 0
	for _, e := range list.Items {
		if e.Reason == gamev1.RetentionEndedCondition {
			n++
		}
	}
	g.Expect(n).To(Equal(2))
	getGS(g, c, ns, "declared")
	getPS(g, c, ns, "declared-p")
}

func isGameSession(o client.Object) bool {
	_, ok := o.(*gamev1.GameSession)
	return ok
}
