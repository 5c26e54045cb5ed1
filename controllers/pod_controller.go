package controllers

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/internal/computes"
	"github.com/playersessions/operator/internal/metrics"
)

// PodReconciler gives a game server Pod that opted in (label gamev1.GameLiftSDKLabel; the Pod webhook gave
// it the SDK's environment and its compute name) what the aws CLI gives an Anywhere host: a Compute of its
// own (its fleet, its compute name, the Pod's IP; owned by the Pod, so it goes with it, and its game
// session ends INTERRUPTED), and an auth token for it, in the Secret gamev1.TokenSecretName(compute) that
// the Pod's environment reads (owned by the Pod too). The token is replaced before it expires (a quarter of
// its life before, 15 minutes at most), for a container that starts again; a running process gets its
// fresh token from its connection (RefreshConnection). The Compute's status records the Secret's token
// (status.tokenSecret), written after the Secret, so a reconcile that stopped between the two writes
// writes both again.
type PodReconciler struct {
	Deps
}

// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=create;patch
// +kubebuilder:rbac:groups=game.playersessions.dev,resources=computes,verbs=get;list;watch;create

// Reconcile registers a Pod's compute and keeps its token fresh.
func (r *PodReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	defer metrics.ObserveReconcile("pod", time.Now())
	pod := &corev1.Pod{}
	if err := r.Get(ctx, req.NamespacedName, pod); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	fleet, name := pod.Annotations[gamev1.FleetIDAnnotation], pod.Annotations[gamev1.ComputeNameAnnotation]
	switch {
	case !pod.DeletionTimestamp.IsZero() || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed:
		return ctrl.Result{}, nil
	case fleet == "" || name == "":
		r.Recorder.Eventf(pod, nil, corev1.EventTypeWarning, "NoGameLiftEnvironment", "Register",
			"Pod is labelled %s but has no fleet or compute name: it was created without the operator's Pod webhook", gamev1.GameLiftSDKLabel)
		return ctrl.Result{}, nil
	case pod.Status.PodIP == "":
		return ctrl.Result{}, nil // its IP comes with the sandbox, before its containers: an update brings it back
	}
	c, err := r.ensureCompute(ctx, pod, fleet, name)
	if c == nil || err != nil {
		return ctrl.Result{}, err
	}
	return r.ensureToken(ctx, pod, c)
}

