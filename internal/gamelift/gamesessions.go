package gamelift

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/internal/computes"
	"github.com/playersessions/operator/internal/history"
	"github.com/playersessions/operator/internal/index"
	"github.com/playersessions/operator/internal/indexes"
)

var fleetIDPattern = regexp.MustCompile(`^[a-z]*fleet-[a-zA-Z0-9\-]+$|^arn:.*:[a-z]*fleet\/[a-z]*fleet-[a-zA-Z0-9\-]+$`)

// fleetID accepts a fleet id or fleet ARN and returns the id.
func fleetID(v string) (string, *Error) {
	if err := checkLen("fleetId", v, 1, 512); err != nil {
		return "", err
	}
	if !fleetIDPattern.MatchString(v) {
		return "", invalid("1 validation error detected: Value at 'fleetId' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-z]*fleet-[a-zA-Z0-9\\-]+$|^arn:.*:[a-z]*fleet\\/[a-z]*fleet-[a-zA-Z0-9\\-]+$")
	}
	if i := strings.LastIndex(v, "/"); i >= 0 {
		v = v[i+1:]
	}
	return v, nil
}

func checkProperties(props []GameProperty) *Error {
	if len(props) > 16 {
		return invalid("1 validation error detected: Value at 'gameProperties' failed to satisfy constraint: Member must have length less than or equal to 16")
	}
	for _, p := range props {
		if err := checkLen("gameProperties.member.key", p.Key, 0, 32); err != nil {
			return err
		}
		if err := checkLen("gameProperties.member.value", p.Value, 0, 96); err != nil {
			return err
		}
	}
	return nil
}

func toProperties(props []GameProperty) []gamev1.GameProperty {
	var out []gamev1.GameProperty
	for _, p := range props {
		out = append(out, gamev1.GameProperty{Key: p.Key, Value: p.Value})
	}
	return out
}

func (s *Server) toGameSession(gs *gamev1.GameSession) GameSession {
	cur, max := gs.Status.CurrentPlayerSessionCount, gs.Spec.MaximumPlayerSessionCount
	out := GameSession{
		GameSessionId: gs.Status.GameSessionID, Name: gs.Spec.Name, FleetId: gs.Spec.FleetID, FleetArn: s.ARNs.FleetArn(gs.Spec.FleetID),
		CreationTime: ts(gs.Status.CreationTime), TerminationTime: ts(gs.Status.TerminationTime),
		CurrentPlayerSessionCount: &cur, MaximumPlayerSessionCount: &max,
		Status: string(gs.Status.Status), StatusReason: gs.Status.StatusReason,
		IpAddress: gs.Status.IPAddress, DnsName: gs.Status.DNSName, Port: gs.Status.Port,
		PlayerSessionCreationPolicy: string(gs.Spec.PlayerSessionCreationPolicy), GameSessionData: gs.Spec.GameSessionData,
	}
	for _, p := range gs.Spec.GameProperties {
		out.GameProperties = append(out.GameProperties, GameProperty{Key: p.Key, Value: p.Value})
	}
	return out
}

type gameSessionOutput struct {
	GameSession GameSession `json:"GameSession"`
}

// --- CreateGameSession ---

type createGameSessionInput struct {
	FleetId                   string         `json:"FleetId"`
	AliasId                   string         `json:"AliasId"`
	MaximumPlayerSessionCount *int32         `json:"MaximumPlayerSessionCount"`
	Name                      string         `json:"Name"`
	GameProperties            []GameProperty `json:"GameProperties"`
	GameSessionData           string         `json:"GameSessionData"`
}

