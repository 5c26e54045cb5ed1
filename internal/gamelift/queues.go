package gamelift

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/internal/index"
	"github.com/playersessions/operator/internal/indexes"
)

// Queues and placements: GameSessionQueue and GameSessionPlacement objects in the caller's namespace. The
// placement controller (controllers/placement_controller.go) runs placements; these actions create, read,
// change and stop them.

var (
	queueNamePattern      = regexp.MustCompile(`^[a-zA-Z0-9-]+$`)
	queueNameOrArnPattern = regexp.MustCompile(`^(?:[a-zA-Z0-9-]+|arn:.*:gamesessionqueue/[a-zA-Z0-9-]+)$`)
	snsPattern            = regexp.MustCompile(`^[a-zA-Z0-9:_-]*(\.fifo)?$`)
	priorityTypes         = []string{"LATENCY", "COST", "DESTINATION", "LOCATION"}
)

// objectName is the name of an object the endpoint makes for a GameLift id (queue name, placement id):
// readable (prefix and the id, lowercased) and unique (a hash of the id: ids that differ in case differ).
func objectName(prefix, id string) string {
	sum := sha256.Sum256([]byte(id))
	return prefix + strings.ToLower(id) + "-" + hex.EncodeToString(sum[:4])
}

// GameSessionQueue is GameLift's shape of a queue.
type GameSessionQueue struct {
	Name                  string                        `json:"Name,omitempty"`
	GameSessionQueueArn   string                        `json:"GameSessionQueueArn,omitempty"`
	TimeoutInSeconds      *int32                        `json:"TimeoutInSeconds,omitempty"`
	PlayerLatencyPolicies []PlayerLatencyPolicy         `json:"PlayerLatencyPolicies,omitempty"`
	Destinations          []GameSessionQueueDestination `json:"Destinations,omitempty"`
	FilterConfiguration   *FilterConfiguration          `json:"FilterConfiguration,omitempty"`
	PriorityConfiguration *PriorityConfiguration        `json:"PriorityConfiguration,omitempty"`
	CustomEventData       string                        `json:"CustomEventData,omitempty"`
	NotificationTarget    string                        `json:"NotificationTarget,omitempty"`
}

// PlayerLatencyPolicy, GameSessionQueueDestination, FilterConfiguration and PriorityConfiguration are
// GameLift's shapes of a queue's parts.
type (
	PlayerLatencyPolicy struct {
		MaximumIndividualPlayerLatencyMilliseconds *int32 `json:"MaximumIndividualPlayerLatencyMilliseconds,omitempty"`
		PolicyDurationSeconds                      *int32 `json:"PolicyDurationSeconds,omitempty"`
	}
	GameSessionQueueDestination struct {
		DestinationArn string `json:"DestinationArn"`
	}
	FilterConfiguration struct {
		AllowedLocations []string `json:"AllowedLocations,omitempty"`
	}
	PriorityConfiguration struct {
		PriorityOrder []string `json:"PriorityOrder,omitempty"`
		LocationOrder []string `json:"LocationOrder,omitempty"`
	}
)

type queueInput struct {
	Name                  string                        `json:"Name"`
	TimeoutInSeconds      *int32                        `json:"TimeoutInSeconds"`
	PlayerLatencyPolicies []PlayerLatencyPolicy         `json:"PlayerLatencyPolicies"`
	Destinations          []GameSessionQueueDestination `json:"Destinations"`
	FilterConfiguration   *FilterConfiguration          `json:"FilterConfiguration"`
	PriorityConfiguration *PriorityConfiguration        `json:"PriorityConfiguration"`
	CustomEventData       *string                       `json:"CustomEventData"`
	NotificationTarget    *string                       `json:"NotificationTarget"`
	Tags                  []map[string]string           `json:"Tags"`
}

type queueOutput struct {
	GameSessionQueue GameSessionQueue `json:"GameSessionQueue"`
}

