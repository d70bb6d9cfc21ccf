package streaming

import (
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseExecQuery(t *testing.T) {
	for _, tc := range []struct {
		name       string
		query      string
		want       execRequest
		wantErrHas string
	}{
		{name: "kubectl's parameters", query: "container=app&command=sh&command=-c&command=ls&stdin=true&stdout=true&stderr=true",
			want: execRequest{container: "app", command: []string{"sh", "-c", "ls"}, stdin: true, stdout: true, stderr: true}},
		{name: "a terminal merges stderr", query: "command=sh&stdin=1&stdout=1&stderr=1&tty=1",
			want: execRequest{command: []string{"sh"}, stdin: true, stdout: true, tty: true}},
		{name: "no command", query: "stdout=true", wantErrHas: "command: at least one"},
		{name: "empty command", query: "command=&stdout=true", wantErrHas: "command: at least one"},
		{name: "no stream", query: "command=ls", wantErrHas: "at least one of stdin, stdout and stderr"},
		{name: "bad bool", query: "command=ls&stdout=yes", wantErrHas: `stdout must be true or false`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, _ := url.ParseQuery(tc.query)
			got, err := parseExecQuery(q)
			if tc.wantErrHas != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErrHas) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErrHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(execRequest{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestExpectedStreams(t *testing.T) {
	for _, tc := range []struct {
		r    execRequest
		want int
	}{
		{execRequest{stdout: true}, 2},
		{execRequest{stdin: true, stdout: true, stderr: true}, 4},
		{execRequest{stdin: true, stdout: true, tty: true}, 4}, // error, stdin, stdout, resize
	} {
		if got := expectedStreams(tc.r); got != tc.want {
			t.Errorf("expectedStreams(%+v) = %d, want %d", tc.r, got, tc.want)
		}
	}
}
