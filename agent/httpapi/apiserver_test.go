package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/berthdev/berth/agent/engine"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/access"
	"github.com/berthdev/berth/test/testenv"
)

// TestAgainstTheAPIServer: the endpoint with the agent's real Delegated, asking a
// real apiserver about ServiceAccount tokens (TokenReview) and RBAC
// (SubjectAccessReview): no token or a forged one is 401; a ServiceAccount without
// tasks/log is refused the log, by name; one bound to get tasks/log in the
// namespace reads it, and /v1/tasks shows it that namespace's task alone; the
// cluster-wide task reader sees every task; probes and scrapes need nothing.
func TestAgainstTheAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("needs kube-apiserver and etcd")
	}
	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	auth, err := access.NewDelegated(ctx, kubernetes.NewForConfigOrDie(env.Config))
	if err != nil {
		t.Fatal(err)
	}
	ns, other := env.Namespace(t), env.Namespace(t)
	f := newFixtureIn(t, nil, ns, auth)
	f.reports = append(f.reports, engine.Report{Task: types.NamespacedName{Namespace: other, Name: "db"}, UID: "uid-9", LastStatus: ecsv1alpha1.TaskRunning})
	writeFile(t, f.appLog, "first\nsecond\n")

	stranger := env.ServiceAccountToken(t, ns, "stranger")
	reader := env.ServiceAccountToken(t, ns, "log-reader")
	env.Grant(t, ns, "log-reader", testenv.ServiceAccountUser(ns, "log-reader"),
		rbacv1.PolicyRule{APIGroups: []string{"ecs.berth.dev"}, Resources: []string{"tasks/log", "tasks"}, Verbs: []string{"get"}})
	everything := env.TaskReaderToken(t)

	logs := "/v1/logs/" + ns + "/web/app?tail=1"
	for _, tc := range []struct {
		name, token, path string
		wantCode          int
		wantBody          string
	}{
		{name: "healthz, no token", path: "/healthz", wantCode: 200, wantBody: "ok"},
		{name: "metrics, no token", path: "/metrics", wantCode: 200, wantBody: "berth_agent_runtime_up"},
		{name: "logs, no token", path: logs, wantCode: 401, wantBody: "no credentials"},
		{name: "tasks, no token", path: "/v1/tasks", wantCode: 401, wantBody: "no credentials"},
		{name: "logs, forged token", token: "eyJhbGciOiJSUzI1NiJ9.e30.c2ln", path: logs, wantCode: 401, wantBody: "authentication failed"},
		{name: "logs, no tasks/log", token: stranger, path: logs, wantCode: 403,
			wantBody: `user "system:serviceaccount:` + ns + `:stranger" cannot get tasks/log.ecs.berth.dev web in namespace "` + ns + `"`},
		{name: "logs, allowed", token: reader, path: logs, wantCode: 200, wantBody: "second\n"},
		{name: "logs of another namespace", token: reader, path: "/v1/logs/" + other + "/db/app", wantCode: 403, wantBody: "log-reader"},
		{name: "logs, cluster-wide reader", token: everything, path: logs, wantCode: 200, wantBody: "second\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := f.getWith(t, tc.token, tc.path)
			if resp.StatusCode != tc.wantCode || !strings.Contains(body, tc.wantBody) {
				t.Errorf("%d %q, want %d with %q", resp.StatusCode, body, tc.wantCode, tc.wantBody)
			}
			if tc.wantCode == http.StatusOK && strings.HasPrefix(tc.path, "/v1/logs") && body != tc.wantBody {
				t.Errorf("log %q, want %q", body, tc.wantBody)
			}
			if got, want := resp.Header.Get("WWW-Authenticate"), challengeFor(tc.wantCode); got != want {
				t.Errorf("WWW-Authenticate %q, want %q", got, want)
			}
		})
	}

	for _, tc := range []struct {
		name, token string
		want        []string
	}{
		{name: "no rights", token: stranger, want: nil},
		{name: "get in one namespace", token: reader, want: []string{ns + "/web"}},
		{name: "list everywhere", token: everything, want: []string{ns + "/web", other + "/db"}},
	} {
		t.Run("tasks, "+tc.name, func(t *testing.T) {
			resp, body := f.getWith(t, tc.token, "/v1/tasks")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%d %q", resp.StatusCode, body)
			}
			var got []Task
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			var names []string
			for _, task := range got {
				if !seen[task.Task] {
					names = append(names, task.Task)
				}
				seen[task.Task] = true
			}
			if strings.Join(names, " ") != strings.Join(tc.want, " ") {
				t.Errorf("tasks %v, want %v", names, tc.want)
			}
		})
	}
}
