// Package ids mints the GameLift-style identifiers of the operator's objects: game session ids (ARNs),
// player session ids and fleet ARNs. The controllers mint them once and persist them in status; the
// GameLift endpoint only formats fleet ARNs.
package ids

import (
	"fmt"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
)

// ARNs are the region and account that the minted ARNs carry.
type ARNs struct {
	// Region and AccountID appear in the GameLift-style ARNs the operator mints.
	Region    string
	AccountID string
}

// GameSessionID mints the GameLift-style id of a game session: unique cluster-wide (it embeds the object UID)
// and stable for the object's life.
func (a ARNs) GameSessionID(gs *gamev1.GameSession) string {
	return fmt.Sprintf("arn:aws:gamelift:%s::gamesession/%s/gsess-%s", a.Region, gs.Spec.FleetID, gs.UID)
}

// FleetArn is the ARN of a fleet.
func (a ARNs) FleetArn(fleetID string) string {
	return fmt.Sprintf("arn:aws:gamelift:%s:%s:fleet/%s", a.Region, a.AccountID, fleetID)
}

// PlayerSessionID mints the GameLift-style id of a player session from its UID.
func PlayerSessionID(ps *gamev1.PlayerSession) string {
	return "psess-" + string(ps.UID)
}

// QueueArn is the ARN of a game session queue.
func (a ARNs) QueueArn(name string) string {
	return fmt.Sprintf("arn:aws:gamelift:%s:%s:gamesessionqueue/%s", a.Region, a.AccountID, name)
}

// ComputeArn is the ARN of a compute of a fleet.
func (a ARNs) ComputeArn(fleetID, computeName string) string {
	return fmt.Sprintf("arn:aws:gamelift:%s:%s:compute/%s/%s", a.Region, a.AccountID, fleetID, computeName)
}
