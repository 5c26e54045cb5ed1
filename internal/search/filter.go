// Package search reads SearchGameSessions' expressions (GameLift's FilterExpression and SortExpression
// grammar, docs/gamelift.md) into trees that evaluate a game session's searchable attributes. It is pure: the
// index that answers SearchGameSessions from these trees is the caller's.
//
// The grammar, as GameLift documents it (precedence from the tightest: comparisons, parentheses, NOT, AND,
// OR; left to right):
//
//	expr       = or
//	or         = and { "OR" and }
//	and        = unary { "AND" unary }
//	unary      = "NOT" unary | "(" expr ")" | comparison
//	comparison = operand comparator value
//	operand    = "gameSessionId" | "gameSessionName" | "maximumSessions" | "creationTimeMillis"
//	           | "playerSessionCount" | "hasAvailablePlayerSessions" | "gameSessionProperties." key
//	comparator = "=" | "<>" | "<" | ">" | "<=" | ">="
//	value      = number | "true" | "false" | string      (string: '...' or "...", \ escapes the next character)
//
// Keywords and operands are case-insensitive, strings case-sensitive. Numbers compare as numbers, strings and
// booleans only with = and <>; all property values are strings.
package search

import (
	"fmt"
	"strconv"
	"strings"
)

// Attribute names (the operands, in their documented spelling).
const (
	GameSessionID              = "gameSessionId"
	GameSessionName            = "gameSessionName"
	MaximumSessions            = "maximumSessions"
	CreationTimeMillis         = "creationTimeMillis"
	PlayerSessionCount         = "playerSessionCount"
	HasAvailablePlayerSessions = "hasAvailablePlayerSessions"
	// PropertyPrefix starts a game property's operand: gameSessionProperties.<key>.
	PropertyPrefix = "gameSessionProperties."
)

// kind is an operand's type.
type kind int

const (
	kindString kind = iota
	kindNumber
	kindBool
)

var operands = map[string]kind{
	strings.ToLower(GameSessionID): kindString, strings.ToLower(GameSessionName): kindString,
	strings.ToLower(MaximumSessions): kindNumber, strings.ToLower(CreationTimeMillis): kindNumber,
	strings.ToLower(PlayerSessionCount): kindNumber, strings.ToLower(HasAvailablePlayerSessions): kindBool,
}

var canonical = map[string]string{
	strings.ToLower(GameSessionID): GameSessionID, strings.ToLower(GameSessionName): GameSessionName,
	strings.ToLower(MaximumSessions): MaximumSessions, strings.ToLower(CreationTimeMillis): CreationTimeMillis,
	strings.ToLower(PlayerSessionCount): PlayerSessionCount, strings.ToLower(HasAvailablePlayerSessions): HasAvailablePlayerSessions,
}

// Session is what an expression reads of a game session.
type Session struct {
	ID, Name                                                string
	MaximumSessions, CreationTimeMillis, PlayerSessionCount int64
	HasAvailablePlayerSessions                              bool
	Properties                                              map[string]string
}

// Expr is a parsed filter expression.
type Expr interface {
	// Match reports whether s satisfies the expression.
	Match(s *Session) bool
	// String is the expression in the grammar, fully parenthesised: parsing it gives the same expression.
	String() string
}

// Comparison is operand comparator value.
type Comparison struct {
	// Operand is an attribute name, or PropertyPrefix and a key.
	Operand string
	Op      string
	kind    kind
	str     string
	num     int64
	boolean bool
}

// Not, And and Or combine expressions.
type (
	Not struct{ X Expr }
	And struct{ X, Y Expr }
	Or  struct{ X, Y Expr }
)

func (n Not) Match(s *Session) bool { return !n.X.Match(s) }
func (a And) Match(s *Session) bool { return a.X.Match(s) && a.Y.Match(s) }
func (o Or) Match(s *Session) bool  { return o.X.Match(s) || o.Y.Match(s) }
func (n Not) String() string        { return "(NOT " + n.X.String() + ")" }
func (a And) String() string        { return "(" + a.X.String() + " AND " + a.Y.String() + ")" }
func (o Or) String() string         { return "(" + o.X.String() + " OR " + o.Y.String() + ")" }

