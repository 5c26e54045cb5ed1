package search

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

var sessions = []*Session{
	{ID: "arn:aws:gamelift:local::gamesession/fleet-1/gsess-1", Name: "Matt's Awesome Game 1", MaximumSessions: 10, CreationTimeMillis: 1000,
		PlayerSessionCount: 3, HasAvailablePlayerSessions: true, Properties: map[string]string{"gameMode": "brawl", "difficulty": "novice"}},
	{ID: "gsess-2", Name: "quiet", MaximumSessions: 4, CreationTimeMillis: 2000, PlayerSessionCount: 4,
		Properties: map[string]string{"gameMode": "ranked"}},
	{ID: "gsess-3", Name: "open", MaximumSessions: 20, CreationTimeMillis: 3000, PlayerSessionCount: 0, HasAvailablePlayerSessions: true},
}

// TestParseFilter: the documented examples, every comparator and operand, precedence, quoting and escapes,
// keywords in any case; each expression's matches over three game sessions, and its String parsed again
// matching the same.
func TestParseFilter(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want string // the indexes of the matching sessions
	}{
		{"maximumSessions>=10 AND hasAvailablePlayerSessions=true", "02"},
		{"gameSessionProperties.gameMode = 'brawl' AND playerSessionCount < 4", "0"},
		{`gameSessionProperties.difficulty = "novice"`, "0"},
		{`gameSessionName = 'Matt\'s Awesome Game 1'`, "0"},
		{`gameSessionName <> "quiet"`, "02"},
		{"playerSessionCount = 4", "1"},
		{"playerSessionCount <> 4", "02"},
		{"playerSessionCount > 0", "01"},
		{"playerSessionCount <= 3", "02"},
		{"creationTimeMillis < 2000", "0"},
		{"creationTimeMillis >= -5", "012"},
		{"hasAvailablePlayerSessions = false", "1"},
		{"hasAvailablePlayerSessions <> TRUE", "1"},
		{"gameSessionId = 'gsess-2'", "1"},
		{"gameSessionProperties.gameMode <> 'brawl'", "1"}, // a session without the property matches neither
		{"NOT gameSessionProperties.gameMode = 'brawl'", "12"},
		{"playerSessionCount = 4 OR playerSessionCount = 0 AND maximumSessions = 4", "1"},    // AND before OR
		{"(playerSessionCount = 4 OR playerSessionCount = 0) AND maximumSessions = 20", "2"}, // parentheses first
		{"NOT playerSessionCount = 4 AND maximumSessions > 5", "02"},                         // NOT before AND
		{"NOT (playerSessionCount = 4 OR maximumSessions = 20)", "0"},
		{"not playerSessionCount=4 and maximumsessions>5 or GAMESESSIONNAME='quiet'", "012"},
		{"((((maximumSessions = 20))))", "2"},
		{"NOT NOT maximumSessions = 20", "2"},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			e, err := ParseFilter(tc.expr)
			if err != nil {
				t.Fatal(err)
			}
			if got := matches(e); got != tc.want {
				t.Errorf("matches %q, want %q (parsed as %s)", got, tc.want, e)
			}
			again, err := ParseFilter(e.String())
			if err != nil {
				t.Fatalf("String %s: %v", e, err)
			}
			if got := matches(again); got != tc.want {
				t.Errorf("String %s matches %q, want %q", e, got, tc.want)
			}
		})
	}
}

func matches(e Expr) string {
	var b strings.Builder
	for i, s := range sessions {
		if e.Match(s) {
			b.WriteByte(byte('0' + i))
		}
	}
	return b.String()
}

