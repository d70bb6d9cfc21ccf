package placement

import (
	"errors"
	"fmt"
	"iter"
	"regexp"
	"regexp/syntax"
	"strings"
	"unicode/utf8"
)

// Limits of the cluster query language. The length matches the CRD's MaxLength on
// expression fields; the depth bounds the parser's recursion so that no input can
// exhaust the stack.
const (
	MaxExpressionLength = 2000
	MaxExpressionDepth  = 32
)

// SyntaxError is a malformed memberOf expression. Pos is the 0-based byte offset in the
// expression where the problem was found, so a condition message can point at it.
type SyntaxError struct {
	Pos int
	Msg string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("expression: position %d: %s", e.Pos, e.Msg)
}

// Target is what an expression is evaluated against: one container instance as the
// engine sees it, including the tasks assumed on it.
type Target interface {
	// InstanceID is the instance's name (ECS's instanceId and ec2InstanceId).
	InstanceID() string
	// Attribute returns the value of an attribute and whether the instance has it.
	Attribute(name string) (value string, ok bool)
	// HasTaskGroup reports whether a task of the group runs on the instance.
	HasTaskGroup(group string) bool
	// TaskGroups yields each non-empty group with a task on the instance, once.
	TaskGroups() iter.Seq[string]
}

// Expression is a parsed memberOf expression.
type Expression interface {
	// Eval reports whether the instance satisfies the expression.
	Eval(t Target) bool
	// String is the canonical form: aliases replaced by their main spelling, values
	// quoted only when needed, and parentheses only where the structure needs them.
	// Parsing it gives an equal expression.
	String() string

	// expression seals the interface: only the parser builds expressions.
	expression()
}

// ParseExpression parses an expression of ECS's cluster query language, for example
// `attribute:ecs.availability-zone in [zone-a, zone-b] and not attribute:spot exists`.
// Errors are *SyntaxError.
func ParseExpression(s string) (Expression, error) {
	if len(s) > MaxExpressionLength {
		return nil, &SyntaxError{Pos: MaxExpressionLength, Msg: fmt.Sprintf("expression is longer than %d characters", MaxExpressionLength)}
	}
	toks, err := lex(s)
	if err != nil {
		return nil, err
	}
	if toks[0].kind == tokEOF {
		return nil, &SyntaxError{Pos: 0, Msg: "expression is empty"}
	}
	p := &parser{toks: toks}
	x, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if tok := p.peek(); tok.kind != tokEOF {
		return nil, &SyntaxError{Pos: tok.pos, Msg: fmt.Sprintf("unexpected %s after a complete expression; join expressions with 'and' or 'or'", tok)}
	}
	return x, nil
}

// Lexer.

type tokenKind int

const (
	tokEOF      tokenKind = iota
	tokWord               // bare word: subject, keyword or value
	tokString             // quoted value; text is without the quotes
	tokEq                 // ==
	tokNe                 // !=
	tokMatch              // =~
	tokNotMatch           // !~
	tokAnd                // &&
	tokOr                 // ||
	tokBang               // !
	tokLParen
	tokRParen
	tokLBrack
	tokRBrack
	tokComma
)

type token struct {
	kind tokenKind
	text string
	pos  int
}

// String describes the token for error messages.
func (t token) String() string {
	switch t.kind {
	case tokEOF:
		return "end of expression"
	case tokWord:
		return fmt.Sprintf("%q", t.text)
	case tokString:
		return fmt.Sprintf("string %q", t.text)
	default:
		return "'" + t.text + "'"
	}
}

// isWordByte reports whether c can appear in a bare word. It covers subjects
// (attribute:ecs.instance-type, task:group), values (zone-a, t2.*, service:web,
// user@host) and keywords.
func isWordByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '_' || c == '.' || c == ':' || c == '*' || c == '/' || c == '@' || c == '-'
}

// isAttributeNameByte is the narrower set of characters of an attribute name, as the
// Attribute type's schema allows.
func isAttributeNameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '_' || c == '.' || c == '/' || c == '-'
}