// Match compares the session's attribute with the value. A game session without the property compares as
// neither equal nor different: GameLift returns only game sessions that have it.
func (c Comparison) Match(s *Session) bool {
	switch c.kind {
	case kindNumber:
		var v int64
		switch c.Operand {
		case MaximumSessions:
			v = s.MaximumSessions
		case CreationTimeMillis:
			v = s.CreationTimeMillis
		default:
			v = s.PlayerSessionCount
		}
		switch c.Op {
		case "=":
			return v == c.num
		case "<>":
			return v != c.num
		case "<":
			return v < c.num
		case ">":
			return v > c.num
		case "<=":
			return v <= c.num
		}
		return v >= c.num
	case kindBool:
		return (s.HasAvailablePlayerSessions == c.boolean) == (c.Op == "=")
	}
	var v string
	switch {
	case c.Operand == GameSessionID:
		v = s.ID
	case c.Operand == GameSessionName:
		v = s.Name
	default:
		p, ok := s.Properties[strings.TrimPrefix(c.Operand, PropertyPrefix)]
		if !ok {
			return false
		}
		v = p
	}
	return (v == c.str) == (c.Op == "=")
}

func (c Comparison) String() string {
	switch c.kind {
	case kindNumber:
		return c.Operand + " " + c.Op + " " + strconv.FormatInt(c.num, 10)
	case kindBool:
		return c.Operand + " " + c.Op + " " + strconv.FormatBool(c.boolean)
	}
	return c.Operand + " " + c.Op + " '" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(c.str) + "'"
}

// Equals is the comparison operand = value, as a field selector states it: operand an attribute name or
// PropertyPrefix and a key (in any case, as the grammar reads them), value a string, a number or true/false
// as the operand's type is.
func Equals(operand, value string) (Expr, error) {
	name, k := operand, kindString
	if key, ok := strings.CutPrefix(strings.ToLower(operand), strings.ToLower(PropertyPrefix)); ok {
		name = PropertyPrefix + operand[len(operand)-len(key):]
	} else if kk, ok := operands[strings.ToLower(operand)]; ok {
		name, k = canonical[strings.ToLower(operand)], kk
	} else {
		return nil, fmt.Errorf("unknown operand %s", operand)
	}
	c := Comparison{Operand: name, Op: "=", kind: k, str: value}
	switch k {
	case kindNumber:
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s compares with a number, not %q", name, value)
		}
		c.num = n
	case kindBool:
		b, err := strconv.ParseBool(value)
		if err != nil || (value != "true" && value != "false") {
			return nil, fmt.Errorf("%s is true or false, not %q", name, value)
		}
		c.boolean = b
	}
	return c, nil
}

// SyntaxError is a refused expression: where (a 1-based character position) and why.
type SyntaxError struct {
	Pos int
	Msg string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("at character %d: %s", e.Pos, e.Msg) }

// MaxLength is the longest expression GameLift takes.
const MaxLength = 1024

// maxDepth bounds nesting (parentheses and NOTs), so a deep expression cannot exhaust the stack.
const maxDepth = 64

// ParseFilter reads a FilterExpression.
func ParseFilter(src string) (Expr, error) {
	if len(src) == 0 || len(src) > MaxLength {
		return nil, &SyntaxError{1, fmt.Sprintf("a filter expression has 1 to %d characters", MaxLength)}
	}
	p := &parser{lex: lexer{src: src}}
	p.next()
	e, err := p.or(0)
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tokEOF {
		return nil, p.errorf("unexpected %s after a complete expression", p.tok)
	}
	return e, nil
}

// Sort is a parsed SortExpression.
type Sort struct {
	Operand    string
	Descending bool
}

// ParseSort reads a SortExpression: an operand, then ASC or DESC.
func ParseSort(src string) (Sort, error) {
	if len(src) == 0 || len(src) > MaxLength {
		return Sort{}, &SyntaxError{1, fmt.Sprintf("a sort expression has 1 to %d characters", MaxLength)}
	}
	p := &parser{lex: lexer{src: src}}
	p.next()
	if p.tok.kind != tokIdent {
		return Sort{}, p.errorf("expected an operand, found %s", p.tok)
	}
	operand, _, err := p.operand()
	if err != nil {
		return Sort{}, err
	}
	p.next()
	if p.tok.kind != tokIdent || (!strings.EqualFold(p.tok.text, "ASC") && !strings.EqualFold(p.tok.text, "DESC")) {
		return Sort{}, p.errorf("expected ASC or DESC after %s, found %s", operand, p.tok)
	}
	s := Sort{Operand: operand, Descending: strings.EqualFold(p.tok.text, "DESC")}
	p.next()
	if p.tok.kind != tokEOF {
		return Sort{}, p.errorf("unexpected %s after the sort order", p.tok)
	}
	return s, nil
}

