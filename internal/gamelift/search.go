package gamelift

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/internal/search"
)

// --- SearchGameSessions ---

type searchGameSessionsInput struct {
	FleetId          string `json:"FleetId"`
	AliasId          string `json:"AliasId"`
	Location         string `json:"Location"`
	FilterExpression string `json:"FilterExpression"`
	SortExpression   string `json:"SortExpression"`
	Limit            *int32 `json:"Limit"`
	NextToken        string `json:"NextToken"`
}

type searchGameSessionsOutput struct {
	GameSessions []GameSession `json:"GameSessions"`
	NextToken    string        `json:"NextToken,omitempty"`
}

// MaxSearchResults is the most game sessions SearchGameSessions returns at once, whatever the Limit.
const MaxSearchResults = 20

var locationPattern = regexp.MustCompile(`^[A-Za-z0-9\-]+`)

// searchGameSessions answers from the search index (internal/search): the ACTIVE game sessions of the
// fleet that the filter matches, in the sort's order (by creation time without one), a page of at most
// MaxSearchResults, with a NextToken that carries where the page ended. Location is checked and otherwise
// ignored: a fleet has one location here.
func (s *Server) searchGameSessions(_ context.Context, namespace string, in *searchGameSessionsInput) (any, *Error) {
	switch {
	case in.AliasId != "" && in.FleetId != "":
		return nil, invalid("Each request must reference either a fleet ID or alias ID, but not both")
	case in.AliasId != "":
		return nil, invalid("AliasId is not supported by this endpoint: use FleetId")
	case in.FleetId == "":
		return nil, invalid("Each request must reference either a fleet ID or alias ID")
	}
	fleet, aerr := fleetID(in.FleetId)
	if aerr != nil {
		return nil, aerr
	}
	if in.Location != "" {
		if err := checkLen("location", in.Location, 1, 64); err != nil {
			return nil, err
		}
		if !locationPattern.MatchString(in.Location) {
			return nil, invalid("1 validation error detected: Value at 'location' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[A-Za-z0-9\\-]+")
		}
	}
	q := search.Query{Namespace: namespace, FleetID: fleet, Limit: MaxSearchResults}
	if in.FilterExpression != "" {
		e, err := search.ParseFilter(in.FilterExpression)
		if err != nil {
			return nil, expressionError("FilterExpression", err)
		}
		q.Filter = e
	}
	if in.SortExpression != "" {
		o, err := search.ParseSort(in.SortExpression)
		if err != nil {
			return nil, expressionError("SortExpression", err)
		}
		q.Sort = &o
	}
	limit, aerr := checkLimit(in.Limit)
	if aerr != nil {
		return nil, aerr
	}
	if limit > 0 {
		q.Limit = min(limit, MaxSearchResults)
	}
	scope := searchScope(namespace, fleet, q)
	if in.NextToken != "" {
		v, err := s.Tokens.Verify(scope, in.NextToken)
		var after search.Position
		if err != nil || json.Unmarshal([]byte(v), &after) != nil {
			return nil, invalid("Invalid NextToken")
		}
		q.After = &after
	}
	r := s.Search.Search(q)
	out := searchGameSessionsOutput{GameSessions: make([]GameSession, 0, len(r.GameSessions))}
	for _, gs := range r.GameSessions {
		out.GameSessions = append(out.GameSessions, s.toGameSession(gs))
	}
	if r.Next != nil {
		v, _ := json.Marshal(r.Next)
		out.NextToken = s.Tokens.Sign(scope, string(v))
	}
	return out, nil
}

// searchScope binds a NextToken to its search: the namespace, the fleet, and the expressions as parsed
// (a token is refused with another filter or sort).
func searchScope(namespace, fleet string, q search.Query) string {
	scope := "SearchGameSessions/" + namespace + "/" + fleet + "/"
	if q.Filter != nil {
		scope += q.Filter.String()
	}
	if q.Sort != nil {
		scope += "/" + q.Sort.Operand
		if q.Sort.Descending {
			scope += " DESC"
		}
	}
	return scope
}

// expressionError is the InvalidRequestException of a refused expression: which one, where and why.
func expressionError(field string, err error) *Error {
	var se *search.SyntaxError
	if errors.As(err, &se) {
		return invalid("Invalid %s %s", field, se.Error())
	}
	return invalid("Invalid %s: %v", field, err)
}

// --- DescribeGameSessionDetails ---

type describeGameSessionDetailsOutput struct {
	GameSessionDetails []GameSessionDetail `json:"GameSessionDetails"`
	NextToken          string              `json:"NextToken,omitempty"`
}

// GameSessionDetail is a game session with its protection policy.
type GameSessionDetail struct {
	GameSession      GameSession `json:"GameSession"`
	ProtectionPolicy string      `json:"ProtectionPolicy"`
}

// describeGameSessionDetails is DescribeGameSessions (the same selection, status filter and paging) with
// each game session's protection policy: FullProtection for an ACTIVE game session on an Agones GameServer
// (Agones never scales down an Allocated GameServer), NoProtection otherwise (nothing here scales a fleet
// down; nothing protects a game server's pod from deletion either).
func (s *Server) describeGameSessionDetails(ctx context.Context, namespace string, in *describeGameSessionsInput) (any, *Error) {
	page, aerr := s.describeGameSessionPage(ctx, namespace, in)
	if aerr != nil {
		return nil, aerr
	}
	out := describeGameSessionDetailsOutput{GameSessionDetails: make([]GameSessionDetail, 0, len(page.sessions)), NextToken: page.next}
	for _, gs := range page.sessions {
		policy := "NoProtection"
		if gs.Status.Status == gamev1.GameSessionActive && gs.Status.Agones != nil && gs.Status.Agones.GameServerName != "" {
			policy = "FullProtection"
		}
		out.GameSessionDetails = append(out.GameSessionDetails, GameSessionDetail{GameSession: s.toGameSession(gs), ProtectionPolicy: policy})
	}
	return out, nil
}