func (s *Server) toQueue(q *gamev1.GameSessionQueue) GameSessionQueue {
	out := GameSessionQueue{Name: q.Spec.Name, GameSessionQueueArn: s.ARNs.QueueArn(q.Spec.Name), TimeoutInSeconds: q.Spec.TimeoutInSeconds,
		CustomEventData: q.Spec.CustomEventData, NotificationTarget: q.Spec.NotificationTarget}
	if out.TimeoutInSeconds == nil {
		v := int32(gamev1.DefaultQueueTimeoutSeconds)
		out.TimeoutInSeconds = &v
	}
	for _, d := range q.Spec.Destinations {
		out.Destinations = append(out.Destinations, GameSessionQueueDestination{DestinationArn: d.DestinationArn})
	}
	for _, p := range q.Spec.PlayerLatencyPolicies {
		out.PlayerLatencyPolicies = append(out.PlayerLatencyPolicies, PlayerLatencyPolicy{&p.MaximumIndividualPlayerLatencyMilliseconds, &p.PolicyDurationSeconds})
	}
	if f := q.Spec.FilterConfiguration; f != nil {
		out.FilterConfiguration = &FilterConfiguration{AllowedLocations: f.AllowedLocations}
	}
	if p := q.Spec.PriorityConfiguration; p != nil {
		out.PriorityConfiguration = &PriorityConfiguration{PriorityOrder: p.PriorityOrder, LocationOrder: p.LocationOrder}
	}
	return out
}

// applyQueue checks a Create/UpdateGameSessionQueue request's fields and writes those it has into spec.
func applyQueue(in *queueInput, spec *gamev1.GameSessionQueueSpec) *Error {
	if in.TimeoutInSeconds != nil {
		if *in.TimeoutInSeconds < 0 {
			return invalid("1 validation error detected: Value at 'timeoutInSeconds' failed to satisfy constraint: Member must have value greater than or equal to 0")
		}
		spec.TimeoutInSeconds = in.TimeoutInSeconds
	}
	if in.Destinations != nil {
		if len(in.Destinations) > 100 {
			return invalid("A queue has at most 100 destinations")
		}
		spec.Destinations = nil
		for i, d := range in.Destinations {
			field := fmt.Sprintf("destinations.%d.member.destinationArn", i+1)
			if err := checkLen(field, d.DestinationArn, 1, 512); err != nil {
				return err
			}
			if !arnStringPattern.MatchString(d.DestinationArn) {
				return invalid("1 validation error detected: Value at '%s' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9:/-]+", field)
			}
			if strings.Contains(d.DestinationArn, ":alias/") || strings.HasPrefix(d.DestinationArn, "alias-") {
				return invalid("Destination %s is an alias: aliases are not supported by this endpoint, name the fleet", d.DestinationArn)
			}
			if _, aerr := fleetID(d.DestinationArn); aerr != nil {
				return invalid("Destination %s is not a fleet id or fleet ARN", d.DestinationArn)
			}
			spec.Destinations = append(spec.Destinations, gamev1.QueueDestination{DestinationArn: d.DestinationArn})
		}
	}
	if in.PlayerLatencyPolicies != nil {
		if len(in.PlayerLatencyPolicies) > 16 {
			return invalid("A queue has at most 16 player latency policies")
		}
		spec.PlayerLatencyPolicies = nil
		for _, p := range in.PlayerLatencyPolicies {
			var v gamev1.PlayerLatencyPolicy
			if p.MaximumIndividualPlayerLatencyMilliseconds != nil {
				v.MaximumIndividualPlayerLatencyMilliseconds = *p.MaximumIndividualPlayerLatencyMilliseconds
			}
			if p.PolicyDurationSeconds != nil {
				v.PolicyDurationSeconds = *p.PolicyDurationSeconds
			}
			if v.MaximumIndividualPlayerLatencyMilliseconds < 0 || v.PolicyDurationSeconds < 0 {
				return invalid("Player latency policy values must be greater than or equal to 0")
			}
			spec.PlayerLatencyPolicies = append(spec.PlayerLatencyPolicies, v)
		}
	}
	if f := in.FilterConfiguration; f != nil {
		if err := checkLocations("filterConfiguration.allowedLocations", f.AllowedLocations, 100); err != nil {
			return err
		}
		spec.FilterConfiguration = &gamev1.QueueFilterConfiguration{AllowedLocations: f.AllowedLocations}
	}
	if p := in.PriorityConfiguration; p != nil {
		if len(p.PriorityOrder) > 4 {
			return invalid("1 validation error detected: Value at 'priorityConfiguration.priorityOrder' failed to satisfy constraint: Member must have length less than or equal to 4")
		}
		for _, t := range p.PriorityOrder {
			if !slices.Contains(priorityTypes, t) {
				return invalid("Priority type %q is not one of LATENCY, COST, DESTINATION, LOCATION", t)
			}
		}
		if err := checkLocations("priorityConfiguration.locationOrder", p.LocationOrder, 100); err != nil {
			return err
		}
		spec.PriorityConfiguration = &gamev1.QueuePriorityConfiguration{PriorityOrder: p.PriorityOrder, LocationOrder: p.LocationOrder}
	}
	if in.CustomEventData != nil {
		if err := checkLen("customEventData", *in.CustomEventData, 0, 256); err != nil {
			return err
		}
		spec.CustomEventData = *in.CustomEventData
	}
	if in.NotificationTarget != nil {
		if err := checkLen("notificationTarget", *in.NotificationTarget, 0, 300); err != nil {
			return err
		}
		if !snsPattern.MatchString(*in.NotificationTarget) {
			return invalid("1 validation error detected: Value at 'notificationTarget' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9:_-]*(\\.fifo)?")
		}
		spec.NotificationTarget = *in.NotificationTarget
	}
	return nil
}