// lex splits the whole expression into tokens up front: expressions are short, and a
// slice makes the parser's lookahead trivial. The last token is always tokEOF.
//
//nolint:gocyclo // a lexer is one switch over the next character
func lex(s string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case isWordByte(c):
			start := i
			for i < len(s) && isWordByte(s[i]) {
				i++
			}
			toks = append(toks, token{kind: tokWord, text: s[start:i], pos: start})
		case c == '"' || c == '\'':
			// No escapes: a regex such as "t2\.micro" keeps its backslash. A value that
			// contains one kind of quote is written with the other.
			end := strings.IndexByte(s[i+1:], c)
			if end < 0 {
				return nil, &SyntaxError{Pos: i, Msg: "unterminated string"}
			}
			toks = append(toks, token{kind: tokString, text: s[i+1 : i+1+end], pos: i})
			i += end + 2
		case c == '=':
			switch next(s, i) {
			case '=':
				toks = append(toks, token{kind: tokEq, text: "==", pos: i})
			case '~':
				toks = append(toks, token{kind: tokMatch, text: "=~", pos: i})
			default:
				return nil, &SyntaxError{Pos: i, Msg: "unexpected '='; use '==' or '=~'"}
			}
			i += 2
		case c == '!':
			// `!in` and `!exists` are operators of their own; `!` before anything else
			// is `not`.
			if w := wordAt(s, i+1); w == "in" || w == "exists" {
				toks = append(toks, token{kind: tokWord, text: "!" + w, pos: i})
				i += 1 + len(w)
				continue
			}
			switch next(s, i) {
			case '=':
				toks = append(toks, token{kind: tokNe, text: "!=", pos: i})
				i += 2
			case '~':
				toks = append(toks, token{kind: tokNotMatch, text: "!~", pos: i})
				i += 2
			default:
				toks = append(toks, token{kind: tokBang, text: "!", pos: i})
				i++
			}
		case c == '&':
			if next(s, i) != '&' {
				return nil, &SyntaxError{Pos: i, Msg: "unexpected '&'; use '&&' or 'and'"}
			}
			toks = append(toks, token{kind: tokAnd, text: "&&", pos: i})
			i += 2
		case c == '|':
			if next(s, i) != '|' {
				return nil, &SyntaxError{Pos: i, Msg: "unexpected '|'; use '||' or 'or'"}
			}
			toks = append(toks, token{kind: tokOr, text: "||", pos: i})
			i += 2
		case c == '(':
			toks = append(toks, token{kind: tokLParen, text: "(", pos: i})
			i++
		case c == ')':
			toks = append(toks, token{kind: tokRParen, text: ")", pos: i})
			i++
		case c == '[':
			toks = append(toks, token{kind: tokLBrack, text: "[", pos: i})
			i++
		case c == ']':
			toks = append(toks, token{kind: tokRBrack, text: "]", pos: i})
			i++
		case c == ',':
			toks = append(toks, token{kind: tokComma, text: ",", pos: i})
			i++
		default:
			r, _ := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError {
				return nil, &SyntaxError{Pos: i, Msg: fmt.Sprintf("unexpected byte %#x", c)}
			}
			return nil, &SyntaxError{Pos: i, Msg: fmt.Sprintf("unexpected character %q", r)}
		}
	}
	return append(toks, token{kind: tokEOF, pos: len(s)}), nil
}

// next returns the byte after s[i], or 0 at the end.
func next(s string, i int) byte {
	if i+1 < len(s) {
		return s[i+1]
	}
	return 0
}

// wordAt returns the bare word starting at s[i], if any.
func wordAt(s string, i int) string {
	j := i
	for j < len(s) && isWordByte(s[j]) {
		j++
	}
	return s[i:j]
}

// Parser: recursive descent over
//
//	or         = and { ("or" | "||") and }
//	and        = unary { ("and" | "&&") unary }
//	unary      = ("not" | "!") unary | primary
//	primary    = "(" or ")" | comparison
//	comparison = subject operator [ value | "[" value { "," value } "]" ]

type parser struct {
	toks  []token
	i     int
	depth int
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tokEOF {
		p.i++
	}
	return t
}

func isKeyword(t token, kind tokenKind, word string) bool {
	return t.kind == kind || t.kind == tokWord && t.text == word
}

