package placement

import (
	"errors"
	"iter"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// exprOptions compare parsed expressions: the AST's unexported fields, and compiled
// regular expressions by their source.
var exprOptions = cmp.Options{
	cmp.AllowUnexported(orExpr{}, andExpr{}, notExpr{}, cmpExpr{}, subject{}),
	cmp.Comparer(func(a, b *regexp.Regexp) bool {
		if a == nil || b == nil {
			return a == b
		}
		return a.String() == b.String()
	}),
}

// equalExpressions compares parsed expressions as exprOptions does, without reflection:
// the fuzz target calls it on every input, and minimizing a long input runs it
// thousands of times.
func equalExpressions(a, b Expression) bool {
	switch a := a.(type) {
	case *orExpr:
		b, ok := b.(*orExpr)
		return ok && slices.EqualFunc(a.terms, b.terms, equalExpressions)
	case *andExpr:
		b, ok := b.(*andExpr)
		return ok && slices.EqualFunc(a.terms, b.terms, equalExpressions)
	case *notExpr:
		b, ok := b.(*notExpr)
		return ok && equalExpressions(a.x, b.x)
	case *cmpExpr:
		b, ok := b.(*cmpExpr)
		return ok && a.subj == b.subj && a.op == b.op && slices.Equal(a.values, b.values) &&
			(a.re == nil) == (b.re == nil) && (a.re == nil || a.re.String() == b.re.String())
	}
	return false
}

func TestParseExpression(t *testing.T) {
	testCases := []struct {
		name string
		in   string
		// want is the canonical String() form, which shows how the parser grouped
		// the expression.
		want string
	}{
		{name: "equals", in: "attribute:stack == prod", want: "attribute:stack == prod"},
		{name: "equals word", in: "attribute:stack equals prod", want: "attribute:stack == prod"},
		{name: "not equals", in: "attribute:stack != prod", want: "attribute:stack != prod"},
		{name: "not_equals word", in: "attribute:stack not_equals prod", want: "attribute:stack != prod"},
		{name: "matches", in: "attribute:ecs.instance-type =~ t2.*", want: "attribute:ecs.instance-type =~ t2.*"},
		{name: "matches word", in: "attribute:ecs.instance-type matches t2.*", want: "attribute:ecs.instance-type =~ t2.*"},
		{name: "not matches", in: "attribute:ecs.instance-type !~ t2.*", want: "attribute:ecs.instance-type !~ t2.*"},
		{name: "not_matches word", in: "attribute:ecs.instance-type not_matches t2.*", want: "attribute:ecs.instance-type !~ t2.*"},
		{name: "in", in: "attribute:ecs.availability-zone in [zone-a, zone-b]", want: "attribute:ecs.availability-zone in [zone-a, zone-b]"},
		{name: "in without spaces", in: "attribute:az in[a,b,c]", want: "attribute:az in [a, b, c]"},
		{name: "not_in", in: "attribute:az not_in [a]", want: "attribute:az not_in [a]"},
		{name: "bang in", in: "attribute:az !in [a, b]", want: "attribute:az not_in [a, b]"},
		{name: "exists", in: "attribute:gpu exists", want: "attribute:gpu exists"},
		{name: "bang exists", in: "attribute:gpu !exists", want: "attribute:gpu not_exists"},
		{name: "not_exists", in: "attribute:gpu not_exists", want: "attribute:gpu not_exists"},
		{name: "instanceId", in: "instanceId == i-0abc", want: "instanceId == i-0abc"},
		{name: "ec2InstanceId alias", in: "ec2InstanceId in [i-1, i-2]", want: "instanceId in [i-1, i-2]"},
		{name: "task group", in: "task:group == service:web", want: "task:group == service:web"},
		{name: "attribute name with slash and underscore", in: "attribute:team/app_tier.x-y exists", want: "attribute:team/app_tier.x-y exists"},
		{name: "bare value characters", in: "attribute:owner == ops@team/a:b*", want: "attribute:owner == ops@team/a:b*"},
		{name: "double quoted", in: `attribute:stack == "prod"`, want: "attribute:stack == prod"},
		{name: "single quoted keeps spaces", in: `attribute:desc == 'big box'`, want: `attribute:desc == "big box"`},
		{name: "quoted empty value", in: `attribute:flag == ""`, want: `attribute:flag == ""`},
		{name: "quote of the other kind", in: `attribute:desc == 'say "hi"'`, want: `attribute:desc == 'say "hi"'`},
		{name: "regex keeps backslashes", in: `attribute:type =~ "t2\.(micro|small)"`, want: `attribute:type =~ "t2\.(micro|small)"`},
		{name: "keyword as value", in: "attribute:mode == and", want: "attribute:mode == and"},
		{name: "whitespace", in: "\tattribute:a\n==\r\nb ", want: "attribute:a == b"},
		{name: "and", in: "attribute:a == 1 and attribute:b == 2", want: "attribute:a == 1 and attribute:b == 2"},
		{name: "and symbol", in: "attribute:a == 1 && attribute:b == 2", want: "attribute:a == 1 and attribute:b == 2"},
		{name: "or symbol", in: "attribute:a == 1 || attribute:b == 2", want: "attribute:a == 1 or attribute:b == 2"},
		{name: "and chain is flat", in: "attribute:a == 1 and attribute:b == 2 and attribute:c == 3", want: "attribute:a == 1 and attribute:b == 2 and attribute:c == 3"},
		{name: "and binds tighter than or", in: "attribute:a == 1 or attribute:b == 2 and attribute:c == 3", want: "attribute:a == 1 or (attribute:b == 2 and attribute:c == 3)"},
		{name: "and binds tighter than or, left", in: "attribute:a == 1 and attribute:b == 2 or attribute:c == 3", want: "(attribute:a == 1 and attribute:b == 2) or attribute:c == 3"},
		{name: "parentheses override precedence", in: "(attribute:a == 1 or attribute:b == 2) and attribute:c == 3", want: "(attribute:a == 1 or attribute:b == 2) and attribute:c == 3"},
		{name: "not binds tighter than and", in: "not attribute:a == 1 and attribute:b == 2", want: "not attribute:a == 1 and attribute:b == 2"},
		{name: "not of a group", in: "not (attribute:a == 1 and attribute:b == 2)", want: "not (attribute:a == 1 and attribute:b == 2)"},
		{name: "bang is not", in: "!attribute:a exists", want: "not attribute:a exists"},
		{name: "double negation", in: "not not attribute:a exists", want: "not not attribute:a exists"},
		{name: "redundant parentheses", in: "((attribute:a == 1))", want: "attribute:a == 1"},
		{name: "explicit nesting is kept", in: "(attribute:a == 1 and attribute:b == 2) and attribute:c == 3", want: "(attribute:a == 1 and attribute:b == 2) and attribute:c == 3"},
		{name: "no spaces around symbols", in: "attribute:a==1&&!(attribute:b=~x||instanceId!=y)", want: "attribute:a == 1 and not (attribute:b =~ x or instanceId != y)"},
		{name: "nesting at the limit", in: strings.Repeat("(", MaxExpressionDepth) + "attribute:a exists" + strings.Repeat(")", MaxExpressionDepth), want: "attribute:a exists"},
		{name: "length at the limit", in: "attribute:a == " + strings.Repeat("x", MaxExpressionLength-len("attribute:a == ")), want: "attribute:a == " + strings.Repeat("x", MaxExpressionLength-len("attribute:a == "))},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			x, err := ParseExpression(tc.in)
			if err != nil {
				t.Fatalf("ParseExpression(%q): %v", tc.in, err)
			}
			if diff := cmp.Diff(tc.want, x.String()); diff != "" {
				t.Errorf("ParseExpression(%q).String() (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

func TestParseExpressionErrors(t *testing.T) {
	testCases := []struct {
		name string
		in   string
		want *SyntaxError
	}{
		{name: "empty", in: "", want: &SyntaxError{Pos: 0, Msg: "expression is empty"}},
		{name: "blank", in: "   ", want: &SyntaxError{Pos: 0, Msg: "expression is empty"}},
		{name: "too long", in: strings.Repeat("x", MaxExpressionLength+1), want: &SyntaxError{Pos: 2000, Msg: "expression is longer than 2000 characters"}},
		{name: "unexpected character", in: "attribute:a == b $", want: &SyntaxError{Pos: 17, Msg: "unexpected character '$'"}},
		{name: "non-ASCII character", in: "attribute:a == zöne", want: &SyntaxError{Pos: 16, Msg: "unexpected character 'ö'"}},
		{name: "invalid UTF-8", in: "attribute:a == \xff", want: &SyntaxError{Pos: 15, Msg: "unexpected byte 0xff"}},
		{name: "unterminated string", in: `attribute:a == "prod`, want: &SyntaxError{Pos: 15, Msg: "unterminated string"}},
		{name: "single equals", in: "attribute:a = b", want: &SyntaxError{Pos: 12, Msg: "unexpected '='; use '==' or '=~'"}},
		{name: "single ampersand", in: "attribute:a exists & instanceId == x", want: &SyntaxError{Pos: 19, Msg: "unexpected '&'; use '&&' or 'and'"}},
		{name: "single bar", in: "attribute:a exists | instanceId == x", want: &SyntaxError{Pos: 19, Msg: "unexpected '|'; use '||' or 'or'"}},
		{name: "unknown subject", in: "stack == prod", want: &SyntaxError{Pos: 0, Msg: `unknown subject "stack"; want attribute:<name>, instanceId or task:group`}},
		{name: "subject is a string", in: `"attribute:a" == b`, want: &SyntaxError{Pos: 0, Msg: "expected attribute:<name>, instanceId or task:group"}},
		{name: "attribute without name", in: "attribute: == b", want: &SyntaxError{Pos: 10, Msg: "attribute name missing after 'attribute:'"}},
		{name: "bad attribute name", in: "attribute:a:b == c", want: &SyntaxError{Pos: 11, Msg: "invalid character ':' in attribute name"}},
		{name: "missing operator", in: "attribute:a", want: &SyntaxError{Pos: 11, Msg: "expected an operator after attribute:a"}},
		{name: "unknown operator", in: "attribute:a eq b", want: &SyntaxError{Pos: 12, Msg: `unknown operator "eq"`}},
		{name: "missing value", in: "attribute:a ==", want: &SyntaxError{Pos: 14, Msg: "expected a value after '=='"}},
		{name: "operator as value", in: "attribute:a == !in", want: &SyntaxError{Pos: 15, Msg: "expected a value after '=='"}},
		{name: "missing pattern", in: "attribute:a matches", want: &SyntaxError{Pos: 19, Msg: "expected a regular expression after 'matches'"}},
		{name: "bad regex", in: `attribute:a =~ "t2["`, want: &SyntaxError{Pos: 15, Msg: `invalid regular expression "t2[": missing closing ]`}},
		{name: "unbalanced regex", in: `attribute:a =~ "a)|(b"`, want: &SyntaxError{Pos: 15, Msg: `invalid regular expression "a)|(b": unexpected )`}},
		{name: "in without list", in: "attribute:a in b", want: &SyntaxError{Pos: 15, Msg: "expected '[' after 'in'"}},
		{name: "empty list", in: "attribute:a in []", want: &SyntaxError{Pos: 16, Msg: "expected a value in the list"}},
		{name: "trailing comma", in: "attribute:a in [b,]", want: &SyntaxError{Pos: 18, Msg: "expected a value in the list"}},
		{name: "unclosed list", in: "attribute:abcd in [x", want: &SyntaxError{Pos: 20, Msg: "expected ']' after list"}},
		{name: "missing comma", in: "attribute:a in [b c]", want: &SyntaxError{Pos: 18, Msg: "expected ',' or ']' after a list value"}},
		{name: "unclosed parenthesis", in: "(attribute:a exists", want: &SyntaxError{Pos: 19, Msg: "expected ')' to close '(' at position 0"}},
		{name: "empty parentheses", in: "()", want: &SyntaxError{Pos: 1, Msg: "expected attribute:<name>, instanceId or task:group"}},
		{name: "dangling and", in: "attribute:a exists and", want: &SyntaxError{Pos: 22, Msg: "expected attribute:<name>, instanceId or task:group"}},
		{name: "dangling not", in: "not", want: &SyntaxError{Pos: 3, Msg: "expected attribute:<name>, instanceId or task:group"}},
		{name: "trailing garbage", in: "attribute:a == b c", want: &SyntaxError{Pos: 17, Msg: `unexpected "c" after a complete expression; join expressions with 'and' or 'or'`}},
		{name: "stray closing parenthesis", in: "attribute:a exists)", want: &SyntaxError{Pos: 18, Msg: "unexpected ')' after a complete expression; join expressions with 'and' or 'or'"}},
		{name: "too deep parentheses", in: strings.Repeat("(", MaxExpressionDepth+1) + "attribute:a exists" + strings.Repeat(")", MaxExpressionDepth+1), want: &SyntaxError{Pos: 32, Msg: "expression is nested deeper than 32 levels"}},
		{name: "too deep negations", in: strings.Repeat("!", MaxExpressionDepth+1) + "attribute:a exists", want: &SyntaxError{Pos: 32, Msg: "expression is nested deeper than 32 levels"}},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			x, err := ParseExpression(tc.in)
			if err == nil {
				t.Fatalf("ParseExpression(%q) = %v, want an error", tc.in, x)
			}
			var got *SyntaxError
			if !errors.As(err, &got) {
				t.Fatalf("ParseExpression(%q) error %v is %T, want *SyntaxError", tc.in, err, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseExpression(%q) error (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

func TestSyntaxErrorMessage(t *testing.T) {
	_, err := ParseExpression("attribute:abcd in [x")
	want := "expression: position 20: expected ']' after list"
	if err == nil || err.Error() != want {
		t.Errorf("error = %v, want %q", err, want)
	}
}

// fakeTarget is an instance for evaluating expressions without an engine.
type fakeTarget struct {
	id         string
	attributes map[string]string
	groups     map[string]bool
}

func (f fakeTarget) InstanceID() string { return f.id }
func (f fakeTarget) Attribute(name string) (string, bool) {
	v, ok := f.attributes[name]
	return v, ok
}
func (f fakeTarget) HasTaskGroup(group string) bool { return f.groups[group] }
func (f fakeTarget) TaskGroups() iter.Seq[string]   { return maps.Keys(f.groups) }

func TestExpressionEval(t *testing.T) {
	target := fakeTarget{
		id: "i-0abc",
		attributes: map[string]string{
			"ecs.availability-zone": "zone-a",
			"ecs.instance-type":     "t2.micro",
			"stack":                 "prod",
			"gpu":                   "",
		},
		groups: map[string]bool{"service:web": true, "family:batch": true},
	}
	testCases := []struct {
		in   string
		want bool
	}{
		{in: "attribute:stack == prod", want: true},
		{in: "attribute:stack == dev", want: false},
		{in: "attribute:stack != dev", want: true},
		{in: "attribute:missing == x", want: false},
		// Negative operators are the negation of the positive ones, also for an
		// attribute the instance lacks.
		{in: "attribute:missing != x", want: true},
		{in: "attribute:missing not_in [x]", want: true},
		{in: "attribute:missing !~ x.*", want: true},
		{in: "attribute:ecs.availability-zone in [zone-b, zone-a]", want: true},
		{in: "attribute:ecs.availability-zone not_in [zone-b, zone-a]", want: false},
		{in: "attribute:ecs.instance-type =~ t2.*", want: true},
		{in: "attribute:ecs.instance-type =~ t2", want: false},    // full match, not a prefix
		{in: "attribute:ecs.instance-type =~ micro", want: false}, // nor a substring
		{in: "attribute:ecs.instance-type =~ '(t2|t3)\\..*'", want: true},
		{in: "attribute:ecs.instance-type !~ t3.*", want: true},
		{in: "attribute:gpu exists", want: true},
		{in: `attribute:gpu == ""`, want: true},
		{in: "attribute:missing exists", want: false},
		{in: "attribute:missing !exists", want: true},
		{in: "instanceId == i-0abc", want: true},
		{in: "ec2InstanceId in [i-1, i-0abc]", want: true},
		{in: "instanceId =~ i-0.*", want: true},
		{in: "instanceId exists", want: true},
		{in: "task:group == service:web", want: true},
		{in: "task:group == service:api", want: false},
		{in: "task:group != service:api", want: true},
		{in: "task:group in [service:api, family:batch]", want: true},
		{in: "task:group =~ service:.*", want: true},
		{in: "task:group =~ service:w", want: false},
		{in: "task:group exists", want: true},
		{in: "task:group !exists", want: false},
		{in: "attribute:stack == dev or attribute:gpu exists", want: true},
		{in: "attribute:stack == prod and attribute:gpu !exists", want: false},
		{in: "not attribute:stack == dev and attribute:stack == prod", want: true},
		{in: "attribute:stack == prod or attribute:gpu exists and attribute:x exists", want: true},
		{in: "(attribute:stack == prod or attribute:gpu exists) and attribute:x exists", want: false},
		{in: "!(attribute:stack == dev || attribute:stack == qa)", want: true},
	}
	for _, tc := range testCases {
		t.Run(tc.in, func(t *testing.T) {
			x, err := ParseExpression(tc.in)
			if err != nil {
				t.Fatalf("ParseExpression(%q): %v", tc.in, err)
			}
			if got := x.Eval(target); got != tc.want {
				t.Errorf("Eval(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestExpressionEvalWithoutGroups(t *testing.T) {
	x, err := ParseExpression("task:group exists or task:group =~ .*")
	if err != nil {
		t.Fatal(err)
	}
	if x.Eval(fakeTarget{id: "i-1"}) {
		t.Error("an instance without tasks satisfies task:group exists")
	}
}

// FuzzParseExpression checks that no input panics the parser, that errors point inside
// the input, and that the canonical form of a parsed expression parses back to it. Its
// seeds are in testdata/fuzz/FuzzParseExpression.
func FuzzParseExpression(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		x, err := ParseExpression(s)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("ParseExpression(%q) error %v is %T, want *SyntaxError", s, err, err)
			}
			if se.Pos < 0 || se.Pos > len(s) {
				t.Fatalf("ParseExpression(%q) error position %d outside the input", s, se.Pos)
			}
			return
		}
		printed := x.String()
		y, err := ParseExpression(printed)
		if len(printed) > MaxExpressionLength {
			// The canonical form spells `&&` as ` and ` and may outgrow the limit that
			// the input just met; that is the only way it may fail to parse.
			var se *SyntaxError
			if err == nil || !errors.As(err, &se) || se.Pos != MaxExpressionLength {
				t.Fatalf("re-parsing the %d-character canonical form of %q: %v, want the length error", len(printed), s, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("ParseExpression(%q).String() = %q does not parse: %v", s, printed, err)
		}
		if !equalExpressions(x, y) {
			t.Fatalf("re-parsing %q (from %q) gives another expression (-first +second):\n%s", printed, s, cmp.Diff(x, y, exprOptions))
		}
		if again := y.String(); again != printed {
			t.Fatalf("String() is not stable: %q then %q", printed, again)
		}
	})
}