// createGameSession creates a GameSession object. It is ACTIVATING until its game server activates it
// (status ACTIVE with an endpoint), as in GameLift: on an Agones Fleet named like the FleetId, the operator
// allocates one; otherwise the game server (or whatever places it) does.
func (s *Server) createGameSession(ctx context.Context, who caller, in *createGameSessionInput) (any, *Error) {
	namespace := who.namespace
	if in.AliasId != "" {
		return nil, invalid("AliasId is not supported by this endpoint: use FleetId")
	}
	fleet, aerr := fleetID(in.FleetId)
	if aerr != nil {
		return nil, aerr
	}
	if in.MaximumPlayerSessionCount == nil {
		return nil, invalid("1 validation error detected: Value null at 'maximumPlayerSessionCount' failed to satisfy constraint: Member must not be null")
	}
	if n := *in.MaximumPlayerSessionCount; n < 0 || n > 200 {
		return nil, invalid("MaximumPlayerSessionCount must be between 0 and 200")
	}
	if in.Name != "" {
		if err := checkLen("name", in.Name, 1, 1024); err != nil {
			return nil, err
		}
	}
	if in.GameSessionData != "" {
		if err := checkLen("gameSessionData", in.GameSessionData, 1, 4096); err != nil {
			return nil, err
		}
	}
	if err := checkProperties(in.GameProperties); err != nil {
		return nil, err
	}
	gs := &gamev1.GameSession{
		// Named after the signed request: served again, by any replica, the create finds it and is a replay.
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: who.objectName("gamesession", 0)},
		Spec: gamev1.GameSessionSpec{FleetID: fleet, MaximumPlayerSessionCount: *in.MaximumPlayerSessionCount, Name: in.Name,
			GameProperties: toProperties(in.GameProperties), GameSessionData: in.GameSessionData,
			PlayerSessionCreationPolicy: gamev1.PlayerSessionCreationPolicyAcceptAll},
	}
	// A FleetId that names an Agones Fleet in the tenant's namespace allocates a GameServer from it.
	agonesFleet, err := s.Agones.FleetExists(ctx, namespace, fleet)
	if err != nil {
		return nil, internal(err)
	}
	if agonesFleet {
		gs.Spec.Agones = &gamev1.AgonesGameServer{FleetName: fleet}
	} else if aerr := s.checkCapacity(ctx, namespace, fleet); aerr != nil {
		return nil, aerr
	}
	if err := s.Client.Create(ctx, gs); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return nil, replayed()
		}
		return nil, kubeError(err, "Game session")
	}
	// The operator mints the GameSessionId on its first reconcile.
	waitCtx, cancel, timeout := s.decisionContext(ctx)
	defer cancel()
	if err := await(waitCtx, s.GameSessionChanges, func() (bool, error) {
		err := s.Reader.Get(waitCtx, client.ObjectKeyFromObject(gs), gs)
		return err == nil && gs.Status.GameSessionID != "", client.IgnoreNotFound(err)
	}); err != nil {
		return nil, internal(fmt.Errorf("game session %s/%s was not initialised within %s", gs.Namespace, gs.Name, timeout))
	}
	return gameSessionOutput{GameSession: s.toGameSession(gs)}, nil
}

// checkCapacity refuses a game session on a fleet of registered computes without an idle healthy process,
// as GameLift does (the operator would place it on none: docs/gamelift-game-servers.md). A fleet without
// computes is not checked: its game sessions wait for their game server (or are Agones').
func (s *Server) checkCapacity(ctx context.Context, namespace, fleet string) *Error {
	registered, idle, err := computes.IdleIn(ctx, s.Reader, namespace, fleet)
	if err != nil {
		return internal(err)
	}
	if registered && !idle {
		return errorf(FleetCapacityExceededException, "Fleet "+fleet+" has no available game server process for a new game session")
	}
	return nil
}

// --- DescribeGameSessions ---

type describeGameSessionsInput struct {
	FleetId       string `json:"FleetId"`
	GameSessionId string `json:"GameSessionId"`
	AliasId       string `json:"AliasId"`
	StatusFilter  string `json:"StatusFilter"`
	Limit         *int32 `json:"Limit"`
	NextToken     string `json:"NextToken"`
}

type describeGameSessionsOutput struct {
	GameSessions []GameSession `json:"GameSessions"`
	NextToken    string        `json:"NextToken,omitempty"`
}

func (s *Server) describeGameSessions(ctx context.Context, namespace string, in *describeGameSessionsInput) (any, *Error) {
	page, aerr := s.describeGameSessionPage(ctx, namespace, in)
	if aerr != nil {
		return nil, aerr
	}
	out := describeGameSessionsOutput{GameSessions: make([]GameSession, 0, len(page.sessions)), NextToken: page.next}
	for _, gs := range page.sessions {
		out.GameSessions = append(out.GameSessions, s.toGameSession(gs))
	}
	return out, nil
}

