package gamelift

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/internal/admission"
	"github.com/playersessions/operator/internal/index"
	"github.com/playersessions/operator/internal/indexes"
	"github.com/playersessions/operator/internal/transitions"
)

// operation serves one GameLift action: it decodes the request body (in the client's protocol) and answers.
type operation struct {
	serve func(s *Server, ctx context.Context, who caller, decode func(any) *Error) (any, *Error)
	// changes: the action changes state, so its signature is served once (replays).
	changes bool
}

// op is the operation of a handler that takes its decoded input In and acts in the caller's namespace.
func op[In any](changes bool, handle func(s *Server, ctx context.Context, namespace string, in *In) (any, *Error)) operation {
	return opAs(changes, func(s *Server, ctx context.Context, who caller, in *In) (any, *Error) {
		return handle(s, ctx, who.namespace, in)
	})
}

// opAs is the operation of a handler that also needs who calls (the game-server actions claim with it).
func opAs[In any](changes bool, handle func(s *Server, ctx context.Context, who caller, in *In) (any, *Error)) operation {
	return operation{changes: changes, serve: func(s *Server, ctx context.Context, who caller, decode func(any) *Error) (any, *Error) {
		var in In
		if err := decode(&in); err != nil {
			return nil, err
		}
		return handle(s, ctx, who, &in)
	}}
}

const (
	reads   = false
	changes = true
)

// operations is the endpoint's action table, by GameLift action name.
var operations = map[string]operation{
	"DescribePlayerSessions":       op(reads, (*Server).describePlayerSessions),
	"CreatePlayerSession":          opAs(changes, (*Server).createPlayerSession),
	"CreatePlayerSessions":         opAs(changes, (*Server).createPlayerSessions),
	"AcceptPlayerSession":          opAs(changes, (*Server).acceptPlayerSession),
	"RemovePlayerSession":          opAs(changes, (*Server).removePlayerSession),
	"CreateGameSession":            opAs(changes, (*Server).createGameSession),
	"DescribeGameSessions":         op(reads, (*Server).describeGameSessions),
	"DescribeGameSessionDetails":   op(reads, (*Server).describeGameSessionDetails),
	"SearchGameSessions":           op(reads, (*Server).searchGameSessions),
	"CreateGameSessionQueue":       op(changes, (*Server).createGameSessionQueue),
	"DescribeGameSessionQueues":    op(reads, (*Server).describeGameSessionQueues),
	"UpdateGameSessionQueue":       op(changes, (*Server).updateGameSessionQueue),
	"DeleteGameSessionQueue":       op(changes, (*Server).deleteGameSessionQueue),
	"StartGameSessionPlacement":    op(changes, (*Server).startGameSessionPlacement),
	"DescribeGameSessionPlacement": op(reads, (*Server).describeGameSessionPlacement),
	"StopGameSessionPlacement":     op(changes, (*Server).stopGameSessionPlacement),
	"UpdateGameSession":            opAs(changes, (*Server).updateGameSession),
	"TerminateGameSession":         opAs(changes, (*Server).terminateGameSession),
	"RegisterCompute":              op(changes, (*Server).registerCompute),
	"DescribeCompute":              op(reads, (*Server).describeCompute),
	"ListCompute":                  op(reads, (*Server).listCompute),
	"DeregisterCompute":            op(changes, (*Server).deregisterCompute),
	"GetComputeAuthToken":          opAs(changes, (*Server).getComputeAuthToken),
}

// Bounds and patterns of GameLift's model (botocore gamelift/2015-10-01).
var (
	arnStringPattern     = regexp.MustCompile(`^[a-zA-Z0-9:/-]+$`)
	playerSessionPattern = regexp.MustCompile(`^psess-\S+$`)
)

func checkLen(field, v string, min, max int) *Error {
	if n := len(v); n < min || n > max {
		return invalid("1 validation error detected: Value at '%s' failed to satisfy constraint: Member must have length between %d and %d", field, min, max)
	}
	return nil
}

// checkPattern validates a string of 1 to max bytes that matches re (shown as pattern, GameLift's text).
func checkPattern(field, v string, max int, re *regexp.Regexp, pattern string) *Error {
	if err := checkLen(field, v, 1, max); err != nil {
		return err
	}
	if !re.MatchString(v) {
		return invalid("1 validation error detected: Value at '%s' failed to satisfy constraint: Member must satisfy regular expression pattern: %s", field, pattern)
	}
	return nil
}