func checkLocations(field string, locations []string, max int) *Error {
	if len(locations) > max {
		return invalid("1 validation error detected: Value at '%s' failed to satisfy constraint: Member must have length less than or equal to %d", field, max)
	}
	for _, l := range locations {
		if err := checkLen(field+".member", l, 1, 64); err != nil {
			return err
		}
		if !locationPattern.MatchString(l) {
			return invalid("1 validation error detected: Value at '%s.member' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[A-Za-z0-9\\-]+", field)
		}
	}
	return nil
}

// queueByName finds the tenant's queue of a GameLift name or ARN.
func (s *Server) queueByName(ctx context.Context, namespace, nameOrArn string) (*gamev1.GameSessionQueue, *Error) {
	if err := checkLen("name", nameOrArn, 1, 256); err != nil {
		return nil, err
	}
	if !queueNameOrArnPattern.MatchString(nameOrArn) {
		return nil, invalid("1 validation error detected: Value at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9-]+|^arn:.*:gamesessionqueue\\/[a-zA-Z0-9-]+")
	}
	name := nameOrArn[strings.LastIndex(nameOrArn, "/")+1:]
	var list gamev1.GameSessionQueueList
	if err := s.Reader.List(ctx, &list, client.InNamespace(namespace), client.MatchingFields{indexes.QueueName: name}); err != nil {
		return nil, internal(err)
	}
	if len(list.Items) == 0 {
		return nil, errorf(NotFoundException, "Game session queue "+name+" not found")
	}
	return &list.Items[0], nil
}

func (s *Server) createGameSessionQueue(ctx context.Context, namespace string, in *queueInput) (any, *Error) {
	if err := checkLen("name", in.Name, 1, 128); err != nil {
		return nil, err
	}
	if !queueNamePattern.MatchString(in.Name) {
		return nil, invalid("1 validation error detected: Value at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9-]+")
	}
	q := &gamev1.GameSessionQueue{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: objectName("gsq-", in.Name)}, Spec: gamev1.GameSessionQueueSpec{Name: in.Name}}
	if aerr := applyQueue(in, &q.Spec); aerr != nil {
		return nil, aerr
	}
	if _, aerr := s.queueByName(ctx, namespace, in.Name); aerr == nil {
		return nil, invalid("A game session queue named %s already exists", in.Name)
	}
	if err := s.Client.Create(ctx, q); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return nil, invalid("A game session queue named %s already exists", in.Name)
		}
		return nil, kubeError(err, "Game session queue "+in.Name)
	}
	return queueOutput{GameSessionQueue: s.toQueue(q)}, nil
}

func (s *Server) updateGameSessionQueue(ctx context.Context, namespace string, in *queueInput) (any, *Error) {
	q, aerr := s.queueByName(ctx, namespace, in.Name)
	if aerr != nil {
		return nil, aerr
	}
	before := q.DeepCopy()
	if aerr := applyQueue(in, &q.Spec); aerr != nil {
		return nil, aerr
	}
	if err := s.Client.Patch(ctx, q, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		return nil, kubeError(err, "Game session queue "+q.Spec.Name)
	}
	return queueOutput{GameSessionQueue: s.toQueue(q)}, nil
}

