// Package webhook holds the admission webhooks: the PlayerSession webhook, the synchronous refusal, at
// create time, of a player session its game session would refuse anyway; and the Pod webhook, which gives a
// game server Pod that opts in the GameLift Server SDK's environment (pods.go).
package webhook

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	psadmission "github.com/playersessions/operator/internal/admission"
	"github.com/playersessions/operator/internal/indexes"
	"github.com/playersessions/operator/internal/metrics"
)

// Path is where the webhook is served (controller-runtime's path for the kind).
const Path = "/validate-game-playersessions-dev-v1alpha1-playersession"

// +kubebuilder:webhook:path=/validate-game-playersessions-dev-v1alpha1-playersession,mutating=false,failurePolicy=ignore,sideEffects=None,groups=game.playersessions.dev,resources=playersessions,verbs=create,versions=v1alpha1,name=vplayersession.game.playersessions.dev,admissionReviewVersions=v1,timeoutSeconds=2

// PlayerSessionValidator refuses, at create time, a player session that its game session would refuse for
// good: the game session is ending or ended (InvalidGameSessionStatus), DENY_ALL
// (PlayerSessionCreationDenied) or full (GameSessionFull). The answer comes from the manager's cache and is
// advisory: failurePolicy is Ignore, and a create it lets through is decided by the GameSession
// reconciler's ledger, which stays the only authority on seats. A player session whose game session does
// not exist (yet) is let through: the controllers wait one timeout for it to appear.
type PlayerSessionValidator struct {
	Reader client.Reader
	Clock  clock.PassiveClock
	// Timeout is the controllers' --player-session-timeout: how long a player session waits for its game
	// session to appear or activate, and a group for its members.
	Timeout time.Duration
}

// Setup registers the webhooks with mgr's webhook server; pods configures the Pod webhook.
func Setup(mgr ctrl.Manager, clk clock.PassiveClock, timeout time.Duration, pods *PodDefaulter) error {
	if err := ctrl.NewWebhookManagedBy(mgr, &gamev1.PlayerSession{}).
		WithValidator(&PlayerSessionValidator{Reader: mgr.GetCache(), Clock: clk, Timeout: timeout}).
		Complete(); err != nil {
		return err
	}
	return ctrl.NewWebhookManagedBy(mgr, &corev1.Pod{}).WithDefaulter(pods).Complete()
}

// ValidateCreate refuses a player session its game session would refuse.
func (v *PlayerSessionValidator) ValidateCreate(ctx context.Context, ps *gamev1.PlayerSession) (admission.Warnings, error) {
	gs := &gamev1.GameSession{}
	if err := v.Reader.Get(ctx, client.ObjectKey{Namespace: ps.Namespace, Name: ps.Spec.GameSessionName}, gs); err != nil {
		if apierrors.IsNotFound(err) {
			return admission.Warnings{fmt.Sprintf("game session %s does not exist; the player session is refused (%s) unless it appears within %s",
				ps.Spec.GameSessionName, gamev1.GameSessionNotFoundReason, v.Timeout)}, nil
		}
		return nil, nil // advisory: let the controllers decide
	}
	var players gamev1.PlayerSessionList
	if err := v.Reader.List(ctx, &players, client.InNamespace(ps.Namespace), client.MatchingFields{indexes.PlayerSessionGameSessionName: gs.Name}); err != nil {
		return nil, nil
	}
	refusal, refused := psadmission.CreateRefusal(gs, players.Items, ps, v.Clock.Now(), v.Timeout)
	if !refused {
		return nil, nil
	}
	if req, err := admission.RequestFromContext(ctx); err == nil && (req.DryRun == nil || !*req.DryRun) {
		metrics.Refused(refusal.Reason)
	}
	ctrl.LoggerFrom(ctx).V(1).Info("Player session refused at create", "playerSession", klog.KObj(ps), "gameSession", klog.KObj(gs), "reason", refusal.Reason)
	return nil, psadmission.Forbidden(refusal) // the reason travels as a StatusCause
}

// ValidateUpdate allows every update: the API server's CEL rules guard them.
func (v *PlayerSessionValidator) ValidateUpdate(context.Context, *gamev1.PlayerSession, *gamev1.PlayerSession) (admission.Warnings, error) {
	return nil, nil
}

// ValidateDelete allows every delete.
func (v *PlayerSessionValidator) ValidateDelete(context.Context, *gamev1.PlayerSession) (admission.Warnings, error) {
	return nil, nil
}
