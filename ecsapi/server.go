// Package ecsapi is `berth api`: Amazon ECS's API (the awsJson1_1 protocol the aws
// CLI and the AWS SDKs speak) served over Berth's custom resources. The server is
// stateless: every call is authenticated (SigV4, ecsapi/auth), then translated into
// reads and writes of Clusters, TaskDefinitions, Services, Tasks and
// ContainerInstances through the apiserver, as the Kubernetes identity the credential
// names (impersonation), so RBAC and the admission policies decide as they do for
// kubectl, and any number of replicas can serve.
//
// One file per kind of resource holds its operations (clusters.go, taskdefs.go,
// tasks.go, services.go, instances.go, attributes.go, tags.go); ops.go is the table
// of actions; arns.go and names.go are the two translations every operation shares.
// Application Auto Scaling's actions for ECS services, served on the same endpoint,
// are in autoscaling*.go; STS's GetCallerIdentity in sts.go.
package ecsapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berthdev/berth/ecsapi/auth"
	"github.com/berthdev/berth/ecsapi/wire"
	"github.com/berthdev/berth/internal/kube"
)

// TargetPrefix is the X-Amz-Target prefix of ECS's actions.
const TargetPrefix = "AmazonEC2ContainerServiceV20141113."

// maxBody bounds a request body: RegisterTaskDefinition, the largest, is far below.
const maxBody = 4 << 20

// Config is what the server answers as.
type Config struct {
	// Region and AccountID go into every ARN; Region is also the only signing region
	// accepted.
	Region    string
	AccountID string
}

// Server serves the ECS API.
type Server struct {
	cfg Config
	// verifier is nil with --auth=none.
	verifier *auth.Verifier
	// anonymous is the identity of every call with --auth=none: the server's own
	// client, in one namespace.
	anonymous *auth.Credential
	// self is the server's own client: it writes what no user owns (the INACTIVE
	// records of deleted services) after the user's own call was allowed.
	self   client.Client
	base   *rest.Config
	mapper meta.RESTMapper
	log    logr.Logger
	now    func() time.Time

	metrics *metrics

	mu      sync.Mutex
	clients map[string]client.Client
}

// MetricsHandler serves the server's Prometheus metrics.
func (s *Server) MetricsHandler() http.Handler { return s.metrics.Handler() }

// Options build a Server.
type Options struct {
	Config
	// RESTConfig is the server's own apiserver configuration; calls impersonate the
	// credential's identity on top of it.
	RESTConfig *rest.Config
	// Self is a client with the server's own identity.
	Self client.Client
	// Mapper is shared by every impersonating client.
	Mapper meta.RESTMapper
	// Lookup finds credentials; nil means --auth=none, every call acting as the
	// server itself in AnonymousNamespace.
	Lookup             auth.Lookup
	AnonymousNamespace string
	Log                logr.Logger
}

// New returns a Server.
func New(o Options) *Server {
	s := &Server{cfg: o.Config, self: o.Self, base: o.RESTConfig, mapper: o.Mapper, log: o.Log,
		now: time.Now, clients: map[string]client.Client{}, metrics: newMetrics()}
	if o.Lookup != nil {
		s.verifier = &auth.Verifier{Region: o.Region, Lookup: o.Lookup}
	} else {
		s.anonymous = &auth.Credential{Namespace: o.AnonymousNamespace, User: "anonymous"}
	}
	return s
}

// Call is one authenticated call: what an operation needs.
type Call struct {
	// Client acts as the caller (impersonation); Self as the server.
	Client client.Client
	Self   client.Client
	// Namespace is the caller's account.
	Namespace string
	Identity  *auth.Credential
	ARN       ARNs
	Action    string
	Log       logr.Logger
	Now       time.Time
	// api is the service called: its codec and error types.
	api *jsonAPI
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	requestID := wire.NewRequestID()
	start := s.now()
	rec := &recorder{ResponseWriter: w}
	w = rec
	defer func() { s.metrics.observe(rec.action, rec.code(), s.now().Sub(start)) }()
	log := s.log.WithValues("requestID", requestID)
	if r.Method != http.MethodPost {
		wire.ECS.WriteError(w, requestID, wire.Errorf(wire.UnknownOperationException, "ECS's API takes POST /, not %s", r.Method))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		wire.ECS.WriteError(w, requestID, wire.Errorf(wire.SerializationException, "request body unreadable or larger than %d bytes", maxBody))
		return
	}
	if isSTS(r) {
		s.serveSTS(w, r, body, requestID, log)
		return
	}
	api, action := apiOf(r.Header.Get("X-Amz-Target"))
	if api == nil {
		wire.ECS.WriteError(w, requestID, wire.Errorf(wire.UnknownOperationException, "X-Amz-Target must be %s<Action> or %s<Action>", TargetPrefix, AutoScalingTargetPrefix))
		return
	}
	rec.action = api.metricPrefix + action
	s.serveJSON(w, r, api, action, body, requestID, log.WithValues("action", rec.action))
}