func (p *parser) enter(t token) error {
	p.depth++
	if p.depth > MaxExpressionDepth {
		return &SyntaxError{Pos: t.pos, Msg: fmt.Sprintf("expression is nested deeper than %d levels", MaxExpressionDepth)}
	}
	return nil
}

func (p *parser) parseOr() (Expression, error) {
	x, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	terms := []Expression{x}
	for isKeyword(p.peek(), tokOr, "or") {
		p.next()
		y, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		terms = append(terms, y)
	}
	if len(terms) == 1 {
		return x, nil
	}
	return &orExpr{terms: terms}, nil
}

func (p *parser) parseAnd() (Expression, error) {
	x, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	terms := []Expression{x}
	for isKeyword(p.peek(), tokAnd, "and") {
		p.next()
		y, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		terms = append(terms, y)
	}
	if len(terms) == 1 {
		return x, nil
	}
	return &andExpr{terms: terms}, nil
}

func (p *parser) parseUnary() (Expression, error) {
	if t := p.peek(); isKeyword(t, tokBang, "not") {
		p.next()
		if err := p.enter(t); err != nil {
			return nil, err
		}
		x, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		p.depth--
		return &notExpr{x: x}, nil
	}
	return p.parsePrimary()
}

func (p *parser) parsePrimary() (Expression, error) {
	open := p.peek()
	if open.kind != tokLParen {
		return p.parseComparison()
	}
	p.next()
	if err := p.enter(open); err != nil {
		return nil, err
	}
	x, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if t := p.next(); t.kind != tokRParen {
		return nil, &SyntaxError{Pos: t.pos, Msg: fmt.Sprintf("expected ')' to close '(' at position %d", open.pos)}
	}
	p.depth--
	return x, nil
}

const attributePrefix = "attribute:"

func (p *parser) parseComparison() (Expression, error) {
	subj, err := p.parseSubject()
	if err != nil {
		return nil, err
	}
	opTok := p.next()
	op, ok := operatorOf(opTok)
	if !ok {
		if opTok.kind == tokWord {
			return nil, &SyntaxError{Pos: opTok.pos, Msg: fmt.Sprintf("unknown operator %q", opTok.text)}
		}
		return nil, &SyntaxError{Pos: opTok.pos, Msg: "expected an operator after " + subj.String()}
	}
	c := &cmpExpr{subj: subj, op: op}
	switch op.base() {
	case opEq:
		v, _, err := p.parseValue("expected a value after '" + opTok.text + "'")
		if err != nil {
			return nil, err
		}
		c.values = []string{v}
	case opMatch:
		v, pos, err := p.parseValue("expected a regular expression after '" + opTok.text + "'")
		if err != nil {
			return nil, err
		}
		re, err := compileFullMatch(v)
		if err != nil {
			return nil, &SyntaxError{Pos: pos, Msg: err.Error()}
		}
		c.values, c.re = []string{v}, re
	case opIn:
		values, err := p.parseList(opTok)
		if err != nil {
			return nil, err
		}
		c.values = values
	case opExists:
		// No operand.
	}
	return c, nil
}

func (p *parser) parseSubject() (subject, error) {
	t := p.next()
	if t.kind != tokWord || strings.HasPrefix(t.text, "!") {
		return subject{}, &SyntaxError{Pos: t.pos, Msg: "expected attribute:<name>, instanceId or task:group"}
	}
	switch {
	case t.text == "instanceId" || t.text == "ec2InstanceId":
		return subject{kind: subjectInstanceID}, nil
	case t.text == "task:group":
		return subject{kind: subjectTaskGroup}, nil
	case strings.HasPrefix(t.text, attributePrefix):
		name := t.text[len(attributePrefix):]
		if name == "" {
			return subject{}, &SyntaxError{Pos: t.pos + len(attributePrefix), Msg: "attribute name missing after 'attribute:'"}
		}
		for i := 0; i < len(name); i++ {
			if !isAttributeNameByte(name[i]) {
				return subject{}, &SyntaxError{Pos: t.pos + len(attributePrefix) + i, Msg: fmt.Sprintf("invalid character %q in attribute name", rune(name[i]))}
			}
		}
		return subject{kind: subjectAttribute, attribute: name}, nil
	}
	return subject{}, &SyntaxError{Pos: t.pos, Msg: fmt.Sprintf("unknown subject %q; want attribute:<name>, instanceId or task:group", t.text)}
}