// gameSessionPage is a page of DescribeGameSessions (and DescribeGameSessionDetails).
type gameSessionPage struct {
	sessions []*gamev1.GameSession
	next     string
}

// describeGameSessionPage selects the game sessions of a DescribeGameSessions request: one by its id, or
// a fleet's (with a status filter), live and from the history store, a page at a time.
func (s *Server) describeGameSessionPage(ctx context.Context, namespace string, in *describeGameSessionsInput) (gameSessionPage, *Error) {
	var out gameSessionPage
	if in.AliasId != "" {
		return out, invalid("AliasId is not supported by this endpoint: use FleetId or GameSessionId")
	}
	if in.GameSessionId != "" {
		if err := checkGameSessionID("gameSessionId", in.GameSessionId); err != nil {
			return out, err
		}
		gs, aerr := s.gameSessionByID(ctx, namespace, in.GameSessionId)
		if aerr != nil && aerr.Type == NotFoundException && s.GameSessionHistory != nil {
			old, err := s.archivedGameSessions(ctx, history.GameSessionQuery{Namespace: namespace, GameSessionID: in.GameSessionId}, history.GameSessionKey{}, 1)
			if err != nil {
				return out, internal(err)
			}
			if len(old) == 1 {
				gs, aerr = old[0], nil
			}
		}
		if aerr != nil {
			return out, aerr
		}
		out.sessions = append(out.sessions, gs)
		return out, nil
	}
	if in.FleetId == "" {
		return out, invalid("One of FleetId or GameSessionId must be specified")
	}
	fleet, aerr := fleetID(in.FleetId)
	if aerr != nil {
		return out, aerr
	}
	if in.StatusFilter != "" && !slices.Contains([]string{"ACTIVE", "ACTIVATING", "TERMINATING", "TERMINATED", "ERROR"}, in.StatusFilter) {
		return out, invalid("StatusFilter must be one of ACTIVE, ACTIVATING, TERMINATING, TERMINATED, ERROR")
	}
	limit, aerr := checkLimit(in.Limit)
	if aerr != nil {
		return out, aerr
	}
	limit = int(index.PageSize(int64(limit))) // at most a page's worth, with a NextToken when there is more
	scope := "DescribeGameSessions/" + namespace + "/" + fleet + "/" + in.StatusFilter
	var after history.GameSessionKey
	if in.NextToken != "" {
		v, err := s.Tokens.Verify(scope, in.NextToken)
		if err != nil {
			return out, invalid("Invalid NextToken")
		}
		after = parseGameSessionKey(v)
	}
	var list gamev1.GameSessionList
	if err := s.Reader.List(ctx, &list, client.InNamespace(namespace), client.MatchingFields{indexes.GameSessionFleetID: fleet}); err != nil {
		return out, internal(err)
	}
	live := make([]*gamev1.GameSession, 0, len(list.Items))
	for i := range list.Items {
		live = append(live, &list.Items[i])
	}
	var archived []*gamev1.GameSession
	if s.GameSessionHistory != nil {
		var err error
		if archived, err = s.archivedGameSessions(ctx, history.GameSessionQuery{Namespace: namespace, FleetID: fleet, Status: in.StatusFilter}, after, limit+1); err != nil {
			return out, internal(err)
		}
	}
	page, last, more := pageGameSessions(live, archived, after, in.StatusFilter, limit)
	out.sessions = page
	if more {
		out.next = s.Tokens.Sign(scope, last.Name+"/"+last.GameSessionID)
	}
	return out, nil
}

// parseGameSessionKey reads a DescribeGameSessions token's key: "name/id" (an object name has no "/").
func parseGameSessionKey(v string) history.GameSessionKey {
	name, id, _ := strings.Cut(v, "/")
	return history.GameSessionKey{Name: name, GameSessionID: id}
}

func keyOf(gs *gamev1.GameSession) history.GameSessionKey {
	return history.GameSessionKey{Name: gs.Name, GameSessionID: gs.Status.GameSessionID}
}

