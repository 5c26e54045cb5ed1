// Package replicas tells the leader which manager replicas are running. Each replica holds a Lease of its
// own (Heartbeat), renewed while it runs, with this run's identity as its holder. A game server process's
// connection is held by one replica, recorded on its Compute (status.processes[].connection, the Lease's
// name and holder); the connection is gone when the replica closed it (disconnectionTime), when the Lease
// has another holder (the replica restarted), or when the Lease expired or is missing (the replica
// stopped, or died). Lost says which, and since when: the leader ends a process lost for longer than the
// reconnection grace period.
package replicas

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
)

// Label marks the replicas' Leases (the manager caches only these).
const Label = "game.playersessions.dev/replica"

// LeaseName is the name of replica name's Lease.
func LeaseName(name string) string { return "playersessions-replica-" + name }

// DefaultLeaseDuration is how long a replica's Lease lasts without renewal; it is renewed three times as
// often.
const DefaultLeaseDuration = 30 * time.Second

// NewHolder is a fresh holder identity, one per run of a replica.
func NewHolder() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Heartbeat holds and renews a replica's Lease (a manager Runnable, on every replica).
type Heartbeat struct {
	Client    client.Client
	Namespace string
	// Name is the Lease's name (LeaseName), Holder this run's identity (NewHolder).
	Name, Holder string
	Duration     time.Duration // 0: DefaultLeaseDuration
	Clock        clock.PassiveClock
}

// NeedLeaderElection is false: every replica proves it runs.
func (h *Heartbeat) NeedLeaderElection() bool { return false }

// Start renews the Lease every third of its duration until ctx ends; a failed renewal is tried again at
// the next tick (a replica that cannot renew for a whole duration is taken for gone, as it should be).
func (h *Heartbeat) Start(ctx context.Context) error {
	if h.Duration == 0 {
		h.Duration = DefaultLeaseDuration
	}
	log := ctrl.LoggerFrom(ctx).WithValues("lease", h.Namespace+"/"+h.Name)
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		if err := h.Renew(ctx); err != nil {
			log.Error(err, "Renewing this replica's Lease")
		}
	}, h.Duration/3)
	return nil
}

// Renew creates the Lease, or renews it as this run's: a restarted replica takes its Lease over with a new
// holder and acquire time (the connections of its former run are gone since then).
func (h *Heartbeat) Renew(ctx context.Context) error {
	now := metav1.NewMicroTime(h.Clock.Now())
	lease := &coordinationv1.Lease{}
	err := h.Client.Get(ctx, client.ObjectKey{Namespace: h.Namespace, Name: h.Name}, lease)
	if apierrors.IsNotFound(err) {
		lease = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: h.Namespace, Name: h.Name, Labels: map[string]string{Label: "true"}},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(h.Holder), LeaseDurationSeconds: ptr.To(int32(h.Duration.Seconds())),
				AcquireTime: &now, RenewTime: &now}}
		return h.Client.Create(ctx, lease)
	}
	if err != nil {
		return err
	}
	before := lease.DeepCopy()
	if ptr.Deref(lease.Spec.HolderIdentity, "") != h.Holder {
		lease.Spec.HolderIdentity, lease.Spec.AcquireTime = ptr.To(h.Holder), &now
		lease.Spec.LeaseTransitions = ptr.To(ptr.Deref(lease.Spec.LeaseTransitions, 0) + 1)
	}
	lease.Spec.RenewTime, lease.Spec.LeaseDurationSeconds = &now, ptr.To(int32(h.Duration.Seconds()))
	if lease.Labels[Label] != "true" {
		lease.Labels = map[string]string{Label: "true"}
	}
	if err := h.Client.Patch(ctx, lease, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("renewing Lease %s: %w", h.Name, err)
	}
	return nil
}

// Lost says whether a process's connection is lost, and since when: closed by its replica (its
// disconnectionTime); held by a former run of a replica that restarted (since the new run took the
// Lease); by a replica whose Lease expired (since it expired) or is missing (since the connection began:
// the Lease of a running replica is never missing for long). lease is the Lease the connection names, nil
// when there is none. A process without a connection record has none to lose.
func Lost(conn *gamev1.ProcessConnection, lease *coordinationv1.Lease, now time.Time) (time.Time, bool) {
	switch {
	case conn == nil:
		return time.Time{}, false
	case conn.DisconnectionTime != nil:
		return conn.DisconnectionTime.Time, true
	case lease == nil:
		return conn.ConnectionTime.Time, true
	case ptr.Deref(lease.Spec.HolderIdentity, "") != conn.Holder:
		if lease.Spec.AcquireTime != nil && lease.Spec.AcquireTime.After(conn.ConnectionTime.Time) {
			return lease.Spec.AcquireTime.Time, true
		}
		return conn.ConnectionTime.Time, true
	}
	if expiry := Expiry(lease); !expiry.After(now) {
		return expiry, true
	}
	return time.Time{}, false
}

// Expiry is when a Lease expires without another renewal.
func Expiry(lease *coordinationv1.Lease) time.Time {
	if lease.Spec.RenewTime == nil {
		return time.Time{}
	}
	return lease.Spec.RenewTime.Add(time.Duration(ptr.Deref(lease.Spec.LeaseDurationSeconds, 0)) * time.Second)
}
