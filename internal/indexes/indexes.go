// Package indexes is the manager's cache as its readers see it: the field indexes (names and registration)
// and the transform that strips what no reader needs. The reconcilers, the admission webhook, the GameLift
// endpoint and the metrics read the cache through them; none of them owns them, so none imports another to
// find an index (as Kueue keeps its indexer apart from its controllers).
package indexes

import (
	"context"
	"slices"

	"sigs.k8s.io/controller-runtime/pkg/client"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
)

// Field indexes registered in the manager's cache.
const (
	PlayerSessionGameSessionName = "spec.gameSessionName"
	PlayerSessionPlayerID        = "spec.playerId"
	PlayerSessionStatus          = "status.status"
	PlayerSessionID              = "status.playerSessionId"
	PlayerSessionGameSessionID   = "status.gameSessionId"
	GameSessionID                = "status.gameSessionId"
	GameSessionFleetID           = "spec.fleetId"
	// GameSessionGameServer indexes game sessions by the Agones GameServer they are (or will be) bound to.
	GameSessionGameServer = "agones.gameServerName"
	// GameSessionAwaitingAllocation indexes the game sessions waiting for a GameServer from an Agones fleet
	// by the fleet's name, so that a GameServer becoming Ready wakes only them.
	GameSessionAwaitingAllocation = "agones.awaitingAllocationFrom"
	// GameSessionProcessCompute indexes game sessions by the Compute of the process they are placed on.
	GameSessionProcessCompute = "status.process.compute"
	// GameSessionAwaitingProcess indexes the game sessions waiting to be placed on a GameLift Server SDK
	// process by their fleet, so that a Compute's change wakes only them.
	GameSessionAwaitingProcess = "placement.awaitingProcessIn"
	// ComputeFleetID indexes Computes by their fleet.
	ComputeFleetID = "spec.fleetId"
	// ComputeReplica indexes Computes by the replicas (their Leases' names) holding the connections of
	// their ACTIVE processes, so that a replica found gone wakes only its computes.
	ComputeReplica = "status.processes.connection.replica"
	// ProcessClaimCompute indexes ProcessClaims by their Compute, ProcessClaimGameSessionUID by the UID of
	// the game session they place.
	ProcessClaimCompute = "spec.compute"
	// QueueName indexes GameSessionQueues by their GameLift name, PlacementID GameSessionPlacements by theirs.
	QueueName                  = "spec.name"
	PlacementID                = "spec.placementId"
	ProcessClaimGameSessionUID = "spec.gameSessionUID"
)

// ReplicasOf are the values of ComputeReplica of c.
func ReplicasOf(c *gamev1.Compute) []string {
	var out []string
	for _, sp := range c.Status.Processes {
		if sp.Status == gamev1.ServerProcessActive && sp.Connection != nil && !slices.Contains(out, sp.Connection.Replica) {
			out = append(out, sp.Connection.Replica)
		}
	}
	return out
}

// StatusPending is the status index value (and the query API's status field value) of a player session
// that has no status yet: waiting for admission, or refused.
const StatusPending = "PENDING"

// StatusOf is the status index value of ps.
func StatusOf(ps *gamev1.PlayerSession) string {
	if ps.Status.Status == "" {
		return StatusPending
	}
	return string(ps.Status.Status)
}

// GameServerOf is the Agones GameServer a game session is bound to or waits for ("" while allocating, or
// not on Agones).
func GameServerOf(gs *gamev1.GameSession) string {
	if gs.Status.Agones != nil && gs.Status.Agones.GameServerName != "" {
		return gs.Status.Agones.GameServerName
	}
	if gs.Spec.Agones != nil {
		return gs.Spec.Agones.GameServerName
	}
	return ""
}

// AwaitingAllocationFrom is the fleet a game session waits to be allocated a GameServer from ("" when it
// does not wait: bound, not on a fleet, ended or deleted).
func AwaitingAllocationFrom(gs *gamev1.GameSession) string {
	if gs.Spec.Agones == nil || gs.Spec.Agones.FleetName == "" || GameServerOf(gs) != "" || !gs.DeletionTimestamp.IsZero() ||
		gs.Status.Status == gamev1.GameSessionTerminated || gs.Status.Status == gamev1.GameSessionError {
		return ""
	}
	return gs.Spec.Agones.FleetName
}