func (s *Server) deleteGameSessionQueue(ctx context.Context, namespace string, in *queueInput) (any, *Error) {
	q, aerr := s.queueByName(ctx, namespace, in.Name)
	if aerr != nil {
		return nil, aerr
	}
	if err := s.Client.Delete(ctx, q, client.Preconditions{UID: &q.UID}); err != nil {
		return nil, kubeError(err, "Game session queue "+q.Spec.Name)
	}
	return struct{}{}, nil
}

type describeQueuesInput struct {
	Names     []string `json:"Names"`
	Limit     *int32   `json:"Limit"`
	NextToken string   `json:"NextToken"`
}

type describeQueuesOutput struct {
	GameSessionQueues []GameSessionQueue `json:"GameSessionQueues"`
	NextToken         string             `json:"NextToken,omitempty"`
}

// describeGameSessionQueues answers the named queues (a name not found is NotFoundException), or all the
// tenant's, by name, a page at a time.
func (s *Server) describeGameSessionQueues(ctx context.Context, namespace string, in *describeQueuesInput) (any, *Error) {
	limit, aerr := checkLimit(in.Limit)
	if aerr != nil {
		return nil, aerr
	}
	var queues []*gamev1.GameSessionQueue
	if len(in.Names) > 0 {
		for _, n := range in.Names {
			q, aerr := s.queueByName(ctx, namespace, n)
			if aerr != nil {
				return nil, aerr
			}
			queues = append(queues, q)
		}
	} else {
		var list gamev1.GameSessionQueueList
		if err := s.Reader.List(ctx, &list, client.InNamespace(namespace)); err != nil {
			return nil, internal(err)
		}
		for i := range list.Items {
			queues = append(queues, &list.Items[i])
		}
	}
	slices.SortFunc(queues, func(a, b *gamev1.GameSessionQueue) int { return strings.Compare(a.Spec.Name, b.Spec.Name) })
	scope := "DescribeGameSessionQueues/" + namespace + "/" + strings.Join(in.Names, ",")
	start := 0
	if in.NextToken != "" {
		v, err := s.Tokens.Verify(scope, in.NextToken)
		if err != nil {
			return nil, invalid("Invalid NextToken")
		}
		start, _ = slices.BinarySearchFunc(queues, v, func(q *gamev1.GameSessionQueue, after string) int {
			return strings.Compare(q.Spec.Name, after+"\x00")
		})
	}
	size := int(index.PageSize(int64(limit)))
	out := describeQueuesOutput{GameSessionQueues: []GameSessionQueue{}}
	for i, q := range queues[start:] {
		if i == size {
			out.NextToken = s.Tokens.Sign(scope, queues[start+i-1].Spec.Name)
			break
		}
		out.GameSessionQueues = append(out.GameSessionQueues, s.toQueue(q))
	}
	return out, nil
}

// --- placements ---

// GameSessionPlacement is GameLift's shape of a placement.
type GameSessionPlacement struct {
	PlacementId                   string                         `json:"PlacementId,omitempty"`
	GameSessionQueueName          string                         `json:"GameSessionQueueName,omitempty"`
	Status                        string                         `json:"Status,omitempty"`
	GameProperties                []GameProperty                 `json:"GameProperties,omitempty"`
	MaximumPlayerSessionCount     *int32                         `json:"MaximumPlayerSessionCount,omitempty"`
	GameSessionName               string                         `json:"GameSessionName,omitempty"`
	GameSessionId                 string                         `json:"GameSessionId,omitempty"`
	GameSessionArn                string                         `json:"GameSessionArn,omitempty"`
	GameSessionRegion             string                         `json:"GameSessionRegion,omitempty"`
	PlayerLatencies               []PlayerLatency                `json:"PlayerLatencies,omitempty"`
	StartTime                     *Timestamp                     `json:"StartTime,omitempty"`
	EndTime                       *Timestamp                     `json:"EndTime,omitempty"`
	IpAddress                     string                         `json:"IpAddress,omitempty"`
	DnsName                       string                         `json:"DnsName,omitempty"`
	Port                          int32                          `json:"Port,omitempty"`
	PlacedPlayerSessions          []PlacedPlayerSession          `json:"PlacedPlayerSessions,omitempty"`
	GameSessionData               string                         `json:"GameSessionData,omitempty"`
	PriorityConfigurationOverride *PriorityConfigurationOverride `json:"PriorityConfigurationOverride,omitempty"`
}