// parseValue reads a bare word or a quoted string. Words that are operators (`!in`)
// are not values.
func (p *parser) parseValue(msg string) (string, int, error) {
	t := p.peek()
	if t.kind == tokString || t.kind == tokWord && !strings.HasPrefix(t.text, "!") {
		p.next()
		return t.text, t.pos, nil
	}
	return "", 0, &SyntaxError{Pos: t.pos, Msg: msg}
}

func (p *parser) parseList(opTok token) ([]string, error) {
	if t := p.next(); t.kind != tokLBrack {
		return nil, &SyntaxError{Pos: t.pos, Msg: "expected '[' after '" + opTok.text + "'"}
	}
	var values []string
	for {
		v, _, err := p.parseValue("expected a value in the list")
		if err != nil {
			return nil, err
		}
		values = append(values, v)
		switch t := p.next(); t.kind {
		case tokComma:
			continue
		case tokRBrack:
			return values, nil
		case tokEOF:
			return nil, &SyntaxError{Pos: t.pos, Msg: "expected ']' after list"}
		default:
			return nil, &SyntaxError{Pos: t.pos, Msg: "expected ',' or ']' after a list value"}
		}
	}
}

// compileFullMatch compiles a pattern that must match the whole value, as ECS's `=~`
// does (`t2.*` matches t2.micro, not xt2.micro). The pattern is parsed on its own first:
// wrapping an unbalanced pattern such as `a)|(b` in `^(?:...)$` would compile into
// something that matches prefixes.
func compileFullMatch(pattern string) (*regexp.Regexp, error) {
	if _, err := syntax.Parse(pattern, syntax.Perl); err != nil {
		return nil, regexpError(pattern, err)
	}
	re, err := regexp.Compile(`^(?:` + pattern + `)$`)
	if err != nil {
		return nil, regexpError(pattern, err)
	}
	return re, nil
}

func regexpError(pattern string, err error) error {
	msg := err.Error()
	if se := (*syntax.Error)(nil); errors.As(err, &se) {
		msg = se.Code.String()
	}
	return fmt.Errorf("invalid regular expression %s: %s", quoteValue(pattern), msg)
}

// AST.

type subjectKind int

const (
	subjectAttribute subjectKind = iota
	subjectInstanceID
	subjectTaskGroup
)

type subject struct {
	kind      subjectKind
	attribute string
}

func (s subject) String() string {
	switch s.kind {
	case subjectInstanceID:
		return "instanceId"
	case subjectTaskGroup:
		return "task:group"
	default:
		return attributePrefix + s.attribute
	}
}

// operator is a comparison. Each negative operator is the exact negation of its
// positive one, so `attribute:stack != prod` holds on an instance without the
// attribute, as does `not attribute:stack == prod`.
type operator int

const (
	opEq operator = iota
	opNe
	opMatch
	opNotMatch
	opIn
	opNotIn
	opExists
	opNotExists
)

var operatorNames = [...]string{
	opEq:        "==",
	opNe:        "!=",
	opMatch:     "=~",
	opNotMatch:  "!~",
	opIn:        "in",
	opNotIn:     "not_in",
	opExists:    "exists",
	opNotExists: "not_exists",
}

func (o operator) String() string { return operatorNames[o] }

// base is the positive operator; negated reports whether o is its negation.
func (o operator) base() operator { return o &^ 1 }
func (o operator) negated() bool  { return o&1 == 1 }

func operatorOf(t token) (operator, bool) {
	switch t.kind {
	case tokEq:
		return opEq, true
	case tokNe:
		return opNe, true
	case tokMatch:
		return opMatch, true
	case tokNotMatch:
		return opNotMatch, true
	case tokWord:
		switch t.text {
		case "equals":
			return opEq, true
		case "not_equals":
			return opNe, true
		case "matches":
			return opMatch, true
		case "not_matches":
			return opNotMatch, true
		case "in":
			return opIn, true
		case "not_in", "!in":
			return opNotIn, true
		case "exists":
			return opExists, true
		case "not_exists", "!exists":
			return opNotExists, true
		}
	}
	return 0, false
}

