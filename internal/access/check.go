package access

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
)

// Challenge is the WWW-Authenticate header of a 401: the agent's servers take
// Kubernetes bearer tokens (RFC 6750).
const Challenge = `Bearer realm="berth-agent"`

// errNoDelegated is the refusal of an agent that could not set up delegated
// authentication: it serves nothing that needs a caller rather than serve it to all.
var errNoDelegated = &apierrors.StatusError{ErrStatus: metav1.Status{
	Status: metav1.StatusFailure, Code: http.StatusServiceUnavailable, Reason: metav1.StatusReasonServiceUnavailable,
	Message: "this agent cannot check who is calling (it has no authentication by the apiserver): it serves no task's data; see its log",
}}

// Authenticate returns the caller of r, or its refusal: 401 without valid
// credentials, 503 when d is nil. A client certificate counts only on a TLS
// connection (the streaming server's).
func (d *Delegated) Authenticate(r *http.Request) (user.Info, *apierrors.StatusError) {
	if d == nil || d.Authenticator == nil {
		return nil, errNoDelegated
	}
	resp, ok, err := d.Authenticator.AuthenticateRequest(r)
	switch {
	case err != nil:
		return nil, apierrors.NewUnauthorized("authentication failed: " + err.Error())
	case !ok && r.TLS != nil:
		return nil, apierrors.NewUnauthorized("no credentials: present a bearer token or a client certificate of the cluster")
	case !ok:
		return nil, apierrors.NewUnauthorized("no credentials: present a Kubernetes bearer token (Authorization: Bearer <token>)")
	}
	return resp.User, nil
}

// Allowed asks the apiserver whether a is allowed: false with its reason when it
// is not, an error when it could not be asked.
func (d *Delegated) Allowed(ctx context.Context, a authorizer.Attributes) (bool, string, error) {
	if d == nil || d.Authorizer == nil {
		return false, "", errNoDelegated
	}
	decision, reason, err := d.Authorizer.Authorize(ctx, a)
	if decision == authorizer.DecisionAllow {
		return true, reason, nil
	}
	if err != nil {
		return false, reason, fmt.Errorf("authorizing: %w", err)
	}
	return false, reason, nil
}

// Authorize returns nil when a is allowed, else its refusal: 403 naming who may
// not do what, 500 when the apiserver could not be asked, 503 when d is nil.
func (d *Delegated) Authorize(ctx context.Context, a authorizer.Attributes) *apierrors.StatusError {
	ok, reason, err := d.Allowed(ctx, a)
	var serr *apierrors.StatusError
	switch {
	case errors.As(err, &serr):
		return serr
	case err != nil:
		return apierrors.NewInternalError(err)
	case !ok:
		return Forbidden(a, reason)
	}
	return nil
}

// Check authenticates r's caller and authorizes attrs for it. On refusal the user
// is set only when it was authenticated (RBAC denied it, or the apiserver could
// not be asked).
func (d *Delegated) Check(r *http.Request, attrs func(user.Info) authorizer.Attributes) (user.Info, *apierrors.StatusError) {
	u, serr := d.Authenticate(r)
	if serr != nil {
		return nil, serr
	}
	return u, d.Authorize(r.Context(), attrs(u))
}

// Forbidden names who may not do what, as the apiserver's own 403s do.
func Forbidden(a authorizer.Attributes, reason string) *apierrors.StatusError {
	resource := a.GetResource()
	if a.GetSubresource() != "" {
		resource += "/" + a.GetSubresource()
	}
	msg := fmt.Sprintf("user %q cannot %s %s.%s", a.GetUser().GetName(), a.GetVerb(), resource, a.GetAPIGroup())
	if a.GetName() != "" {
		msg += " " + a.GetName()
	}
	if a.GetNamespace() != "" {
		msg += fmt.Sprintf(" in namespace %q", a.GetNamespace())
	} else {
		msg += " at the cluster scope"
	}
	if reason != "" {
		msg += ": " + reason
	}
	return apierrors.NewForbidden(schema.GroupResource{Group: a.GetAPIGroup(), Resource: resource}, a.GetName(), errors.New(msg))
}

// WriteStatus answers with a metav1.Status, as the apiserver does, so that clients
// decode it into an apierrors.StatusError; a 401 carries the challenge.
func WriteStatus(w http.ResponseWriter, st *metav1.Status) {
	st.Kind, st.APIVersion = "Status", "v1"
	if st.Status == "" {
		st.Status = metav1.StatusFailure
	}
	data, _ := json.Marshal(st)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	challenge(w, st.Code)
	w.WriteHeader(int(st.Code))
	_, _ = w.Write(data)
}

// WriteText answers with the refusal's message as plain text, for curl; a 401
// carries the challenge.
func WriteText(w http.ResponseWriter, serr *apierrors.StatusError) {
	challenge(w, serr.ErrStatus.Code)
	http.Error(w, serr.ErrStatus.Message, int(serr.ErrStatus.Code))
}

func challenge(w http.ResponseWriter, code int32) {
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", Challenge)
	}
}