// PlayerLatency, PlacedPlayerSession, DesiredPlayerSession and PriorityConfigurationOverride are GameLift's
// shapes of a placement's parts.
type (
	PlayerLatency struct {
		PlayerId              string   `json:"PlayerId,omitempty"`
		RegionIdentifier      string   `json:"RegionIdentifier,omitempty"`
		LatencyInMilliseconds *float32 `json:"LatencyInMilliseconds,omitempty"`
	}
	PlacedPlayerSession struct {
		PlayerId        string `json:"PlayerId"`
		PlayerSessionId string `json:"PlayerSessionId"`
	}
	DesiredPlayerSession struct {
		PlayerId   string `json:"PlayerId"`
		PlayerData string `json:"PlayerData,omitempty"`
	}
	PriorityConfigurationOverride struct {
		PlacementFallbackStrategy string   `json:"PlacementFallbackStrategy,omitempty"`
		LocationOrder             []string `json:"LocationOrder,omitempty"`
	}
)

var placementIDPattern = regexp.MustCompile(`^[a-zA-Z0-9-]+$`)

func (s *Server) toPlacement(p *gamev1.GameSessionPlacement) GameSessionPlacement {
	max := p.Spec.MaximumPlayerSessionCount
	out := GameSessionPlacement{PlacementId: p.Spec.PlacementID, GameSessionQueueName: p.Spec.GameSessionQueueName, Status: string(p.Status.Status),
		MaximumPlayerSessionCount: &max, GameSessionName: p.Spec.GameSessionName, GameSessionData: p.Spec.GameSessionData,
		IpAddress: p.Status.IPAddress, DnsName: p.Status.DNSName, Port: p.Status.Port}
	if out.Status == "" {
		out.Status = string(gamev1.PlacementPending)
	}
	if p.Status.GameSessionID != "" {
		out.GameSessionId, out.GameSessionArn, out.GameSessionRegion = p.Status.GameSessionID, p.Status.GameSessionID, s.ARNs.Region
	}
	start := p.CreationTimestamp.Time
	if p.Status.StartTime != nil {
		start = p.Status.StartTime.Time
	}
	out.StartTime = &Timestamp{start}
	if p.Status.EndTime != nil {
		out.EndTime = &Timestamp{p.Status.EndTime.Time}
	}
	for _, gp := range p.Spec.GameProperties {
		out.GameProperties = append(out.GameProperties, GameProperty{Key: gp.Key, Value: gp.Value})
	}
	for _, l := range p.Spec.PlayerLatencies {
		v, _ := strconv.ParseFloat(l.LatencyInMilliseconds, 32)
		f := float32(v)
		out.PlayerLatencies = append(out.PlayerLatencies, PlayerLatency{PlayerId: l.PlayerID, RegionIdentifier: l.RegionIdentifier, LatencyInMilliseconds: &f})
	}
	for _, pp := range p.Status.PlacedPlayerSessions {
		out.PlacedPlayerSessions = append(out.PlacedPlayerSessions, PlacedPlayerSession{PlayerId: pp.PlayerID, PlayerSessionId: pp.PlayerSessionID})
	}
	return out
}

type startPlacementInput struct {
	PlacementId                   string                         `json:"PlacementId"`
	GameSessionQueueName          string                         `json:"GameSessionQueueName"`
	GameProperties                []GameProperty                 `json:"GameProperties"`
	MaximumPlayerSessionCount     *int32                         `json:"MaximumPlayerSessionCount"`
	GameSessionName               string                         `json:"GameSessionName"`
	PlayerLatencies               []PlayerLatency                `json:"PlayerLatencies"`
	DesiredPlayerSessions         []DesiredPlayerSession         `json:"DesiredPlayerSessions"`
	GameSessionData               string                         `json:"GameSessionData"`
	PriorityConfigurationOverride *PriorityConfigurationOverride `json:"PriorityConfigurationOverride"`
}

type placementOutput struct {
	GameSessionPlacement GameSessionPlacement `json:"GameSessionPlacement"`
}