func checkGameSessionID(field, v string) *Error {
	return checkPattern(field, v, 512, arnStringPattern, "[a-zA-Z0-9:/-]+")
}

func checkPlayerSessionID(field, v string) *Error {
	return checkPattern(field, v, 1024, playerSessionPattern, `^psess-\S+`)
}

// checkLimit validates an optional Limit (at least 1); 0 means none was given.
func checkLimit(limit *int32) (int, *Error) {
	if limit == nil {
		return 0, nil
	}
	if *limit < 1 {
		return 0, invalid("1 validation error detected: Value at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1")
	}
	return int(*limit), nil
}

// --- DescribePlayerSessions ---

type describePlayerSessionsInput struct {
	GameSessionId             string `json:"GameSessionId"`
	PlayerId                  string `json:"PlayerId"`
	PlayerSessionId           string `json:"PlayerSessionId"`
	PlayerSessionStatusFilter string `json:"PlayerSessionStatusFilter"`
	Limit                     *int32 `json:"Limit"`
	NextToken                 string `json:"NextToken"`
}

type describePlayerSessionsOutput struct {
	PlayerSessions []PlayerSession `json:"PlayerSessions"`
	NextToken      string          `json:"NextToken,omitempty"`
}

func (s *Server) describePlayerSessions(ctx context.Context, namespace string, in *describePlayerSessionsInput) (any, *Error) {
	items, next, aerr := s.findPlayerSessions(ctx, namespace, in)
	if aerr != nil {
		return nil, aerr
	}
	out := describePlayerSessionsOutput{PlayerSessions: []PlayerSession{}, NextToken: next}
	for _, ps := range items {
		out.PlayerSessions = append(out.PlayerSessions, toPlayerSession(ps))
	}
	return out, nil
}

// PlayerSessionsOf answers the Server SDK's DescribePlayerSessions (its request has the client API's fields)
// with DescribePlayerSessions' semantics and paging in the tenant's namespace: the player sessions and the
// next page's token. The error is an *Error (Internal tells a server error from a bad request).
func (s *Server) PlayerSessionsOf(ctx context.Context, namespace string, body []byte) ([]*gamev1.PlayerSession, string, error) {
	var in describePlayerSessionsInput
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, "", errorf(SerializationException, "Cannot decode the request: "+err.Error())
	}
	items, next, aerr := s.findPlayerSessions(ctx, namespace, &in)
	if aerr != nil {
		return nil, "", aerr
	}
	return items, next, nil
}

// findPlayerSessions is DescribePlayerSessions' query: the player sessions holding (or having held) a seat.
func (s *Server) findPlayerSessions(ctx context.Context, namespace string, in *describePlayerSessionsInput) ([]*gamev1.PlayerSession, string, *Error) {
	set := 0
	for _, v := range []string{in.GameSessionId, in.PlayerId, in.PlayerSessionId} {
		if v != "" {
			set++
		}
	}
	if set != 1 {
		return nil, "", invalid("Exactly one of PlayerSessionId, GameSessionId or PlayerId must be specified")
	}
	q := index.Query{Namespace: namespace, Fields: map[string]string{}}
	limit := int64(0)
	switch {
	case in.PlayerSessionId != "":
		if err := checkPlayerSessionID("playerSessionId", in.PlayerSessionId); err != nil {
			return nil, "", err
		}
		q.Fields[index.FieldPlayerSessionID] = in.PlayerSessionId
		in.NextToken = "" // Limit and NextToken are ignored with PlayerSessionId.
		in.Limit = nil
	case in.GameSessionId != "":
		if err := checkGameSessionID("gameSessionId", in.GameSessionId); err != nil {
			return nil, "", err
		}
		q.Fields[index.FieldGameSessionID] = in.GameSessionId
		if in.PlayerSessionStatusFilter != "" {
			switch gamev1.PlayerSessionStatusValue(in.PlayerSessionStatusFilter) {
			case gamev1.PlayerSessionReserved, gamev1.PlayerSessionActive, gamev1.PlayerSessionCompleted, gamev1.PlayerSessionTimedOut:
				q.Fields[index.FieldStatus] = in.PlayerSessionStatusFilter
			default:
				return nil, "", invalid("PlayerSessionStatusFilter must be one of RESERVED, ACTIVE, COMPLETED, TIMEDOUT")
			}
		}
	default:
		if err := checkLen("playerId", in.PlayerId, 1, 1024); err != nil {
			return nil, "", err
		}
		q.Fields[index.FieldPlayerID] = in.PlayerId // the status filter applies only with GameSessionId
	}
	if n, err := checkLimit(in.Limit); err != nil {
		return nil, "", err
	} else if n > 0 {
		limit = int64(n)
	}
	if in.NextToken != "" {
		if err := checkLen("nextToken", in.NextToken, 1, 1024); err != nil {
			return nil, "", err
		}
	}
	page, err := s.Index.ListAll(ctx, q, index.ListOptions{Limit: limit, Continue: in.NextToken}, s.Tokens, s.History)
	if err != nil {
		return nil, "", kubeError(err, "Player session list")
	}
	items := make([]*gamev1.PlayerSession, 0, len(page.Items))
	for _, ps := range page.Items {
		if ps.Status.Status != "" { // not a player session in GameLift's sense until it holds a seat
			items = append(items, ps)
		}
	}
	return items, page.Continue, nil
}

