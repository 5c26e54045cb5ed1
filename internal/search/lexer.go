package search

import (
	"fmt"
	"strings"
)

type tokKind int

const (
	tokEOF tokKind = iota
	tokIdent
	tokNumber
	tokString
	tokComparator
	tokLParen
	tokRParen
)

type token struct {
	kind tokKind
	text string // an identifier, the digits, a string's value (unescaped), a comparator
	pos  int    // 1-based character position
}

func (t token) String() string {
	switch t.kind {
	case tokEOF:
		return "the end of the expression"
	case tokString:
		return fmt.Sprintf("the string %q", t.text)
	case tokLParen, tokRParen, tokComparator:
		return fmt.Sprintf("%q", t.text)
	}
	return t.text
}

type lexer struct {
	src string
	i   int
}

func isIdent(c byte, first bool) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || !first && (c >= '0' && c <= '9' || c == '.' || c == '-')
}

func (l *lexer) next() (token, error) {
	for l.i < len(l.src) && strings.IndexByte(" \t\r\n", l.src[l.i]) >= 0 {
		l.i++
	}
	start := l.i
	pos := start + 1
	if l.i >= len(l.src) {
		return token{kind: tokEOF, pos: pos}, nil
	}
	c := l.src[l.i]
	switch {
	case c == '(':
		l.i++
		return token{tokLParen, "(", pos}, nil
	case c == ')':
		l.i++
		return token{tokRParen, ")", pos}, nil
	case c == '=':
		l.i++
		return token{tokComparator, "=", pos}, nil
	case c == '<' || c == '>':
		l.i++
		if l.i < len(l.src) && (l.src[l.i] == '=' || c == '<' && l.src[l.i] == '>') {
			l.i++
		}
		return token{tokComparator, l.src[start:l.i], pos}, nil
	case c == '\'' || c == '"':
		var b strings.Builder
		for l.i++; l.i < len(l.src); l.i++ {
			switch l.src[l.i] {
			case '\\':
				if l.i+1 >= len(l.src) {
					return token{}, &SyntaxError{l.i + 1, "a backslash at the end of the expression escapes nothing"}
				}
				l.i++
				b.WriteByte(l.src[l.i])
			case c:
				l.i++
				return token{tokString, b.String(), pos}, nil
			default:
				b.WriteByte(l.src[l.i])
			}
		}
		return token{}, &SyntaxError{pos, fmt.Sprintf("the string starting here has no closing %c", c)}
	case c == '-' || c >= '0' && c <= '9':
		l.i++
		for l.i < len(l.src) && l.src[l.i] >= '0' && l.src[l.i] <= '9' {
			l.i++
		}
		if l.src[start:l.i] == "-" {
			return token{}, &SyntaxError{pos, "a minus sign without a number"}
		}
		return token{tokNumber, l.src[start:l.i], pos}, nil
	case isIdent(c, true):
		for l.i < len(l.src) && isIdent(l.src[l.i], false) {
			l.i++
		}
		return token{tokIdent, l.src[start:l.i], pos}, nil
	}
	return token{}, &SyntaxError{pos, fmt.Sprintf("unexpected character %q", c)}
}
