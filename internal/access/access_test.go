package access

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
)

// TestAttributes: what the SubjectAccessReviews ask, which RBAC rules must match.
func TestAttributes(t *testing.T) {
	u := &user.DefaultInfo{Name: "alice"}
	record := func(verb, ns, name, sub string) authorizer.AttributesRecord {
		return authorizer.AttributesRecord{User: u, Verb: verb, Namespace: ns, APIGroup: "ecs.berth.dev", APIVersion: "v1alpha1",
			Resource: "tasks", Subresource: sub, Name: name, ResourceRequest: true}
	}
	for _, tc := range []struct {
		name string
		got  authorizer.Attributes
		want authorizer.AttributesRecord
	}{
		{"exec", ExecAttributes(u, "ns", "web-1"), record("exec", "ns", "web-1", "")},
		{"logs", LogAttributes(u, "ns", "web-1"), record("get", "ns", "web-1", "log")},
		{"get a task", GetTaskAttributes(u, "ns", "web-1"), record("get", "ns", "web-1", "")},
		{"list a namespace's tasks", ListTasksAttributes(u, "ns"), record("list", "ns", "", "")},
		{"list every task", ListTasksAttributes(u, ""), record("list", "", "", "")},
	} {
		if diff := cmp.Diff(tc.want, tc.got); diff != "" {
			t.Errorf("%s attributes (-want +got):\n%s", tc.name, diff)
		}
	}
}

// fakeAuthn knows one token, of alice; the apiserver is down for "unreachable".
var fakeAuthn = authenticator.RequestFunc(func(r *http.Request) (*authenticator.Response, bool, error) {
	switch r.Header.Get("Authorization") {
	case "":
		return nil, false, nil
	case "Bearer alice-token":
		return &authenticator.Response{User: &user.DefaultInfo{Name: "alice"}}, true, nil
	default:
		return nil, false, errors.New("invalid bearer token")
	}
})

// fakeAuthz lets alice read tasks/log in team; the apiserver cannot be asked about
// namespace down.
var fakeAuthz = authorizer.AuthorizerFunc(func(_ context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
	switch {
	case a.GetNamespace() == "down":
		return authorizer.DecisionNoOpinion, "", errors.New("connection refused")
	case a.GetUser().GetName() == "alice" && a.GetNamespace() == "team" && a.GetSubresource() == "log":
		return authorizer.DecisionAllow, "", nil
	}
	return authorizer.DecisionNoOpinion, "no RBAC rule matched", nil
})

// TestCheck: who gets which answer, and what it says.
func TestCheck(t *testing.T) {
	d := &Delegated{Authenticator: fakeAuthn, Authorizer: fakeAuthz}
	for _, tc := range []struct {
		name      string
		auth      *Delegated
		header    string
		tls       bool
		namespace string
		wantCode  int32
		wantUser  string
		wantMsg   string
	}{
		{name: "allowed", auth: d, header: "Bearer alice-token", namespace: "team", wantUser: "alice"},
		{name: "no credentials", auth: d, namespace: "team", wantCode: 401, wantMsg: "no credentials: present a Kubernetes bearer token"},
		{name: "no credentials over TLS", auth: d, tls: true, namespace: "team", wantCode: 401, wantMsg: "or a client certificate"},
		{name: "invalid token", auth: d, header: "Bearer stolen", namespace: "team", wantCode: 401, wantMsg: "authentication failed: invalid bearer token"},
		{name: "denied", auth: d, header: "Bearer alice-token", namespace: "other", wantCode: 403, wantUser: "alice",
			wantMsg: `user "alice" cannot get tasks/log.ecs.berth.dev web-1 in namespace "other": no RBAC rule matched`},
		{name: "apiserver down", auth: d, header: "Bearer alice-token", namespace: "down", wantCode: 500, wantUser: "alice", wantMsg: "connection refused"},
		{name: "no delegated authentication", header: "Bearer alice-token", namespace: "team", wantCode: 503, wantMsg: "cannot check who is calling"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/v1/logs/x/web-1/app", nil)
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			if tc.tls {
				r.TLS = &tls.ConnectionState{}
			}
			u, serr := tc.auth.Check(r, func(u user.Info) authorizer.Attributes { return LogAttributes(u, tc.namespace, "web-1") })
			if got := userName(u); got != tc.wantUser {
				t.Errorf("user %q, want %q", got, tc.wantUser)
			}
			if tc.wantCode == 0 {
				if serr != nil {
					t.Fatalf("refused: %v", serr)
				}
				return
			}
			if serr == nil || serr.ErrStatus.Code != tc.wantCode || !strings.Contains(serr.Error(), tc.wantMsg) {
				t.Fatalf("refusal %v, want %d with %q", serr, tc.wantCode, tc.wantMsg)
			}
		})
	}
}

func userName(u user.Info) string {
	if u == nil {
		return ""
	}
	return u.GetName()
}

// TestForbiddenAtClusterScope: a cluster-wide question says so.
func TestForbiddenAtClusterScope(t *testing.T) {
	msg := Forbidden(ListTasksAttributes(&user.DefaultInfo{Name: "bob"}, ""), "").Error()
	if want := `user "bob" cannot list tasks.ecs.berth.dev at the cluster scope`; !strings.Contains(msg, want) {
		t.Errorf("message %q lacks %q", msg, want)
	}
}

// TestWrite: a 401 challenges for a bearer token in both forms; other refusals
// do not.
func TestWrite(t *testing.T) {
	for _, tc := range []struct {
		name          string
		err           *apierrors.StatusError
		wantChallenge string
	}{
		{name: "401", err: apierrors.NewUnauthorized("no credentials"), wantChallenge: Challenge},
		{name: "403", err: Forbidden(LogAttributes(&user.DefaultInfo{Name: "bob"}, "team", "web-1"), "")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := httptest.NewRecorder()
			WriteText(text, tc.err)
			st := httptest.NewRecorder()
			status := tc.err.ErrStatus
			WriteStatus(st, &status)
			for _, rec := range []*httptest.ResponseRecorder{text, st} {
				if rec.Code != int(tc.err.ErrStatus.Code) || rec.Header().Get("WWW-Authenticate") != tc.wantChallenge {
					t.Errorf("%d WWW-Authenticate %q, want %d %q", rec.Code, rec.Header().Get("WWW-Authenticate"), tc.err.ErrStatus.Code, tc.wantChallenge)
				}
			}
			if ct := text.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") || text.Body.String() != tc.err.ErrStatus.Message+"\n" {
				t.Errorf("text answer %q: %q, want the message", ct, text.Body.String())
			}
			var got metav1.Status
			if err := json.Unmarshal(st.Body.Bytes(), &got); err != nil || st.Header().Get("Content-Type") != "application/json" ||
				got.Kind != "Status" || got.Message != tc.err.ErrStatus.Message || got.Code != tc.err.ErrStatus.Code {
				t.Errorf("Status answer %v: %s", err, st.Body.String())
			}
		})
	}
}