// ensureCompute reads the Pod's Compute, or registers it (ACTIVE, with its ARN). A Compute of that name
// that is not the Pod's is left alone (nil), with an event.
func (r *PodReconciler) ensureCompute(ctx context.Context, pod *corev1.Pod, fleet, name string) (*gamev1.Compute, error) {
	key := client.ObjectKey{Namespace: pod.Namespace, Name: computes.ObjectName(fleet, name)}
	c := &gamev1.Compute{}
	err := r.Get(ctx, key, c)
	if apierrors.IsNotFound(err) {
		err = r.APIReader.Get(ctx, key, c) // created by a reconcile whose write is not in the cache yet
	}
	switch {
	case apierrors.IsNotFound(err):
		c = &gamev1.Compute{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(pod, corev1.SchemeGroupVersion.WithKind("Pod"))}},
			Spec: gamev1.ComputeSpec{FleetID: fleet, ComputeName: name, IPAddress: pod.Status.PodIP}}
		if err := r.Create(ctx, c); err != nil {
			return nil, err
		}
		ctrl.LoggerFrom(ctx).Info("Registered a game server Pod's compute", "pod", klog.KObj(pod), "compute", klog.KObj(c))
		r.Recorder.Eventf(pod, c, corev1.EventTypeNormal, "ComputeRegistered", "Register", "Registered compute %s of fleet %s at %s", name, fleet, pod.Status.PodIP)
	case err != nil:
		return nil, err
	case !metav1.IsControlledBy(c, pod):
		r.Recorder.Eventf(pod, c, corev1.EventTypeWarning, "ComputeNameTaken", "Register",
			"Compute %s of fleet %s is registered already, not for this Pod: the Pod gets no token", name, fleet)
		return nil, nil
	}
	if c.Status.ComputeStatus == "" {
		before := c.DeepCopy()
		c.Status.ComputeStatus, c.Status.ComputeArn = gamev1.ComputeActive, r.ARNs.ComputeArn(fleet, name)
		if err := r.Status().Patch(ctx, c, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// ensureToken writes a fresh token into the Pod's Secret (server-side apply of the operator's own Secret:
// the operator may create and patch Secrets, never read them), then records it on the Compute (its hash,
// and the Secret's expiry), when the Secret's token is missing or due for rotation. The decision is made on
// the Compute read from the API server, and the record is written under the optimistic lock: a record that
// meets a conflict (the Compute's processes change often) is decided again, and the Secret written again,
// so the Secret always ends with the token last recorded.
func (r *PodReconciler) ensureToken(ctx context.Context, pod *corev1.Pod, c *gamev1.Compute) (ctrl.Result, error) {
	ttl := r.ComputeTokenTTL
	if ttl == 0 {
		ttl = computes.DefaultTokenTTL
	}
	rotateBefore := min(15*time.Minute, ttl/4)
	if s := c.Status.TokenSecret; s != nil && s.ExpirationTime.Add(-rotateBefore).After(r.Clock.Now()) {
		return ctrl.Result{RequeueAfter: s.ExpirationTime.Add(-rotateBefore).Sub(r.Clock.Now())}, nil // the cache says not due: no read
	}
	for attempt := 1; ; attempt++ {
		if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(c), c); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
		if s := c.Status.TokenSecret; s != nil && s.ExpirationTime.Add(-rotateBefore).After(r.Clock.Now()) {
			return ctrl.Result{RequeueAfter: s.ExpirationTime.Add(-rotateBefore).Sub(r.Clock.Now())}, nil
		}
		done, err := r.writeToken(ctx, pod, c, ttl)
		switch {
		case err != nil:
			return ctrl.Result{}, err
		case done:
			return ctrl.Result{RequeueAfter: ttl - rotateBefore}, nil
		case attempt == maxTokenAttempts:
			return ctrl.Result{RequeueAfter: ConflictRetry}, nil
		}
	}
}

// maxTokenAttempts bounds the token writes of one reconcile that meet a conflict on the Compute.
const maxTokenAttempts = 5

// writeToken writes a fresh token into the Pod's Secret and records it on c; false when the record met a
// conflict.
func (r *PodReconciler) writeToken(ctx context.Context, pod *corev1.Pod, c *gamev1.Compute, ttl time.Duration) (bool, error) {
	now := r.Clock.Now()
	token, expires := computes.NewToken(), now.Add(ttl)
	name := gamev1.TokenSecretName(c.Spec.ComputeName)
	data := map[string]string{gamev1.TokenSecretKey: token}
	if len(r.ComputeCA) > 0 {
		data[gamev1.TokenSecretCAKey] = string(r.ComputeCA)
	}
	secret := corev1ac.Secret(name, pod.Namespace).
		WithLabels(map[string]string{gamev1.TokenSecretLabel: "true"}).
		WithAnnotations(map[string]string{"game.playersessions.dev/expiration-time": expires.UTC().Format(time.RFC3339)}).
		WithOwnerReferences(metav1ac.OwnerReference().WithAPIVersion("v1").WithKind("Pod").WithName(pod.Name).WithUID(pod.UID).WithController(true)).
		WithType(corev1.SecretTypeOpaque).
		WithStringData(data)
	if err := r.Apply(ctx, secret, client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
		return false, fmt.Errorf("writing the token Secret %s/%s: %w", pod.Namespace, name, err)
	}
	before := c.DeepCopy()
	c.Status.AuthTokens = computes.WithToken(c.Status.AuthTokens, token, now, expires)
	c.Status.TokenSecret = &gamev1.ComputeTokenSecret{Name: name, ExpirationTime: metav1.NewTime(expires)}
	if err := r.Status().Patch(ctx, c, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		if apierrors.IsConflict(err) {
			return false, nil
		}
		return false, err
	}
	ctrl.LoggerFrom(ctx).Info("Wrote a game server Pod's auth token", "pod", klog.KObj(pod), "secret", name, "expires", expires)
	return true, nil
}

// SetupWithManager watches the Pods that opted in (the manager caches no others) and their Computes (a
// Compute deleted while its Pod runs, by DeregisterCompute, is registered again).
func (r *PodReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).Named("pod").
		For(&corev1.Pod{}, builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool {
			return o.GetLabels()[gamev1.GameLiftSDKLabel] == "true"
		}))).
		Watches(&gamev1.Compute{}, handler.EnqueueRequestForOwner(mgr.GetScheme(), mgr.GetRESTMapper(), &corev1.Pod{}, handler.OnlyControllerOwner()),
			builder.WithPredicates(predicate.Funcs{UpdateFunc: func(event.UpdateEvent) bool { return false }})).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.MaxConcurrentReconciles}).
		Complete(r)
}