func compareKeys(a, b history.GameSessionKey) int {
	if c := strings.Compare(a.Name, b.Name); c != 0 {
		return c
	}
	return strings.Compare(a.GameSessionID, b.GameSessionID)
}

// pageGameSessions merges the live game sessions of a fleet with those the history store returned (each
// game session once: live wins) in key order (name, then id) and returns the page after the key after: at
// most limit (0: all; the endpoint always passes a page size) with the given status (any when empty), its last key, and whether more follow. A name
// reused by a new game session after the first one ended sorts both by id, so neither is skipped at a page
// boundary.
func pageGameSessions(live, archived []*gamev1.GameSession, after history.GameSessionKey, status string, limit int) ([]*gamev1.GameSession, history.GameSessionKey, bool) {
	all := make([]*gamev1.GameSession, 0, len(live)+len(archived))
	seen := make(map[string]bool, len(live))
	for _, gs := range live {
		all = append(all, gs)
		seen[gs.Status.GameSessionID] = true
	}
	for _, gs := range archived {
		if !seen[gs.Status.GameSessionID] {
			all = append(all, gs)
		}
	}
	slices.SortFunc(all, func(a, b *gamev1.GameSession) int { return compareKeys(keyOf(a), keyOf(b)) })
	var page []*gamev1.GameSession
	var last history.GameSessionKey
	for _, gs := range all {
		if compareKeys(keyOf(gs), after) <= 0 || gs.Status.GameSessionID == "" || (status != "" && string(gs.Status.Status) != status) {
			continue
		}
		if limit > 0 && len(page) == limit {
			return page, last, true
		}
		page = append(page, gs)
		last = keyOf(gs)
	}
	return page, last, false
}

// archivedGameSessions reads game sessions from the history store.
func (s *Server) archivedGameSessions(ctx context.Context, q history.GameSessionQuery, after history.GameSessionKey, limit int) ([]*gamev1.GameSession, error) {
	recs, err := s.GameSessionHistory.ListGameSessions(ctx, q, after, limit)
	if err != nil {
		return nil, err
	}
	out := make([]*gamev1.GameSession, 0, len(recs))
	for _, r := range recs {
		gs := &gamev1.GameSession{}
		if err := json.Unmarshal(r.Object, gs); err != nil {
			return nil, fmt.Errorf("history store: game session %s/%s: %w", r.Namespace, r.Name, err)
		}
		out = append(out, gs)
	}
	return out, nil
}

// --- UpdateGameSession ---

type updateGameSessionInput struct {
	GameSessionId               string         `json:"GameSessionId"`
	MaximumPlayerSessionCount   *int32         `json:"MaximumPlayerSessionCount"`
	Name                        string         `json:"Name"`
	PlayerSessionCreationPolicy string         `json:"PlayerSessionCreationPolicy"`
	ProtectionPolicy            string         `json:"ProtectionPolicy"`
	GameProperties              []GameProperty `json:"GameProperties"`
}