func ts(t *metav1.MicroTime) *Timestamp {
	if t == nil {
		return nil
	}
	return &Timestamp{t.Time}
}

func toPlayerSession(ps *gamev1.PlayerSession) PlayerSession {
	return PlayerSession{
		PlayerSessionId: ps.Status.PlayerSessionID, PlayerId: ps.Spec.PlayerID, GameSessionId: ps.Status.GameSessionID,
		FleetId: ps.Status.FleetID, FleetArn: ps.Status.FleetArn, CreationTime: ts(ps.Status.CreationTime),
		TerminationTime: ts(ps.Status.TerminationTime), Status: string(ps.Status.Status), IpAddress: ps.Status.IPAddress,
		DnsName: ps.Status.DNSName, Port: ps.Status.Port, PlayerData: ps.Spec.PlayerData,
	}
}

// --- CreatePlayerSession(s) ---

type createPlayerSessionInput struct {
	GameSessionId string `json:"GameSessionId"`
	PlayerId      string `json:"PlayerId"`
	PlayerData    string `json:"PlayerData"`
}

type createPlayerSessionOutput struct {
	PlayerSession PlayerSession `json:"PlayerSession"`
}

type createPlayerSessionsInput struct {
	GameSessionId string            `json:"GameSessionId"`
	PlayerIds     []string          `json:"PlayerIds"`
	PlayerDataMap map[string]string `json:"PlayerDataMap"`
}

type createPlayerSessionsOutput struct {
	PlayerSessions []PlayerSession `json:"PlayerSessions"`
}

func (s *Server) createPlayerSession(ctx context.Context, who caller, in *createPlayerSessionInput) (any, *Error) {
	if err := checkGameSessionID("gameSessionId", in.GameSessionId); err != nil {
		return nil, err
	}
	if err := checkLen("playerId", in.PlayerId, 1, 1024); err != nil {
		return nil, err
	}
	if in.PlayerData != "" {
		if err := checkLen("playerData", in.PlayerData, 1, 2048); err != nil {
			return nil, err
		}
	}
	gs, aerr := s.acceptingGameSession(ctx, who.namespace, in.GameSessionId, 1)
	if aerr != nil {
		return nil, aerr
	}
	pss, aerr := s.reserve(ctx, who, gs, []seatRequest{{in.PlayerId, in.PlayerData}})
	if aerr != nil {
		return nil, aerr
	}
	return createPlayerSessionOutput{PlayerSession: toPlayerSession(pss[0])}, nil
}

func (s *Server) createPlayerSessions(ctx context.Context, who caller, in *createPlayerSessionsInput) (any, *Error) {
	if err := checkGameSessionID("gameSessionId", in.GameSessionId); err != nil {
		return nil, err
	}
	if n := len(in.PlayerIds); n < 1 || n > 25 {
		return nil, invalid("1 validation error detected: Value at 'playerIds' failed to satisfy constraint: Member must have length between 1 and 25")
	}
	for i, p := range in.PlayerIds {
		if err := checkLen(fmt.Sprintf("playerIds.%d.member", i+1), p, 1, 1024); err != nil {
			return nil, err
		}
	}
	for p, d := range in.PlayerDataMap {
		if err := checkLen("playerDataMap.key", p, 1, 1024); err != nil {
			return nil, err
		}
		if err := checkLen("playerDataMap.value", d, 1, 2048); err != nil {
			return nil, err
		}
	}
	gs, aerr := s.acceptingGameSession(ctx, who.namespace, in.GameSessionId, len(in.PlayerIds))
	if aerr != nil {
		return nil, aerr
	}
	players := make([]seatRequest, len(in.PlayerIds))
	for i, p := range in.PlayerIds {
		players[i] = seatRequest{p, in.PlayerDataMap[p]}
	}
	// All or nothing, as GameLift's: one group, admitted or refused as one.
	pss, aerr := s.reserve(ctx, who, gs, players)
	if aerr != nil {
		return nil, aerr
	}
	out := createPlayerSessionsOutput{PlayerSessions: []PlayerSession{}}
	for _, ps := range pss {
		out.PlayerSessions = append(out.PlayerSessions, toPlayerSession(ps))
	}
	return out, nil
}