type parser struct {
	lex lexer
	tok token
	err error
}

func (p *parser) next() {
	if p.err == nil {
		p.tok, p.err = p.lex.next()
	}
}

func (p *parser) errorf(format string, args ...any) error {
	if p.err != nil {
		return p.err
	}
	return &SyntaxError{p.tok.pos, fmt.Sprintf(format, args...)}
}

func (p *parser) keyword(word string) bool {
	return p.err == nil && p.tok.kind == tokIdent && strings.EqualFold(p.tok.text, word)
}

func (p *parser) or(depth int) (Expr, error) {
	x, err := p.and(depth)
	for err == nil && p.keyword("OR") {
		p.next()
		var y Expr
		if y, err = p.and(depth); err == nil {
			x = Or{x, y}
		}
	}
	return x, err
}

func (p *parser) and(depth int) (Expr, error) {
	x, err := p.unary(depth)
	for err == nil && p.keyword("AND") {
		p.next()
		var y Expr
		if y, err = p.unary(depth); err == nil {
			x = And{x, y}
		}
	}
	return x, err
}

func (p *parser) unary(depth int) (Expr, error) {
	if depth > maxDepth {
		return nil, p.errorf("expression nested more than %d deep", maxDepth)
	}
	switch {
	case p.err != nil:
		return nil, p.err
	case p.keyword("NOT"):
		p.next()
		x, err := p.unary(depth + 1)
		if err != nil {
			return nil, err
		}
		return Not{x}, nil
	case p.tok.kind == tokLParen:
		p.next()
		x, err := p.or(depth + 1)
		if err != nil {
			return nil, err
		}
		if p.tok.kind != tokRParen {
			return nil, p.errorf("expected ) to close the parenthesis, found %s", p.tok)
		}
		p.next()
		return x, nil
	case p.tok.kind == tokIdent:
		return p.comparison()
	}
	return nil, p.errorf("expected an operand, NOT or (, found %s", p.tok)
}

// operand reads the current identifier as an operand: its canonical name and kind.
func (p *parser) operand() (string, kind, error) {
	name := p.tok.text
	if k, ok := operands[strings.ToLower(name)]; ok {
		return canonical[strings.ToLower(name)], k, nil
	}
	if len(name) > len(PropertyPrefix) && strings.EqualFold(name[:len(PropertyPrefix)], PropertyPrefix) {
		key := name[len(PropertyPrefix):]
		if strings.Contains(key, ".") {
			return "", 0, p.errorf("a game property key with a dot (%q) cannot be searched", key)
		}
		return PropertyPrefix + key, kindString, nil
	}
	return "", 0, p.errorf("unknown operand %q: one of gameSessionId, gameSessionName, gameSessionProperties.<key>, maximumSessions, creationTimeMillis, playerSessionCount, hasAvailablePlayerSessions", name)
}

func (p *parser) comparison() (Expr, error) {
	operand, k, err := p.operand()
	if err != nil {
		return nil, err
	}
	p.next()
	if p.tok.kind != tokComparator {
		return nil, p.errorf("expected a comparator (=, <>, <, >, <=, >=) after %s, found %s", operand, p.tok)
	}
	c := Comparison{Operand: operand, Op: p.tok.text, kind: k}
	p.next()
	if p.err != nil {
		return nil, p.err
	}
	switch k {
	case kindNumber:
		if p.tok.kind != tokNumber {
			return nil, p.errorf("%s compares with a number, not %s", operand, p.tok)
		}
		n, err := strconv.ParseInt(p.tok.text, 10, 64)
		if err != nil {
			return nil, p.errorf("number %s is out of range", p.tok.text)
		}
		c.num = n
	case kindBool:
		if p.tok.kind != tokIdent || (!strings.EqualFold(p.tok.text, "true") && !strings.EqualFold(p.tok.text, "false")) {
			return nil, p.errorf("%s compares with true or false, not %s", operand, p.tok)
		}
		c.boolean = strings.EqualFold(p.tok.text, "true")
	default:
		if p.tok.kind != tokString {
			return nil, p.errorf("%s compares with a quoted string, not %s", operand, p.tok)
		}
		c.str = p.tok.text
	}
	if k != kindNumber && c.Op != "=" && c.Op != "<>" {
		return nil, &SyntaxError{p.tok.pos, fmt.Sprintf("%s compares only with = or <>, not %s", operand, c.Op)}
	}
	p.next()
	return c, nil
}