// serveJSON authenticates and serves one call of an awsJson1_1 service.
func (s *Server) serveJSON(w http.ResponseWriter, r *http.Request, api *jsonAPI, action string, body []byte, requestID string, log logr.Logger) {
	start := s.now()
	cred, err := s.authenticate(r, body, api.scope)
	if err != nil {
		e := api.wire.AsError(err)
		log.Info("request refused", "errorType", e.Type, "reason", e.Message, "remote", r.RemoteAddr)
		api.wire.WriteError(w, requestID, e)
		return
	}
	log = log.WithValues("namespace", cred.Namespace, "user", cred.User)
	out, err := s.dispatch(r.Context(), api, action, body, cred, log)
	if err != nil {
		e := api.wire.AsError(err)
		if e.Type == api.wire.Server {
			log.Error(err, "call failed")
		} else {
			log.V(1).Info("call refused", "errorType", e.Type, "reason", e.Message)
		}
		api.wire.WriteError(w, requestID, e)
		return
	}
	log.V(1).Info("call served", "duration", s.now().Sub(start))
	api.wire.WriteOutput(w, requestID, out)
}

func (s *Server) authenticate(r *http.Request, body []byte, service string) (*auth.Credential, error) {
	if s.verifier == nil {
		return s.anonymous, nil
	}
	return s.verifier.Verify(r, body, service)
}

func (s *Server) dispatch(ctx context.Context, api *jsonAPI, action string, body []byte, cred *auth.Credential, log logr.Logger) (any, error) {
	h, ok := api.operations[action]
	if !ok {
		if api.known[action] && action == "ExecuteCommand" {
			return nil, wire.Errorf(api.wire.Unsupported, "ExecuteCommand is not supported by Berth's ECS API, which has no Session Manager: "+
				"run `berth exec TASK -- COMMAND` (docs/exec.md) for tasks started with enableExecuteCommand")
		}
		if api.known[action] {
			return nil, wire.Errorf(api.wire.Unsupported, "%s is not supported by Berth (docs/ecs-api.md lists the actions it serves)", action)
		}
		return nil, wire.Errorf(wire.UnknownOperationException, "%s is not an %s action", action, api.wire.Name)
	}
	c, err := s.clientFor(cred)
	if err != nil {
		return nil, err
	}
	call := &Call{Client: c, Self: s.self, Namespace: cred.Namespace, Identity: cred,
		ARN: ARNs{Region: s.cfg.Region, Account: s.cfg.AccountID}, Action: action, Log: log, Now: s.now(), api: api}
	out, err := h(ctx, call, body)
	return out, kubeError(call, err)
}

// clientFor returns a client that impersonates cred's identity, one per identity,
// sharing the RESTMapper.
func (s *Server) clientFor(cred *auth.Credential) (client.Client, error) {
	if s.verifier == nil {
		return s.self, nil
	}
	key := cred.User + "\x00" + strings.Join(cred.Groups, ",")
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.clients[key]; ok {
		return c, nil
	}
	cfg := rest.CopyConfig(s.base)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: cred.User, Groups: cred.Groups}
	c, err := client.New(cfg, client.Options{Scheme: kube.Scheme, Mapper: s.mapper})
	if err != nil {
		return nil, fmt.Errorf("client for %s: %w", cred.User, err)
	}
	s.clients[key] = c
	return c, nil
}

// kubeError turns the apiserver's answers into the service's: a denial is
// AccessDeniedException naming the action, an admission or schema refusal is the
// invalid-parameter error with the apiserver's message (which names the field).
func kubeError(c *Call, err error) error {
	if err == nil {
		return nil
	}
	var e *wire.Error
	if errors.As(err, &e) {
		return e
	}
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return err
	}
	switch {
	case apierrors.IsForbidden(err):
		return wire.Errorf(wire.AccessDeniedException, "User: %s is not authorized to perform: %s:%s (%s)",
			c.ARN.User(c.Identity.User), c.api.scope, c.Action, status.Status().Message)
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err):
		return wire.Errorf(c.api.wire.Invalid, "%s", status.Status().Message)
	case apierrors.IsConflict(err), apierrors.IsAlreadyExists(err):
		return wire.Errorf(c.api.wire.Conflict, "%s; retry the call", status.Status().Message)
	case apierrors.IsNotFound(err):
		return wire.Errorf(c.api.wire.NotFound, "%s", status.Status().Message)
	}
	return err
}

// recorder remembers what was answered, for the metrics.
type recorder struct {
	http.ResponseWriter
	action string
	status int
}

func (r *recorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}

func (r *recorder) code() string {
	if r.status == 0 || r.status == http.StatusOK {
		return "OK"
	}
	if t := r.Header().Get("x-amzn-ErrorType"); t != "" {
		return t
	}
	return http.StatusText(r.status)
}