func checkPlacementID(id string) *Error {
	if err := checkLen("placementId", id, 1, 48); err != nil {
		return err
	}
	if !placementIDPattern.MatchString(id) {
		return invalid("1 validation error detected: Value at 'placementId' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9-]+")
	}
	return nil
}

// startGameSessionPlacement creates a PENDING placement in the tenant's namespace; the placement
// controller runs it.
func (s *Server) startGameSessionPlacement(ctx context.Context, namespace string, in *startPlacementInput) (any, *Error) {
	if err := checkPlacementID(in.PlacementId); err != nil {
		return nil, err
	}
	if in.MaximumPlayerSessionCount == nil {
		return nil, invalid("1 validation error detected: Value null at 'maximumPlayerSessionCount' failed to satisfy constraint: Member must not be null")
	}
	if n := *in.MaximumPlayerSessionCount; n < 0 || n > 200 {
		return nil, invalid("MaximumPlayerSessionCount must be between 0 and 200")
	}
	if err := checkProperties(in.GameProperties); err != nil {
		return nil, err
	}
	if in.GameSessionName != "" {
		if err := checkLen("gameSessionName", in.GameSessionName, 1, 1024); err != nil {
			return nil, err
		}
	}
	if in.GameSessionData != "" {
		if err := checkLen("gameSessionData", in.GameSessionData, 1, 262144); err != nil {
			return nil, err
		}
	}
	if len(in.PlayerLatencies) > 0 && in.PriorityConfigurationOverride != nil {
		return nil, invalid("PriorityConfigurationOverride cannot be used with PlayerLatencies")
	}
	if o := in.PriorityConfigurationOverride; o != nil {
		if o.PlacementFallbackStrategy != "" && o.PlacementFallbackStrategy != "DEFAULT_AFTER_SINGLE_PASS" && o.PlacementFallbackStrategy != "NONE" {
			return nil, invalid("PlacementFallbackStrategy must be DEFAULT_AFTER_SINGLE_PASS or NONE")
		}
		if n := len(o.LocationOrder); n < 1 || n > 10 {
			return nil, invalid("1 validation error detected: Value at 'priorityConfigurationOverride.locationOrder' failed to satisfy constraint: Member must have length between 1 and 10")
		}
		if err := checkLocations("priorityConfigurationOverride.locationOrder", o.LocationOrder, 10); err != nil {
			return nil, err
		}
	}
	if len(in.PlayerLatencies) > 100 {
		return nil, invalid("A placement takes at most 100 player latencies")
	}
	if len(in.DesiredPlayerSessions) > 25 {
		return nil, invalid("1 validation error detected: Value at 'desiredPlayerSessions' failed to satisfy constraint: Member must have length less than or equal to 25")
	}
	if len(in.DesiredPlayerSessions) > int(*in.MaximumPlayerSessionCount) {
		return nil, invalid("%d desired player sessions do not fit a game session of %d", len(in.DesiredPlayerSessions), *in.MaximumPlayerSessionCount)
	}
	q, aerr := s.queueByName(ctx, namespace, in.GameSessionQueueName)
	if aerr != nil {
		return nil, aerr
	}
	p := &gamev1.GameSessionPlacement{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: objectName("gsp-", in.PlacementId)},
		Spec: gamev1.GameSessionPlacementSpec{PlacementID: in.PlacementId, GameSessionQueueName: q.Spec.Name, MaximumPlayerSessionCount: *in.MaximumPlayerSessionCount,
			GameProperties: toProperties(in.GameProperties), GameSessionName: in.GameSessionName, GameSessionData: in.GameSessionData}}
	for i, l := range in.PlayerLatencies {
		if err := checkLen(fmt.Sprintf("playerLatencies.%d.member.playerId", i+1), l.PlayerId, 1, 1024); err != nil {
			return nil, err
		}
		if err := checkLen(fmt.Sprintf("playerLatencies.%d.member.regionIdentifier", i+1), l.RegionIdentifier, 1, 1024); err != nil {
			return nil, err
		}
		v := ""
		if l.LatencyInMilliseconds != nil {
			v = strconv.FormatFloat(float64(*l.LatencyInMilliseconds), 'g', -1, 32)
		}
		p.Spec.PlayerLatencies = append(p.Spec.PlayerLatencies, gamev1.PlayerLatency{PlayerID: l.PlayerId, RegionIdentifier: l.RegionIdentifier, LatencyInMilliseconds: v})
	}
	seen := map[string]bool{}
	for i, d := range in.DesiredPlayerSessions {
		if err := checkLen(fmt.Sprintf("desiredPlayerSessions.%d.member.playerId", i+1), d.PlayerId, 1, 1024); err != nil {
			return nil, err
		}
		if d.PlayerData != "" {
			if err := checkLen(fmt.Sprintf("desiredPlayerSessions.%d.member.playerData", i+1), d.PlayerData, 1, 2048); err != nil {
				return nil, err
			}
		}
		if seen[d.PlayerId] {
			return nil, invalid("Player %s is desired twice", d.PlayerId)
		}
		seen[d.PlayerId] = true
		p.Spec.DesiredPlayerSessions = append(p.Spec.DesiredPlayerSessions, gamev1.DesiredPlayerSession{PlayerID: d.PlayerId, PlayerData: d.PlayerData})
	}
	if _, aerr := s.placementByID(ctx, namespace, in.PlacementId); aerr == nil {
		return nil, invalid("A game session placement with id %s already exists", in.PlacementId)
	}
	if err := s.Client.Create(ctx, p); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return nil, invalid("A game session placement with id %s already exists", in.PlacementId)
		}
		return nil, kubeError(err, "Game session placement "+in.PlacementId)
	}
	return placementOutput{GameSessionPlacement: s.toPlacement(p)}, nil
}

