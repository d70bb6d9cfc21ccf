package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	"github.com/berthdev/berth/agent/engine"
	"github.com/berthdev/berth/agent/runtime/fake"
	"github.com/berthdev/berth/internal/access"
)

// fakeAuth stands in for the apiserver (TestAgainstTheAPIServer asks the real one):
// a token "<user>-token" authenticates as user, and RBAC is the table below.
var fakeAuth = &access.Delegated{
	Authenticator: authenticator.RequestFunc(func(r *http.Request) (*authenticator.Response, bool, error) {
		h := r.Header.Get("Authorization")
		if h == "" {
			return nil, false, nil
		}
		name, ok := strings.CutSuffix(strings.TrimPrefix(h, "Bearer "), "-token")
		if !ok || !knownUsers[name] {
			return nil, false, errors.New("invalid bearer token")
		}
		return &authenticator.Response{User: &user.DefaultInfo{Name: name}}, true, nil
	}),
	Authorizer: authorizer.AuthorizerFunc(func(_ context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
		if allowed(a) {
			return authorizer.DecisionAllow, "", nil
		}
		if a.GetUser().GetName() == "broken" {
			return authorizer.DecisionNoOpinion, "", errors.New("the apiserver does not answer")
		}
		return authorizer.DecisionNoOpinion, "", nil
	}),
}

var knownUsers = map[string]bool{"reader": true, "lister": true, "getter": true, "nobody": true, "broken": true}

// allowed is fakeAuth's RBAC: reader may do anything; lister may list team's
// tasks; getter may get team/web and its logs; nobody may do nothing.
func allowed(a authorizer.Attributes) bool {
	verb := a.GetVerb()
	if a.GetSubresource() != "" {
		verb += " " + a.GetSubresource()
	}
	switch a.GetUser().GetName() {
	case "reader":
		return true
	case "lister":
		return verb == "list" && a.GetNamespace() == "team"
	case "getter":
		return (verb == "get" || verb == "get log") && a.GetNamespace() == "team" && a.GetName() == "web"
	}
	return false
}

// TestWhoMayCall: /healthz and /metrics answer anyone; /v1/tasks and /v1/logs need
// a valid token (401 with the challenge otherwise), and logs need get on tasks/log
// of that task (403 naming the caller otherwise, whether or not the task runs here).
func TestWhoMayCall(t *testing.T) {
	f := newFixture(t, nil)
	writeFile(t, f.appLog, "secret output\n")
	for _, tc := range []struct {
		name, user, path string
		wantCode         int
		wantBody         string
	}{
		{name: "healthz without a token", path: "/healthz", wantCode: 200, wantBody: "ok"},
		{name: "metrics without a token", path: "/metrics", wantCode: 200, wantBody: "berth_agent_runtime_up"},
		{name: "tasks without a token", path: "/v1/tasks", wantCode: 401, wantBody: "no credentials: present a Kubernetes bearer token"},
		{name: "logs without a token", path: "/v1/logs/team/web/app", wantCode: 401, wantBody: "no credentials"},
		{name: "logs with a bad token", user: "mallory", path: "/v1/logs/team/web/app", wantCode: 401, wantBody: "invalid bearer token"},
		{name: "logs allowed", user: "getter", path: "/v1/logs/team/web/app", wantCode: 200, wantBody: "secret output"},
		{name: "logs without tasks/log", user: "lister", path: "/v1/logs/team/web/app", wantCode: 403,
			wantBody: `user "lister" cannot get tasks/log.ecs.berth.dev web in namespace "team"`},
		{name: "logs of a task not here, denied", user: "getter", path: "/v1/logs/team/api/app", wantCode: 403,
			wantBody: `user "getter" cannot get tasks/log.ecs.berth.dev api`},
		{name: "logs of a task not here, allowed", user: "reader", path: "/v1/logs/team/api/app", wantCode: 404, wantBody: "not known to this agent"},
		{name: "the apiserver does not answer", user: "broken", path: "/v1/logs/team/web/app", wantCode: 500, wantBody: "does not answer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := f.getAs(t, tc.user, tc.path)
			if resp.StatusCode != tc.wantCode || !strings.Contains(body, tc.wantBody) {
				t.Errorf("%d %q, want %d with %q", resp.StatusCode, body, tc.wantCode, tc.wantBody)
			}
			if got, want := resp.Header.Get("WWW-Authenticate"), challengeFor(tc.wantCode); got != want {
				t.Errorf("WWW-Authenticate %q, want %q", got, want)
			}
			if tc.wantCode != 200 && strings.Contains(body, "secret output") {
				t.Errorf("a refusal carries the log: %q", body)
			}
		})
	}
}