// gameSessionByID finds a game session of the tenant by its GameSessionId.
func (s *Server) gameSessionByID(ctx context.Context, namespace, id string) (*gamev1.GameSession, *Error) {
	return s.gameSessionWithin(ctx, namespace, id, 0, nil)
}

// gameSessionWithin is gameSessionByID, waiting up to wait for this replica's cache to hold the game
// session, and to show it done (when done is not nil).
func (s *Server) gameSessionWithin(ctx context.Context, namespace, id string, wait time.Duration, done func(*gamev1.GameSession) bool) (*gamev1.GameSession, *Error) {
	var found *gamev1.GameSession
	lookup := func() (bool, error) {
		var list gamev1.GameSessionList
		if err := s.Reader.List(ctx, &list, client.InNamespace(namespace), client.MatchingFields{indexes.GameSessionID: id}); err != nil {
			return false, err
		}
		if len(list.Items) > 0 {
			found = &list.Items[0]
		}
		return found != nil && (done == nil || done(found)), nil
	}
	ok, err := lookup()
	if !ok && err == nil && wait > 0 && s.GameSessionChanges != nil {
		waitCtx, cancel := context.WithTimeout(ctx, wait)
		err = await(waitCtx, s.GameSessionChanges, lookup)
		cancel()
	}
	if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		err = nil // not there (or not done) in time: as it is
	}
	if err != nil {
		return nil, internal(err)
	}
	if found == nil {
		return nil, errorf(NotFoundException, "Game session "+id+" not found")
	}
	return found, nil
}

// acceptingGameSession checks up front what GameLift refuses synchronously: the operator's admission
// remains the authority (seats are decided under optimistic concurrency there). A game session this
// replica's cache does not hold yet, or holds ACTIVATING, is waited for (transitions.AppearWait at most): a
// backend reserves seats right after another replica created or activated it, and that write reaches this
// replica's cache a moment later.
func (s *Server) acceptingGameSession(ctx context.Context, namespace, id string, players int) (*gamev1.GameSession, *Error) {
	gs, aerr := s.gameSessionWithin(ctx, namespace, id, transitions.AppearWait, func(gs *gamev1.GameSession) bool {
		return gs.Status.Status != "" && gs.Status.Status != gamev1.GameSessionActivating
	})
	if aerr != nil {
		return nil, aerr
	}
	switch {
	case gs.Status.Status != gamev1.GameSessionActive || !gs.DeletionTimestamp.IsZero():
		return nil, errorf(InvalidGameSessionStatusException, fmt.Sprintf("Game session %s is %s", id, gs.Status.Status))
	case gs.Spec.PlayerSessionCreationPolicy == gamev1.PlayerSessionCreationPolicyDenyAll:
		return nil, errorf(GameSessionFullException, "Game session "+id+" is not accepting new player sessions (DENY_ALL)")
	case int(gs.Status.CurrentPlayerSessionCount)+players > int(gs.Spec.MaximumPlayerSessionCount):
		return nil, errorf(GameSessionFullException, "Game session "+id+" is full")
	}
	return gs, nil
}

// seatRequest is one player of a CreatePlayerSession(s) call.
type seatRequest struct{ playerID, playerData string }

