// Package controllers holds the reconcilers of GameSession and PlayerSession: each a short Reconcile of
// phase functions (admission, Agones binding, timeouts, ends, archive, retention) ending in one deferred
// status write, with their options and their setup. Nothing else imports it but the manager (and tests):
// what the other packages share with it lives in internal/admission, ids, indexes and metrics.
package controllers

import (
	"time"

	"github.com/playersessions/operator/internal/ids"
)

// Options configure both reconcilers.
type Options struct {
	// PlayerSessionTimeout is how long a RESERVED player session waits for its game server to accept the
	// player before it becomes TIMEDOUT. It is also how long a new player session waits for a missing or
	// ACTIVATING game session before it is refused.
	PlayerSessionTimeout time.Duration
	// Retention is how long player sessions and ended game sessions are kept after their game session ended.
	Retention time.Duration
	// ARNs mint the GameLift-style ids and ARNs (their region and account).
	ids.ARNs
	// MaxConcurrentReconciles per controller.
	MaxConcurrentReconciles int
	// BatchWindow is how long a game session waits after a change of one of its player sessions before it
	// reconciles. 0 (the default): at once; a burst is still decided and written together, because the
	// workqueue runs one reconcile of a game session at a time and folds the changes that arrive meanwhile
	// into the next one. A window only adds latency (docs/benchmarks.md).
	BatchWindow time.Duration
	// ReleaseWindow is how long a game session waits, at most, after one of its player sessions ended before
	// it frees the seat in its ledger, when nobody waits for one (a waiting player session brings the game
	// session back after BatchWindow, with every release due). Releases are batched longer than admissions
	// because nobody waits for them: at the end of a burst of reservations, the burst of timeouts then
	// costs one ledger write per game session per ReleaseWindow instead of one per BatchWindow.
	ReleaseWindow time.Duration
	// AgonesAllocationTimeout is how long a game session on an Agones fleet keeps trying to allocate a
	// GameServer (with backoff) before it becomes ERROR.
	AgonesAllocationTimeout time.Duration
	// ProcessActivationTimeout is how long a game session placed on a GameLift Server SDK process may wait
	// for the game's ActivateGameSession before it becomes ERROR.
	ProcessActivationTimeout time.Duration
	// ProcessReconnectGrace is how long a GameLift Server SDK process whose connection was lost (closed, or
	// held by a replica that stopped) has to connect again before it is TERMINATED (ConnectionLost) and its
	// game session ends INTERRUPTED.
	ProcessReconnectGrace time.Duration
	// ComputeTokenTTL is how long the auth token of a game server Pod's compute is valid (0: 3 hours).
	ComputeTokenTTL time.Duration
	// ComputeCA is the CA of the Server SDK WebSocket's certificate, written beside a game server Pod's
	// token (key ca.crt of its Secret) for the Pod webhook to mount (empty: none).
	ComputeCA []byte
	// ReplicaNamespace is where the replicas' Leases are (internal/replicas): a process connected to a
	// replica whose Lease there expired, or changed holder, is lost. Empty: only a replica closing a
	// connection makes it lost.
	ReplicaNamespace string
	// RetainDeclared keeps, when its retention ends, an object that an applier declares (see Declared);
	// it gets the RetentionEnded condition and an event instead of being deleted.
	RetainDeclared bool
	// DeclarativeManagers are the server-side-apply field managers of appliers (Argo CD, Flux, Helm): an
	// object on which one of them owns a spec field is declared.
	DeclarativeManagers []string
	// DeclarativeMarkers are label or annotation keys with which appliers track what they applied: an
	// object carrying one is declared.
	DeclarativeMarkers []string

	// History, when set, is the history store: an ended player session whose game session ended more than
	// HistoryGrace ago is written there and its custom resource deleted; retention then runs in the store.
	// Nil: retention runs on the custom resources (the embedded default).
	History Archiver
	// HistoryGrace is how long an ended player session stays a custom resource after its game session ended.
	HistoryGrace time.Duration
}

// DefaultOptions are GameLift's: 60 s to accept a reservation, 30 days of retention.
func DefaultOptions() Options {
	return Options{
		PlayerSessionTimeout:     60 * time.Second,
		Retention:                30 * 24 * time.Hour,
		ARNs:                     ids.ARNs{Region: "local", AccountID: "000000000000"},
		MaxConcurrentReconciles:  16,
		BatchWindow:              0,
		ReleaseWindow:            time.Second,
		AgonesAllocationTimeout:  60 * time.Second,
		ProcessActivationTimeout: 5 * time.Minute,
		ProcessReconnectGrace:    2 * time.Minute,
		RetainDeclared:           true,
		HistoryGrace:             5 * time.Minute,
		DeclarativeManagers:      []string{"argocd-controller", "kustomize-controller", "helm-controller"},
		DeclarativeMarkers: []string{"argocd.argoproj.io/tracking-id", "app.kubernetes.io/instance",
			"kustomize.toolkit.fluxcd.io/name", "helm.toolkit.fluxcd.io/name"},
	}
}