func challengeFor(code int) string {
	if code == http.StatusUnauthorized {
		return access.Challenge
	}
	return ""
}

// TestNoAuthIsClosed: an endpoint built without delegated authentication refuses
// what reveals tasks, and still answers probes and scrapes.
func TestNoAuthIsClosed(t *testing.T) {
	s, err := New(Config{Runtime: fake.New(), StateDir: t.TempDir(), Tasks: func() []engine.Report {
		return []engine.Report{{Task: types.NamespacedName{Namespace: "team", Name: "web"}}}
	}})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{srv: httptestServer(t, s.Handler())}
	for path, want := range map[string]int{"/healthz": 200, "/metrics": 200, "/v1/tasks": 503, "/v1/logs/team/web/app": 503} {
		if resp, body := f.getAs(t, "reader", path); resp.StatusCode != want || want == 503 && strings.Contains(body, "team") {
			t.Errorf("%s: %d %q, want %d and no task", path, resp.StatusCode, body, want)
		}
	}
}

// TestVisible: /v1/tasks shows a caller the tasks it may see through the apiserver.
func TestVisible(t *testing.T) {
	report := func(ns, name string) engine.Report {
		return engine.Report{Task: types.NamespacedName{Namespace: ns, Name: name}, UID: types.UID(ns + "-" + name)}
	}
	reports := []engine.Report{report("team", "web"), report("team", "api"), report("other", "db"), report("other", "web")}
	for _, tc := range []struct {
		user    string
		want    []string
		wantErr string
	}{
		{user: "reader", want: []string{"team/web", "team/api", "other/db", "other/web"}}, // list cluster-wide
		{user: "lister", want: []string{"team/web", "team/api"}},                          // list in team
		{user: "getter", want: []string{"team/web"}},                                      // get on one task
		{user: "nobody", want: nil},
		{user: "broken", wantErr: "does not answer"},
	} {
		t.Run(tc.user, func(t *testing.T) {
			got, err := visible(context.Background(), fakeAuth, &user.DefaultInfo{Name: tc.user}, reports)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, r := range got {
				names = append(names, r.Task.String())
			}
			if diff := cmp.Diff(tc.want, names); diff != "" {
				t.Errorf("visible tasks (-want +got):\n%s", diff)
			}
		})
	}
	// Through the endpoint: the same filter, and an error refuses the whole list.
	f := newFixture(t, nil)
	f.reports = reports
	if resp, body := f.getAs(t, "lister", "/v1/tasks"); resp.StatusCode != 200 || !strings.Contains(body, `"team/api"`) || strings.Contains(body, "other/") {
		t.Errorf("lister's /v1/tasks: %d\n%s", resp.StatusCode, body)
	}
	if resp, body := f.getAs(t, "nobody", "/v1/tasks"); resp.StatusCode != 200 || strings.TrimSpace(body) != "[]" {
		t.Errorf("nobody's /v1/tasks: %d %q, want 200 []", resp.StatusCode, body)
	}
	if resp, body := f.getAs(t, "broken", "/v1/tasks"); resp.StatusCode != 500 || strings.Contains(body, "team/") {
		t.Errorf("/v1/tasks when the apiserver does not answer: %d %q, want 500 and no task", resp.StatusCode, body)
	}
}