// AwaitingProcessIn is the fleet a game session waits for an idle SDK process of ("" when it does not:
// placed, on Agones, with an endpoint of its own, not ACTIVATING, or deleted).
func AwaitingProcessIn(gs *gamev1.GameSession) string {
	if gs.Status.Process != nil || gs.Spec.Agones != nil || gs.Spec.Port != 0 || gs.Status.Status != gamev1.GameSessionActivating || !gs.DeletionTimestamp.IsZero() {
		return ""
	}
	return gs.Spec.FleetID
}

// Setup registers the field indexes.
func Setup(ctx context.Context, indexer client.FieldIndexer) error {
	for name, f := range map[string]func(*gamev1.PlayerSession) string{
		PlayerSessionGameSessionName: func(p *gamev1.PlayerSession) string { return p.Spec.GameSessionName },
		PlayerSessionPlayerID:        func(p *gamev1.PlayerSession) string { return p.Spec.PlayerID },
		PlayerSessionID:              func(p *gamev1.PlayerSession) string { return p.Status.PlayerSessionID },
		PlayerSessionGameSessionID:   func(p *gamev1.PlayerSession) string { return p.Status.GameSessionID },
		PlayerSessionStatus:          StatusOf,
	} {
		if err := index(ctx, indexer, &gamev1.PlayerSession{}, name, f); err != nil {
			return err
		}
	}
	for name, f := range map[string]func(*gamev1.GameSession) string{
		GameSessionFleetID:            func(g *gamev1.GameSession) string { return g.Spec.FleetID },
		GameSessionGameServer:         GameServerOf,
		GameSessionAwaitingAllocation: AwaitingAllocationFrom,
		GameSessionID:                 func(g *gamev1.GameSession) string { return g.Status.GameSessionID },
		GameSessionAwaitingProcess:    AwaitingProcessIn,
		GameSessionProcessCompute: func(g *gamev1.GameSession) string {
			if g.Status.Process == nil {
				return ""
			}
			return g.Status.Process.Compute
		},
	} {
		if err := index(ctx, indexer, &gamev1.GameSession{}, name, f); err != nil {
			return err
		}
	}
	if err := index(ctx, indexer, &gamev1.GameSessionQueue{}, QueueName, func(q *gamev1.GameSessionQueue) string { return q.Spec.Name }); err != nil {
		return err
	}
	if err := index(ctx, indexer, &gamev1.GameSessionPlacement{}, PlacementID, func(p *gamev1.GameSessionPlacement) string { return p.Spec.PlacementID }); err != nil {
		return err
	}
	if err := index(ctx, indexer, &gamev1.ProcessClaim{}, ProcessClaimCompute, func(c *gamev1.ProcessClaim) string { return c.Spec.Compute }); err != nil {
		return err
	}
	if err := index(ctx, indexer, &gamev1.ProcessClaim{}, ProcessClaimGameSessionUID, func(c *gamev1.ProcessClaim) string { return c.Spec.GameSessionUID }); err != nil {
		return err
	}
	if err := indexer.IndexField(ctx, &gamev1.Compute{}, ComputeReplica, func(o client.Object) []string { return ReplicasOf(o.(*gamev1.Compute)) }); err != nil {
		return err
	}
	return index(ctx, indexer, &gamev1.Compute{}, ComputeFleetID, func(c *gamev1.Compute) string { return c.Spec.FleetID })
}

// index registers one single-valued index of T; an empty value is not indexed.
func index[T client.Object](ctx context.Context, indexer client.FieldIndexer, obj T, name string, f func(T) string) error {
	return indexer.IndexField(ctx, obj, name, func(o client.Object) []string {
		if v := f(o.(T)); v != "" {
			return []string{v}
		}
		return nil
	})
}

// StripForCache is the cache transform: it drops what no reader of the cache needs (managedFields and the
// last-applied-configuration annotation), which is most of a small object's memory.
func StripForCache(obj any) (any, error) {
	if o, ok := obj.(client.Object); ok {
		o.SetManagedFields(nil)
		if a := o.GetAnnotations(); a != nil {
			if _, ok := a["kubectl.kubernetes.io/last-applied-configuration"]; ok {
				delete(a, "kubectl.kubernetes.io/last-applied-configuration")
				o.SetAnnotations(a)
			}
		}
	}
	return obj, nil
}