type placementIDInput struct {
	PlacementId string `json:"PlacementId"`
}

// placementByID finds the tenant's placement of a GameLift id (the cache's, copied).
func (s *Server) placementByID(ctx context.Context, namespace, id string) (*gamev1.GameSessionPlacement, *Error) {
	if err := checkPlacementID(id); err != nil {
		return nil, err
	}
	var list gamev1.GameSessionPlacementList
	if err := s.Reader.List(ctx, &list, client.InNamespace(namespace), client.MatchingFields{indexes.PlacementID: id}); err != nil {
		return nil, internal(err)
	}
	if len(list.Items) == 0 {
		return nil, errorf(NotFoundException, "Game session placement "+id+" not found")
	}
	return &list.Items[0], nil
}

func (s *Server) describeGameSessionPlacement(ctx context.Context, namespace string, in *placementIDInput) (any, *Error) {
	p, aerr := s.placementByID(ctx, namespace, in.PlacementId)
	if aerr != nil {
		return nil, aerr
	}
	return placementOutput{GameSessionPlacement: s.toPlacement(p)}, nil
}

// stopGameSessionPlacement stops a PENDING placement (spec.stopped) and answers it once the placement
// controller has ended it: CANCELLED, or what it ended as first (a placement no longer PENDING cannot be
// stopped: InvalidRequestException).
func (s *Server) stopGameSessionPlacement(ctx context.Context, namespace string, in *placementIDInput) (any, *Error) {
	p, aerr := s.placementByID(ctx, namespace, in.PlacementId)
	if aerr != nil {
		return nil, aerr
	}
	if p.Status.Status != "" && p.Status.Status != gamev1.PlacementPending {
		return nil, invalid("Game session placement %s is %s: only a PENDING placement can be stopped", in.PlacementId, p.Status.Status)
	}
	before := p.DeepCopy()
	p.Spec.Stopped = true
	if err := s.Client.Patch(ctx, p, client.MergeFrom(before)); err != nil {
		return nil, kubeError(err, "Game session placement "+in.PlacementId)
	}
	waitCtx, cancel, timeout := s.decisionContext(ctx)
	defer cancel()
	if err := await(waitCtx, s.PlacementChanges, func() (bool, error) {
		err := s.Reader.Get(waitCtx, client.ObjectKeyFromObject(p), p)
		return err == nil && p.Status.Status != "" && p.Status.Status != gamev1.PlacementPending, client.IgnoreNotFound(err)
	}); err != nil {
		return nil, internal(fmt.Errorf("game session placement %s was not stopped within %s", in.PlacementId, timeout))
	}
	if p.Status.Status != gamev1.PlacementCancelled {
		return nil, invalid("Game session placement %s is %s: only a PENDING placement can be stopped", in.PlacementId, p.Status.Status)
	}
	return placementOutput{GameSessionPlacement: s.toPlacement(p)}, nil
}
