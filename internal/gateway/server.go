package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/access"
	"github.com/berthdev/berth/internal/agentidentity"
	"github.com/berthdev/berth/internal/revision"
	"github.com/berthdev/berth/internal/taskrules"
)

// Server answers agents' reads. Build it with NewServer.
type Server struct {
	auth *access.Delegated
	// cache is the manager's informer cache (tasks); live reads the apiserver
	// (Secrets, ConfigMaps, and a task the cache has not seen yet).
	cache, live   client.Reader
	revisions     *revision.Resolver
	daemonSetUser string
	proxy         http.Handler
	// liveTasks bounds the live task reads callers can cause by naming tasks the
	// cache does not show as theirs.
	liveTasks *rate.Limiter
	log       logr.Logger
	mux       *http.ServeMux
}

// Config is what a Server needs.
type Config struct {
	// Auth authenticates callers (its authorizer is not used: an agent's reads are
	// decided by what its instance runs, not by RBAC).
	Auth *access.Delegated
	// Cache reads tasks, TaskDefinitions and ControllerRevisions; Live reads Secrets
	// and ConfigMaps. Both with the manager's identity.
	Cache, Live client.Reader
	Revisions   *revision.Resolver
	// APIServer is the manager's connection, which list and watch requests are
	// passed to.
	APIServer *rest.Config
	// DaemonSetUser is the chart's agent DaemonSet account
	// (agentidentity.DefaultDaemonSetUser when empty).
	DaemonSetUser string
	Log           logr.Logger
}

// NewServer builds the gateway's handler.
func NewServer(cfg Config) (*Server, error) {
	target, err := url.Parse(cfg.APIServer.Host)
	if err != nil || target.Host == "" {
		// rest.Config.Host may lack a scheme ("127.0.0.1:6443").
		if target, err = url.Parse("https://" + cfg.APIServer.Host); err != nil {
			return nil, fmt.Errorf("the apiserver's address %q: %w", cfg.APIServer.Host, err)
		}
	}
	transport, err := rest.TransportFor(cfg.APIServer)
	if err != nil {
		return nil, err
	}
	if cfg.DaemonSetUser == "" {
		cfg.DaemonSetUser = agentidentity.DefaultDaemonSetUser
	}
	s := &Server{
		auth: cfg.Auth, cache: cfg.Cache, live: cfg.Live, revisions: cfg.Revisions, daemonSetUser: cfg.DaemonSetUser,
		liveTasks: rate.NewLimiter(20, 40), log: cfg.Log, mux: http.NewServeMux(),
		proxy: &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(target)
				// Nothing of the caller's but what the response's encoding needs: not
				// its credentials, not an Impersonate-* header.
				accept := pr.In.Header.Get("Accept")
				pr.Out.Header = http.Header{}
				if accept != "" {
					pr.Out.Header.Set("Accept", accept)
				}
				pr.Out.Header.Set("User-Agent", "berth-manager-gateway")
			},
			Transport: transport,
			// Watches stream: pass each event on at once.
			FlushInterval: -1,
			ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
				writeStatus(w, apierrors.NewServiceUnavailable("the manager could not reach the apiserver: "+err.Error()))
			},
		},
	}
	s.mux.HandleFunc(secretRoute, counted("secrets", s.object(taskrules.KindSecret)))
	s.mux.HandleFunc(configMapRoute, counted("configmaps", s.object(taskrules.KindConfigMap)))
	s.mux.HandleFunc(tasksRoute, counted("tasks", s.passList(taskList)))
	s.mux.HandleFunc(taskDefinitionsRoute, counted("taskdefinitions", s.passList(anyList)))
	s.mux.HandleFunc(clustersRoute, counted("clusters", s.passList(clusterList)))
	s.mux.HandleFunc(revisionsRoute, counted("controllerrevisions", s.passList(revisionList)))
	s.mux.HandleFunc("/", counted("other", func(w http.ResponseWriter, r *http.Request) {
		writeStatus(w, apierrors.NewNotFound(schema.GroupResource{Resource: "path"}, r.URL.Path))
	}))
	return s, nil
}

// ServeHTTP serves the gateway's routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// caller authenticates r and returns the instance its identity acts for.
func (s *Server) caller(r *http.Request) (string, *apierrors.StatusError) {
	u, serr := s.auth.Authenticate(r)
	if serr != nil {
		return "", serr
	}
	if !agentidentity.IsAgent(u, s.daemonSetUser) {
		return "", forbidden(fmt.Sprintf("%s is not a berth agent identity: the gateway serves agents only", u.GetName()))
	}
	inst, err := agentidentity.Instance(u, s.daemonSetUser)
	if err != nil {
		return "", forbidden(err.Error())
	}
	return inst, nil
}

