package console

import (
	"errors"
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// wantField checks that err is a fieldError naming field (or nil when field is "").
func wantField(t *testing.T, err error, field string) {
	t.Helper()
	var fe *fieldError
	switch {
	case field == "" && err != nil:
		t.Errorf("unexpected error %v", err)
	case field != "" && (!errors.As(err, &fe) || fe.Field != field):
		t.Errorf("error %v, want one naming field %s", err, field)
	}
}

func TestParseDesiredCount(t *testing.T) {
	for _, tc := range []struct {
		in        string
		want      int32
		wantField string
	}{
		{"5", 5, ""},
		{" 0 ", 0, ""},
		{"100000", 100000, ""},
		{"", 0, "desiredCount"},
		{"five", 0, "desiredCount"},
		{"2.5", 0, "desiredCount"},
		{"-1", 0, "desiredCount"},
		{"100001", 0, "desiredCount"},
		{"99999999999", 0, "desiredCount"},
	} {
		got, err := parseDesiredCount(url.Values{"desiredCount": {tc.in}})
		wantField(t, err, tc.wantField)
		if err == nil && got != tc.want {
			t.Errorf("parseDesiredCount(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestParseDraining(t *testing.T) {
	for _, tc := range []struct {
		in        string
		want      bool
		wantField string
	}{
		{"true", true, ""},
		{"false", false, ""},
		{"", false, "draining"},
		{"yes", false, "draining"},
	} {
		got, err := parseDraining(url.Values{"draining": {tc.in}})
		wantField(t, err, tc.wantField)
		if err == nil && got != tc.want {
			t.Errorf("parseDraining(%q) = %v", tc.in, got)
		}
	}
}

func TestPickRevisions(t *testing.T) {
	kept := []int32{5, 3, 1} // newest first, as status.revisions
	for _, tc := range []struct {
		name         string
		q            url.Values
		wantA, wantB int32
		wantField    string
	}{
		{"default is previous and latest", url.Values{}, 3, 5, ""},
		{"explicit", url.Values{"a": {"1"}, "b": {"3"}}, 1, 3, ""},
		{"a only", url.Values{"a": {"1"}}, 1, 5, ""},
		{"not kept", url.Values{"a": {"2"}}, 0, 0, "a"},
		{"not a number", url.Values{"b": {"latest"}}, 0, 0, "b"},
		{"zero", url.Values{"b": {"0"}}, 0, 0, "b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b, err := pickRevisions(tc.q, kept)
			wantField(t, err, tc.wantField)
			if err == nil && (a != tc.wantA || b != tc.wantB) {
				t.Errorf("got %d, %d; want %d, %d", a, b, tc.wantA, tc.wantB)
			}
		})
	}
	if a, b, err := pickRevisions(url.Values{}, []int32{1}); err != nil || a != 1 || b != 1 {
		t.Errorf("one revision: %d, %d, %v; want it against itself", a, b, err)
	}
	_, _, err := pickRevisions(url.Values{}, nil)
	wantField(t, err, "b")
}

func TestSplitCommand(t *testing.T) {
	for _, tc := range []struct {
		in        string
		want      []string
		wantField string
	}{
		{"ls -l /", []string{"ls", "-l", "/"}, ""},
		{"  echo   hi  ", []string{"echo", "hi"}, ""},
		{`sh -c 'echo $HOME; exit 3'`, []string{"sh", "-c", "echo $HOME; exit 3"}, ""},
		{`echo "a \"b\" c"`, []string{"echo", `a "b" c`}, ""},
		{`echo ''`, []string{"echo", ""}, ""},
		{"", nil, "command"},
		{"   ", nil, "command"},
		{`echo 'open`, nil, "command"},
	} {
		got, err := splitCommand(tc.in)
		wantField(t, err, tc.wantField)
		if diff := cmp.Diff(tc.want, got); err == nil && diff != "" {
			t.Errorf("splitCommand(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

func TestPickContainer(t *testing.T) {
	for _, tc := range []struct {
		name       string
		in         string
		containers []string
		want       string
		wantField  string
	}{
		{"default is the first", "", []string{"web", "sidecar"}, "web", ""},
		{"named", "sidecar", []string{"web", "sidecar"}, "sidecar", ""},
		{"unknown", "db", []string{"web"}, "", "container"},
		{"none reported, named", "web", nil, "web", ""},
		{"none reported, unnamed", "", nil, "", "container"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := pickContainer(tc.in, tc.containers)
			wantField(t, err, tc.wantField)
			if err == nil && got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