func (s *Server) updateGameSession(ctx context.Context, who caller, in *updateGameSessionInput) (any, *Error) {
	if err := checkGameSessionID("gameSessionId", in.GameSessionId); err != nil {
		return nil, err
	}
	if aerr := checkUpdate(in); aerr != nil {
		return nil, aerr
	}
	var gs *gamev1.GameSession
	aerr := s.writeGameSession(ctx, who.namespace, in.GameSessionId, func(cur *gamev1.GameSession) (func(before *gamev1.GameSession) error, *Error) {
		if cur.Status.Status == gamev1.GameSessionTerminated {
			return nil, errorf(InvalidGameSessionStatusException, "Game session "+in.GameSessionId+" is TERMINATED")
		}
		if aerr := s.recordUpdate(cur, who); aerr != nil {
			return nil, aerr
		}
		applyUpdate(cur, in)
		gs = cur
		return func(before *gamev1.GameSession) error {
			return s.Client.Patch(ctx, cur, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
		}, nil
	})
	if aerr != nil {
		return nil, aerr
	}
	return gameSessionOutput{GameSession: s.toGameSession(gs)}, nil
}

// writeGameSession reads the tenant's game session of id from the cache, lets change decide (an answer, or
// the write to make), and makes the write; the cache may not hold the game session's latest write yet (an
// update right after another, the operator's status writes), so on a conflict it waits until it does and
// decides again, maxWriteAttempts times at most.
func (s *Server) writeGameSession(ctx context.Context, namespace, id string, change func(gs *gamev1.GameSession) (func(before *gamev1.GameSession) error, *Error)) *Error {
	waitCtx, cancel, _ := s.decisionContext(ctx)
	defer cancel()
	for attempt := 1; ; attempt++ {
		gs, aerr := s.gameSessionByID(ctx, namespace, id)
		if aerr != nil {
			return aerr
		}
		before := gs.DeepCopy()
		write, aerr := change(gs)
		if aerr != nil {
			return aerr
		}
		err := write(before)
		if err == nil {
			return nil
		}
		if !apierrors.IsConflict(err) || attempt == maxWriteAttempts || s.GameSessionChanges == nil ||
			await(waitCtx, s.GameSessionChanges, func() (bool, error) {
				cur := &gamev1.GameSession{}
				err := s.Reader.Get(waitCtx, client.ObjectKeyFromObject(before), cur)
				return err != nil || cur.ResourceVersion != before.ResourceVersion, nil
			}) != nil {
			return kubeError(err, "Game session "+id)
		}
	}
}

// maxWriteAttempts bounds how often an update applies its write again after a concurrent write (a
// conflict), each time once the cache has caught up.
const maxWriteAttempts = 5

// checkUpdate validates UpdateGameSession's input as GameLift does.
func checkUpdate(in *updateGameSessionInput) *Error {
	if in.MaximumPlayerSessionCount != nil {
		if n := *in.MaximumPlayerSessionCount; n < 0 || n > 200 {
			return invalid("MaximumPlayerSessionCount must be between 0 and 200")
		}
	}
	if in.Name != "" {
		if err := checkLen("name", in.Name, 1, 1024); err != nil {
			return err
		}
	}
	switch in.PlayerSessionCreationPolicy {
	case "", string(gamev1.PlayerSessionCreationPolicyAcceptAll), string(gamev1.PlayerSessionCreationPolicyDenyAll):
	default:
		return invalid("PlayerSessionCreationPolicy must be ACCEPT_ALL or DENY_ALL")
	}
	if in.ProtectionPolicy != "" && in.ProtectionPolicy != "NoProtection" && in.ProtectionPolicy != "FullProtection" {
		return invalid("ProtectionPolicy must be NoProtection or FullProtection")
	}
	if in.GameProperties != nil {
		return checkProperties(in.GameProperties)
	}
	return nil
}

// applyUpdate sets what a checked UpdateGameSession input changes.
func applyUpdate(gs *gamev1.GameSession, in *updateGameSessionInput) {
	if in.MaximumPlayerSessionCount != nil {
		gs.Spec.MaximumPlayerSessionCount = *in.MaximumPlayerSessionCount
	}
	if in.Name != "" {
		gs.Spec.Name = in.Name
	}
	if in.PlayerSessionCreationPolicy != "" {
		gs.Spec.PlayerSessionCreationPolicy = gamev1.PlayerSessionCreationPolicy(in.PlayerSessionCreationPolicy)
	}
	if in.GameProperties != nil {
		gs.Spec.GameProperties = toProperties(in.GameProperties)
	}
}

type terminateGameSessionInput struct {
	GameSessionId   string `json:"GameSessionId"`
	TerminationMode string `json:"TerminationMode"`
}

// Termination modes and the status reasons they leave (GameLift's).
const (
	triggerOnProcessTerminate = "TRIGGER_ON_PROCESS_TERMINATE"
	forceTerminate            = "FORCE_TERMINATE"
	triggeredReason           = "TRIGGERED_ON_PROCESS_TERMINATE"
	forceTerminatedReason     = "FORCE_TERMINATED"
)

// terminateGameSession ends a game session. FORCE_TERMINATE: TERMINATED at once (reason FORCE_TERMINATED).
// TRIGGER_ON_PROCESS_TERMINATE: TERMINATING (reason TRIGGERED_ON_PROCESS_TERMINATE); the replica holding
// its Server SDK process's connection pushes TerminateProcess, and the game session is TERMINATED when the
// process ends (ProcessEnding). A game session on no SDK process can only be forced.
func (s *Server) terminateGameSession(ctx context.Context, who caller, in *terminateGameSessionInput) (any, *Error) {
	if err := checkGameSessionID("gameSessionId", in.GameSessionId); err != nil {
		return nil, err
	}
	if in.TerminationMode != triggerOnProcessTerminate && in.TerminationMode != forceTerminate {
		return nil, invalid("TerminationMode must be TRIGGER_ON_PROCESS_TERMINATE or FORCE_TERMINATE")
	}
	var gs *gamev1.GameSession
	aerr := s.writeGameSession(ctx, who.namespace, in.GameSessionId, func(cur *gamev1.GameSession) (func(before *gamev1.GameSession) error, *Error) {
		switch {
		case cur.Status.Status == gamev1.GameSessionTerminated || cur.Status.Status == gamev1.GameSessionError:
			return nil, errorf(InvalidGameSessionStatusException, fmt.Sprintf("Game session %s is %s", in.GameSessionId, cur.Status.Status))
		case in.TerminationMode == triggerOnProcessTerminate && cur.Status.Process == nil:
			return nil, errorf(InvalidGameSessionStatusException, "Game session "+in.GameSessionId+" runs on no game server process to terminate: use FORCE_TERMINATE")
		}
		if in.TerminationMode == forceTerminate {
			cur.Status.Status, cur.Status.StatusReason = gamev1.GameSessionTerminated, forceTerminatedReason
		} else {
			cur.Status.Status, cur.Status.StatusReason = gamev1.GameSessionTerminating, triggeredReason
		}
		gs = cur
		return func(before *gamev1.GameSession) error {
			return s.Client.Status().Patch(ctx, cur, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
		}, nil
	})
	if aerr != nil {
		return nil, aerr
	}
	return gameSessionOutput{GameSession: s.toGameSession(gs)}, nil
}

// ServedUpdatesAnnotation lists the signed UpdateGameSession requests a game session took within their
// signatures' validity ("NAME@UNIXSECONDS ..."), so that the same request sent again, to any replica, is
// refused: the patch that applies an update adds its request under the optimistic lock, so two replicas
// serving one request at once cannot both apply it.
const ServedUpdatesAnnotation = "gamelift.playersessions.dev/served-updates"

// maxServedUpdates bounds the annotation: a game session takes at most this many updates within a
// signature's validity (10 minutes around now); more are ThrottlingException.
const maxServedUpdates = 128

// recordUpdate adds who's request to gs's served updates, dropping the ones whose signatures have expired;
// it refuses a request already there.
func (s *Server) recordUpdate(gs *gamev1.GameSession, who caller) *Error {
	served, aerr := s.recordServed(strings.Fields(gs.Annotations[ServedUpdatesAnnotation]), who, maxServedUpdates,
		"Game session "+gs.Status.GameSessionID+" took too many updates within 5 minutes; retry later")
	if aerr != nil {
		return aerr
	}
	if gs.Annotations == nil {
		gs.Annotations = map[string]string{}
	}
	gs.Annotations[ServedUpdatesAnnotation] = strings.Join(served, " ")
	return nil
}

// recordServed is served ("NAME@UNIXSECONDS" entries of signed requests) with who's request added and
// the entries whose signatures have expired dropped; a request already there is a replay, and beyond max
// entries the request is throttled with tooMany.
func (s *Server) recordServed(served []string, who caller, max int, tooMany string) ([]string, *Error) {
	now := s.Clock.Now()
	name := who.objectName("request", 0)
	kept := []string{}
	for _, entry := range served {
		request, at, _ := strings.Cut(entry, "@")
		unix, err := strconv.ParseInt(at, 10, 64)
		if err != nil || now.Sub(time.Unix(unix, 0)) > maxClockSkew {
			continue
		}
		if request == name {
			return nil, replayed()
		}
		kept = append(kept, entry)
	}
	if len(kept) >= max {
		return nil, errorf(ThrottlingException, tooMany)
	}
	return append(kept, name+"@"+strconv.FormatInt(who.signedAt.Unix(), 10)), nil
}