// passList passes a list or watch to the apiserver when check allows it for the
// caller's instance.
func (s *Server) passList(check func(instance string, q url.Values) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		inst, serr := s.caller(r)
		if serr != nil {
			writeStatus(w, serr)
			return
		}
		if err := selectors(r.URL.Query(), inst, check); err != nil {
			s.log.V(1).Info("refused a list", "instance", inst, "path", r.URL.Path, "reason", err.Error())
			writeStatus(w, forbidden(fmt.Sprintf("berth agent %s may not list %s: %v", inst, r.URL.Path, err)))
			return
		}
		s.proxy.ServeHTTP(w, r)
	}
}

// object serves a Secret or ConfigMap that a task bound to the caller reads.
func (s *Server) object(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		inst, serr := s.caller(r)
		if serr != nil {
			writeStatus(w, serr)
			return
		}
		ns, task, name := r.PathValue("namespace"), r.PathValue("task"), r.PathValue("name")
		if err := s.mayRead(r.Context(), inst, ns, task, kind, name); err != nil {
			st := asStatus(err)
			// Rare in normal operation (an agent asks only for what its tasks name):
			// worth an operator's look.
			s.log.Info("refused a read", "instance", inst, "namespace", ns, "task", task, "kind", kind, "name", name, "reason", st.ErrStatus.Message)
			writeStatus(w, st)
			return
		}
		obj, err := s.read(r.Context(), kind, ns, name)
		if err != nil {
			writeStatus(w, asStatus(err))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(obj)
	}
}

// mayRead is nil when task ns/task is bound to instance, is not stopping and reads
// kind/name.
func (s *Server) mayRead(ctx context.Context, instance, ns, taskName, kind, name string) error {
	deny := func(why string) error {
		return forbidden(fmt.Sprintf("berth agent %s may not read %s %s/%s: %s", instance, kind, ns, name, why))
	}
	t, err := s.task(ctx, instance, ns, taskName)
	if err != nil {
		return err
	}
	switch {
	case t == nil:
		return deny(fmt.Sprintf("there is no task %s", taskName))
	case t.Spec.ContainerInstance != instance:
		return deny(fmt.Sprintf("task %s is not bound to it", taskName))
	case t.DeletionTimestamp != nil || t.Spec.DesiredStatus == ecsv1alpha1.DesiredStopped:
		return deny(fmt.Sprintf("task %s is stopping", taskName))
	}
	ref, err := revision.TaskRef(t)
	if err != nil {
		return deny(fmt.Sprintf("task %s: spec.taskDefinition: %v", taskName, err))
	}
	res, err := s.revisions.Resolve(ctx, ns, ref)
	if err != nil {
		return apierrors.NewServiceUnavailable(fmt.Sprintf("task %s's revision %s: %v", taskName, ref, err))
	}
	if !taskrules.Reads(res.Spec, kind, name) {
		return deny(fmt.Sprintf("task %s (%s) does not reference it", taskName, res.Ref))
	}
	return nil
}

// task is ns/name from the cache, or from the apiserver when the cache does not
// show it bound to instance yet (the agent's watch and the manager's are two
// streams; the agent may see its binding first). nil when there is none.
func (s *Server) task(ctx context.Context, instance, ns, name string) (*ecsv1alpha1.Task, error) {
	var t ecsv1alpha1.Task
	err := s.cache.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &t)
	if err == nil && t.Spec.ContainerInstance == instance {
		return &t, nil
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.liveTasks.Wait(wctx); err != nil {
		return nil, apierrors.NewTooManyRequests("too many reads of tasks the manager has not seen yet; retry", 1)
	}
	if err := s.live.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &t); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	return &t, nil
}

// read gets the object live and keeps only what a task's containers use.
func (s *Server) read(ctx context.Context, kind, ns, name string) (client.Object, error) {
	key := client.ObjectKey{Namespace: ns, Name: name}
	if kind == taskrules.KindSecret {
		var sec corev1.Secret
		if err := s.live.Get(ctx, key, &sec); err != nil {
			return nil, err
		}
		return &corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}, ObjectMeta: identity(sec.ObjectMeta), Type: sec.Type, Data: sec.Data}, nil
	}
	var cm corev1.ConfigMap
	if err := s.live.Get(ctx, key, &cm); err != nil {
		return nil, err
	}
	return &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}, ObjectMeta: identity(cm.ObjectMeta), Data: cm.Data, BinaryData: cm.BinaryData}, nil
}

// identity is the object's name, namespace, UID and version, without its labels,
// annotations (a last-applied annotation holds the values again) or managed fields.
func identity(m metav1.ObjectMeta) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: m.Namespace, Name: m.Name, UID: m.UID, ResourceVersion: m.ResourceVersion}
}

func forbidden(msg string) *apierrors.StatusError {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden, Message: msg,
	}}
}

// asStatus is err as the Status it carries (the apiserver's refusals pass on as
// they are), else an internal error.
func asStatus(err error) *apierrors.StatusError {
	var st *apierrors.StatusError
	if errors.As(err, &st) {
		return st
	}
	return apierrors.NewInternalError(err)
}

func writeStatus(w http.ResponseWriter, serr *apierrors.StatusError) {
	st := serr.ErrStatus
	access.WriteStatus(w, &st)
}