// reserve creates the player sessions of one call and waits for the operator's decision on each. Several
// players form a group (spec.group), which the operator admits or refuses as one; a refused call, or one
// whose creates failed, leaves no undecided or refused player session behind. A call that sees no decision
// in time (InternalServiceException: the caller cannot know whether it was applied) leaves its player
// sessions to the operator: this replica's index may be behind a decision already taken, and deleting a
// granted reservation would erase one that other callers saw hold a seat, with its record. Granted, it
// times out as any reservation whose player never connects. Each player session is named after the signed
// request (who.requestName), so the same request served again, by any replica, finds them and is refused
// as a replay.
func (s *Server) reserve(ctx context.Context, who caller, gs *gamev1.GameSession, players []seatRequest) ([]*gamev1.PlayerSession, *Error) {
	var group *gamev1.PlayerSessionGroup
	if len(players) > 1 {
		group = &gamev1.PlayerSessionGroup{Name: "cps-" + strings.ToLower(rand.Text()[:16]), Size: int32(len(players))}
	}
	created := make([]*gamev1.PlayerSession, len(players))
	errs := make([]error, len(players))
	var wg sync.WaitGroup
	for i, p := range players {
		ps := &gamev1.PlayerSession{
			ObjectMeta: metav1.ObjectMeta{Namespace: gs.Namespace, Name: who.objectName(gs.Name, i)},
			Spec:       gamev1.PlayerSessionSpec{GameSessionName: gs.Name, PlayerID: p.playerID, PlayerData: p.playerData, Group: group},
		}
		if group != nil {
			ps.Labels = map[string]string{gamev1.GroupLabel: group.Name}
		}
		wg.Go(func() {
			if errs[i] = s.Client.Create(ctx, ps); errs[i] == nil {
				created[i] = ps
			}
		})
	}
	wg.Wait()
	if aerr := createError(errs); aerr != nil {
		s.withdraw(created)
		return nil, aerr
	}

	waitCtx, cancel, timeout := s.decisionContext(ctx)
	defer cancel()
	decided := make([]*gamev1.PlayerSession, len(created))
	for i, ps := range created {
		// Read from the query index, so that a Describe right after the call reads what it returned.
		var cur *gamev1.PlayerSession
		if err := await(waitCtx, s.Index.Changes(), func() (bool, error) {
			cur = s.Index.Get(ps.Namespace, ps.Name)
			return cur != nil && (cur.Status.Status != "" || admission.IsRefused(cur)), nil
		}); err != nil {
			return nil, internal(fmt.Errorf("no admission decision for player session %s/%s within %s", ps.Namespace, ps.Name, timeout))
		}
		if cond := meta.FindStatusCondition(cur.Status.Conditions, gamev1.AdmittedCondition); cond != nil && cond.Status == metav1.ConditionFalse {
			s.withdraw(created)
			return nil, refusalError(cond.Reason, cond.Message)
		}
		decided[i] = cur
	}
	return decided, nil
}

// createError is the GameLift error of the creates of one call: a refusal the admission webhook answered
// (its reason travels as a StatusCause) wins, then a replay, else the first error.
func createError(errs []error) *Error {
	var first error
	for _, err := range errs {
		if err == nil {
			continue
		}
		if _, _, ok := admission.RefusalOf(err); ok {
			return kubeError(err, "Player session")
		}
		if apierrors.IsAlreadyExists(err) {
			return replayed() // the names are the signed request's: it was served before
		}
		if first == nil {
			first = err
		}
	}
	if first == nil {
		return nil
	}
	return kubeError(first, "Player session")
}

// withdraw deletes the player sessions of a call that failed, each only while it is undecided or refused:
// the delete is conditional on the resourceVersion at which it was known to be so (its create's: the
// operator writes nothing on a waiting player session; or a refusal this replica's index shows), and on a
// conflict it is read again from the API server. A player session the operator has granted a seat
// meanwhile is kept, to time out if nobody accepts it: deleting it would erase a reservation that others
// saw hold a seat, and its record. It runs even when the caller has gone (a fresh context), and a player
// session it cannot delete is refused by the operator anyway: an incomplete group is refused whole once
// its window closes.
func (s *Server) withdraw(created []*gamev1.PlayerSession) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var live client.Reader = s.Client
	if s.APIReader != nil {
		live = s.APIReader
	}
	for _, ps := range created {
		if ps == nil {
			continue
		}
		known := ps
		if cur := s.Index.Get(ps.Namespace, ps.Name); cur != nil && cur.UID == ps.UID && admission.IsRefused(cur) {
			known = cur
		}
		for range 3 {
			err := s.Client.Delete(ctx, ps, client.Preconditions{UID: &ps.UID, ResourceVersion: &known.ResourceVersion})
			if !apierrors.IsConflict(err) {
				break // deleted, gone, or the API server unreachable (then the operator refuses what is incomplete)
			}
			cur := &gamev1.PlayerSession{}
			if err := live.Get(ctx, client.ObjectKeyFromObject(ps), cur); err != nil || cur.UID != ps.UID {
				break
			}
			if !admission.IsRefused(cur) && !admission.IsPending(cur) {
				ctrl.Log.WithName("gamelift").V(1).Info("Player session of a failed call kept: the operator granted it a seat", "playerSession", klog.KObj(ps))
				break
			}
			known = cur
		}
	}
}