// TestParseFilterErrors: each refusal says where and why.
func TestParseFilterErrors(t *testing.T) {
	for _, tc := range []struct {
		expr string
		pos  int
		msg  string
	}{
		{"", 1, "1 to 1024 characters"},
		{strings.Repeat("(", 1025), 1, "1 to 1024 characters"},
		{"players = 3", 1, `unknown operand "players"`},
		{"maximumSessions 3", 17, "expected a comparator"},
		{"maximumSessions = 'ten'", 19, "compares with a number"},
		{"gameSessionName = brawl", 19, "compares with a quoted string"},
		{"gameSessionName < 'a'", 19, "only with = or <>"},
		{"hasAvailablePlayerSessions > true", 30, "only with = or <>"},
		{"hasAvailablePlayerSessions = yes", 30, "true or false"},
		{"gameSessionName = 'open", 19, "no closing '"},
		{`gameSessionName = 'open\`, 24, "backslash at the end"},
		{"maximumSessions = 3 AND", 24, "expected an operand"},
		{"(maximumSessions = 3", 21, "expected ) to close"},
		{"maximumSessions = 3)", 20, "unexpected \")\""},
		{"maximumSessions = 3 maximumSessions = 4", 21, "after a complete expression"},
		{"maximumSessions = 99999999999999999999", 19, "out of range"},
		{"maximumSessions = -", 19, "minus sign"},
		{"maximumSessions == 3", 18, "compares with a number"},
		{"gameSessionProperties.a.b = 'x'", 1, "with a dot"},
		{"maximumSessions ! 3", 17, "unexpected character"},
		{strings.Repeat("NOT ", 70) + "maximumSessions = 1", 261, "nested more than 64"},
	} {
		t.Run(tc.expr[:min(len(tc.expr), 40)], func(t *testing.T) {
			_, err := ParseFilter(tc.expr)
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("got %v, want a SyntaxError", err)
			}
			if se.Pos != tc.pos || !strings.Contains(se.Msg, tc.msg) {
				t.Errorf("got %v, want at character %d: ...%s...", err, tc.pos, tc.msg)
			}
		})
	}
}

func TestParseSort(t *testing.T) {
	for expr, want := range map[string]Sort{
		"creationTimeMillis ASC":          {CreationTimeMillis, false},
		"playersessioncount desc":         {PlayerSessionCount, true},
		"gameSessionProperties.rank DESC": {PropertyPrefix + "rank", true},
	} {
		if got, err := ParseSort(expr); err != nil || got != want {
			t.Errorf("%s: got %+v, %v; want %+v", expr, got, err, want)
		}
	}
	for expr, msg := range map[string]string{"": "1 to 1024", "creationTimeMillis": "expected ASC or DESC", "players ASC": "unknown operand",
		"creationTimeMillis ASC DESC": "after the sort order", "'x' ASC": "expected an operand"} {
		if _, err := ParseSort(expr); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: got %v, want ...%s...", expr, err, msg)
		}
	}
}

// FuzzParseFilter: no input panics; an accepted expression's String is accepted too and matches the same
// game sessions, including random ones.
func FuzzParseFilter(f *testing.F) {
	for _, seed := range []string{"maximumSessions>=10 AND hasAvailablePlayerSessions=true", "gameSessionProperties.gameMode = 'brawl' AND playerSessionCount < 4",
		`NOT (gameSessionName = 'a\'b' OR creationTimeMillis <> -3)`, "((", "'", `"\`} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, src string) {
		e, err := ParseFilter(src)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Pos < 1 || se.Pos > len(src)+1 {
				t.Fatalf("%q: error %v without a position in the expression", src, err)
			}
			return
		}
		again, err := ParseFilter(e.String())
		if err != nil {
			if len(e.String()) > MaxLength {
				return // parenthesising made it longer than GameLift takes
			}
			t.Fatalf("%q parsed as %s, which does not parse: %v", src, e, err)
		}
		r := rand.New(rand.NewPCG(uint64(len(src)), 7))
		for range 20 {
			s := &Session{ID: "gsess-" + string(rune('a'+r.IntN(3))), Name: []string{"a", "b", "a'b", ""}[r.IntN(4)],
				MaximumSessions: r.Int64N(5) - 1, CreationTimeMillis: r.Int64N(5) - 1, PlayerSessionCount: r.Int64N(5) - 1,
				HasAvailablePlayerSessions: r.IntN(2) == 0, Properties: map[string]string{"gameMode": []string{"brawl", "ranked"}[r.IntN(2)]}}
			if e.Match(s) != again.Match(s) {
				t.Fatalf("%q and its String %s disagree on %+v", src, e, s)
			}
		}
	})
}