type orExpr struct{ terms []Expression }
type andExpr struct{ terms []Expression }
type notExpr struct{ x Expression }

// cmpExpr compares a subject: values has one element for == and =~ (the pattern), the
// list for in, and none for exists.
type cmpExpr struct {
	subj   subject
	op     operator
	values []string
	re     *regexp.Regexp
}

func (*orExpr) expression()  {}
func (*andExpr) expression() {}
func (*notExpr) expression() {}
func (*cmpExpr) expression() {}

func (e *orExpr) Eval(t Target) bool {
	for _, x := range e.terms {
		if x.Eval(t) {
			return true
		}
	}
	return false
}

func (e *andExpr) Eval(t Target) bool {
	for _, x := range e.terms {
		if !x.Eval(t) {
			return false
		}
	}
	return true
}

func (e *notExpr) Eval(t Target) bool { return !e.x.Eval(t) }

func (e *cmpExpr) Eval(t Target) bool {
	var ok bool
	if e.subj.kind == subjectTaskGroup {
		ok = e.evalGroups(t)
	} else {
		ok = e.evalValue(t)
	}
	return ok != e.op.negated()
}

// evalValue applies the positive operator to an attribute or the instance ID.
func (e *cmpExpr) evalValue(t Target) bool {
	var v string
	var present bool
	if e.subj.kind == subjectInstanceID {
		v, present = t.InstanceID(), true
	} else {
		v, present = t.Attribute(e.subj.attribute)
	}
	if !present {
		return false
	}
	switch e.op.base() {
	case opEq:
		return v == e.values[0]
	case opMatch:
		return e.re.MatchString(v)
	case opIn:
		for _, want := range e.values {
			if v == want {
				return true
			}
		}
		return false
	default: // opExists
		return true
	}
}

// evalGroups applies the positive operator to the groups of the instance's tasks: it
// holds when some task's group satisfies it.
func (e *cmpExpr) evalGroups(t Target) bool {
	switch e.op.base() {
	case opEq:
		return t.HasTaskGroup(e.values[0])
	case opIn:
		for _, g := range e.values {
			if t.HasTaskGroup(g) {
				return true
			}
		}
		return false
	case opMatch:
		for g := range t.TaskGroups() {
			if e.re.MatchString(g) {
				return true
			}
		}
		return false
	default: // opExists
		for range t.TaskGroups() {
			return true
		}
		return false
	}
}

func (e *orExpr) String() string  { return joinTerms(e.terms, " or ") }
func (e *andExpr) String() string { return joinTerms(e.terms, " and ") }

func (e *notExpr) String() string { return "not " + operand(e.x) }

func (e *cmpExpr) String() string {
	var b strings.Builder
	b.WriteString(e.subj.String())
	b.WriteByte(' ')
	b.WriteString(e.op.String())
	switch e.op.base() {
	case opIn:
		b.WriteString(" [")
		for i, v := range e.values {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(quoteValue(v))
		}
		b.WriteByte(']')
	case opEq, opMatch:
		b.WriteByte(' ')
		b.WriteString(quoteValue(e.values[0]))
	}
	return b.String()
}

// joinTerms parenthesises nested and/or terms: the parser only builds them from
// parentheses, so keeping those makes String() parse back to the same tree.
func joinTerms(terms []Expression, sep string) string {
	parts := make([]string, len(terms))
	for i, x := range terms {
		parts[i] = operand(x)
	}
	return strings.Join(parts, sep)
}

func operand(x Expression) string {
	switch x.(type) {
	case *andExpr, *orExpr:
		return "(" + x.String() + ")"
	}
	return x.String()
}

// quoteValue writes a value bare when the lexer would read it back as the same word,
// and quoted otherwise. Parsed values never contain both kinds of quote.
func quoteValue(v string) string {
	bare := v != ""
	for i := 0; bare && i < len(v); i++ {
		bare = isWordByte(v[i])
	}
	switch {
	case bare:
		return v
	case !strings.Contains(v, `"`):
		return `"` + v + `"`
	default:
		return `'` + v + `'`
	}
}
