package controllers

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/client"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
)

// Field indexes registered in the manager's cache. The query API and the GameLift endpoint read through them.
const (
	IndexPlayerSessionGameSessionName = "spec.gameSessionName"
	IndexPlayerSessionPlayerID        = "spec.playerId"
	IndexPlayerSessionStatus          = "status.status"
	IndexPlayerSessionID              = "status.playerSessionId"
	IndexPlayerSessionGameSessionID   = "status.gameSessionId"
	IndexGameSessionID                = "status.gameSessionId"
	IndexGameSessionFleetID           = "spec.fleetId"
)

// StatusPending is the index value of a player session that has no status yet (waiting for admission or refused).
const StatusPending = "PENDING"

// SetupIndexes registers the field indexes of both kinds.
func SetupIndexes(ctx context.Context, indexer client.FieldIndexer) error {
	ps := func(name string, f func(*gamev1.PlayerSession) string) error {
		return indexer.IndexField(ctx, &gamev1.PlayerSession{}, name, func(o client.Object) []string {
			if v := f(o.(*gamev1.PlayerSession)); v != "" {
				return []string{v}
			}
			return nil
		})
	}
	for name, f := range map[string]func(*gamev1.PlayerSession) string{
		IndexPlayerSessionGameSessionName: func(p *gamev1.PlayerSession) string { return p.Spec.GameSessionName },
		IndexPlayerSessionPlayerID:        func(p *gamev1.PlayerSession) string { return p.Spec.PlayerID },
		IndexPlayerSessionID:              func(p *gamev1.PlayerSession) string { return p.Status.PlayerSessionID },
		IndexPlayerSessionGameSessionID:   func(p *gamev1.PlayerSession) string { return p.Status.GameSessionID },
		IndexPlayerSessionStatus: func(p *gamev1.PlayerSession) string {
			if p.Status.Status == "" {
				return StatusPending
			}
			return string(p.Status.Status)
		},
	} {
		if err := ps(name, f); err != nil {
			return err
		}
	}
	if err := indexer.IndexField(ctx, &gamev1.GameSession{}, IndexGameSessionFleetID, func(o client.Object) []string {
		return []string{o.(*gamev1.GameSession).Spec.FleetID}
	}); err != nil {
		return err
	}
	if err := indexer.IndexField(ctx, &gamev1.GameSession{}, IndexGameSessionGameServer, func(o client.Object) []string {
		if name := gameServerOf(o.(*gamev1.GameSession)); name != "" {
			return []string{name}
		}
		return nil
	}); err != nil {
		return err
	}
	return indexer.IndexField(ctx, &gamev1.GameSession{}, IndexGameSessionID, func(o client.Object) []string {
		if id := o.(*gamev1.GameSession).Status.GameSessionID; id != "" {
			return []string{id}
		}
		return nil
	})
}