// refusalError is GameLift's exception for an admission refusal reason.
func refusalError(reason, message string) *Error {
	switch reason {
	case gamev1.GameSessionFullReason, gamev1.PlayerSessionCreationDeniedReason:
		return errorf(GameSessionFullException, message)
	case gamev1.GameSessionNotFoundReason:
		return errorf(NotFoundException, message)
	default:
		return errorf(InvalidGameSessionStatusException, message)
	}
}

// --- AcceptPlayerSession / RemovePlayerSession (server-side calls) ---

type playerSessionIDInput struct {
	GameSessionId   string `json:"GameSessionId"`
	PlayerSessionId string `json:"PlayerSessionId"`
}

type playerSessionOutput struct {
	PlayerSession PlayerSession `json:"PlayerSession"`
}

func (s *Server) acceptPlayerSession(ctx context.Context, who caller, in *playerSessionIDInput) (any, *Error) {
	return s.transition(ctx, who, in, transitions.Accept)
}

func (s *Server) removePlayerSession(ctx context.Context, who caller, in *playerSessionIDInput) (any, *Error) {
	return s.transition(ctx, who, in, transitions.Remove)
}

// transition makes a game server's move of a player session: the caller must be the game server of the
// player session's game session, which it claims with its first such call.
func (s *Server) transition(ctx context.Context, who caller, in *playerSessionIDInput, move transitions.Move) (any, *Error) {
	if err := checkPlayerSessionID("playerSessionId", in.PlayerSessionId); err != nil {
		return nil, err
	}
	_, _, timeout := s.decisionContext(ctx)
	mover := transitions.Mover{Client: s.Client, Index: s.Index, Tokens: s.Tokens, Wait: timeout}
	ps, refusal, err := mover.Apply(ctx, transitions.Request{Move: move, Namespace: who.namespace, PlayerSessionID: in.PlayerSessionId,
		GameSessionID: in.GameSessionId, Authorize: func(ctx context.Context, ps *gamev1.PlayerSession) (*transitions.Refusal, error) {
			return s.claim(ctx, who, ps)
		}})
	switch {
	case err != nil:
		return nil, kubeError(err, "Player session "+in.PlayerSessionId)
	case refusal != nil && refusal.Reason == transitions.NotFound:
		return nil, errorf(NotFoundException, refusal.Message)
	case refusal != nil:
		return nil, invalid("%s", refusal.Message)
	}
	return playerSessionOutput{PlayerSession: toPlayerSession(ps)}, nil
}

// ClaimPrefix prefixes the access key id in the claim (status.gameServer) of a game session whose game server
// calls the endpoint.
const ClaimPrefix = "gamelift-access-key:"

// claim makes sure the caller is the game server of ps's game session: the identity in its status.gameServer,
// which the first AcceptPlayerSession or RemovePlayerSession of an unclaimed game session sets to the
// caller's access key (as a game server's first status write through kubectl claims it with its user name,
// config/policy/game_server_claim.yaml). The claim is a status patch without a resourceVersion: the CRD's
// rule that status.gameServer is set once makes the API server refuse it if another identity claimed the
// game session since the cache was read, so two concurrent first calls cannot both claim.
func (s *Server) claim(ctx context.Context, who caller, ps *gamev1.PlayerSession) (*transitions.Refusal, error) {
	identity := ClaimPrefix + who.keyID
	refused := func(claimer string) *transitions.Refusal {
		return &transitions.Refusal{Reason: transitions.NotYours, Message: fmt.Sprintf("Player session %s is in game session %s, whose game server is %s: only that game server may accept or remove its players",
			ps.Status.PlayerSessionID, ps.Spec.GameSessionName, claimer)}
	}
	gs := &gamev1.GameSession{}
	if err := s.Reader.Get(ctx, client.ObjectKey{Namespace: ps.Namespace, Name: ps.Spec.GameSessionName}, gs); err != nil {
		return nil, err
	}
	switch gs.Status.GameServer {
	case identity:
		return nil, nil
	case "":
	default:
		return refused(gs.Status.GameServer), nil
	}
	body, err := json.Marshal(map[string]any{"status": map[string]any{"gameServer": identity}})
	if err != nil {
		return nil, err
	}
	if err := s.Client.Status().Patch(ctx, gs, client.RawPatch(types.MergePatchType, body)); err != nil {
		if apierrors.IsInvalid(err) {
			return refused("another game server (it claimed the game session just now)"), nil
		}
		return nil, err
	}
	return nil, nil
}
