package agent

import (
	"context"
	"errors"
	"net"
	"time"

	"k8s.io/client-go/kubernetes"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/berthdev/berth/agent/httpapi"
	"github.com/berthdev/berth/agent/runtime"
	"github.com/berthdev/berth/agent/streaming"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/access"
)

// RBAC of the streaming server (agent/streaming) and the HTTP endpoint
// (agent/httpapi): they have the apiserver authenticate their callers (TokenReview,
// and for the streaming server the client CA in kube-system's
// extension-apiserver-authentication, as aggregated apiservers read it) and
// authorize them (SubjectAccessReview, internal/access); the streaming server audits
// execs as Events on tasks.
//
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;list;watch,namespace=kube-system,resourceNames=extension-apiserver-authentication
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch

// streamingRetry is how long the agent waits before serving its streaming server
// again after it failed.
const streamingRetry = 10 * time.Second

// advertiseHost is the host of the streaming server's published URL: the one
// given, else the listen host, else (listening on all interfaces) the instance's
// first InternalIP.
func advertiseHost(listen, advertise string, addrs []ecsv1alpha1.InstanceAddress) string {
	if advertise != "" {
		return advertise
	}
	host, _, _ := net.SplitHostPort(listen)
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		return host
	}
	for _, a := range addrs {
		if a.Type == ecsv1alpha1.AddressInternalIP {
			return a.Address
		}
	}
	return "127.0.0.1"
}

// listenStreaming binds the streaming server and returns its endpoint, for the
// registration to publish; nil when --streaming-address is empty.
func listenStreaming(o Options, addrs []ecsv1alpha1.InstanceAddress) (*streaming.Listener, *ecsv1alpha1.StreamingEndpoint, error) {
	if o.StreamingAddress == "" {
		return nil, nil, nil
	}
	l, err := streaming.Listen(o.StreamingAddress, advertiseHost(o.StreamingAddress, o.StreamingAdvertiseAddress, addrs))
	if err != nil {
		return nil, nil, err
	}
	ep := l.Endpoint()
	return l, &ep, nil
}

// delegated builds the authentication and authorization by the apiserver that the
// HTTP endpoint and the streaming server share (one set of caches, one client CA).
// Nil, logged, when it cannot be built: the HTTP endpoint then refuses whatever
// needs a caller (closed, never open) and the streaming server is not served.
func (n *Node) delegated(ctx context.Context) *access.Delegated {
	cs, err := kubernetes.NewForConfig(n.restConfig)
	if err == nil {
		var auth *access.Delegated
		if auth, err = access.NewDelegated(ctx, cs); err == nil {
			return auth
		}
	}
	ctrl.LoggerFrom(ctx).Error(err, "no authentication by the apiserver: the HTTP endpoint refuses /v1/tasks and /v1/logs, the streaming server is off")
	return nil
}

// serveStreaming serves exec and logs on the bound listener until ctx ends,
// building the handler again after a failure.
func (n *Node) serveStreaming(ctx context.Context, auth *access.Delegated) {
	log := ctrl.LoggerFrom(ctx).WithName("streaming")
	for {
		err := n.runStreaming(ctx, auth)
		if err == nil || ctx.Err() != nil {
			return
		}
		log.Error(err, "the agent's streaming server is down; retrying", "retryIn", streamingRetry.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(streamingRetry):
		}
	}
}

// runStreaming serves with auth, whose client CA the caller follows (Run).
func (n *Node) runStreaming(ctx context.Context, auth *access.Delegated) error {
	log := ctrl.LoggerFrom(ctx).WithName("streaming")
	cs, err := kubernetes.NewForConfig(n.restConfig)
	if err != nil {
		return err
	}
	if !auth.WaitForClientCA(ctx) {
		log.Info("the cluster's client CA is not readable yet: client certificates are refused until it is; bearer tokens work",
			"configMap", access.ClientCANamespace+"/"+access.ClientCAConfigMap)
	}
	audit := streaming.NewAuditor(cs, n.opts.Name)
	defer audit.Shutdown()
	// A log reader only: its own routes are not served (the streaming server
	// authorizes before it reads).
	logs, err := httpapi.New(httpapi.Config{Runtime: n.inst.rt, Tasks: n.inst.eng.Tasks, StateDir: n.opts.StateDir, Log: log})
	if err != nil {
		return err
	}
	execer, ok := n.inst.rt.(streamingRuntime)
	if !ok {
		return errNoExecer
	}
	h, err := streaming.NewHandler(streaming.Config{
		Instance: n.opts.Name, Tasks: n.agent.cache, Runtime: execer, Logs: logs, Auth: auth, Audit: audit, Log: log,
	})
	if err != nil {
		return err
	}
	log.Info("serving exec and logs", "url", n.streamingLn.Endpoint().URL)
	// Serve closes the socket when it fails: nothing to retry with then.
	if err := n.streamingLn.Serve(ctx, h); err != nil {
		log.Error(err, "the agent's streaming server stopped")
	}
	return nil
}

// streamingRuntime is a runtime that serves interactive execs.
type streamingRuntime interface {
	runtime.Runtime
	runtime.Execer
}

// errNoExecer: the runtime cannot run interactive commands.
var errNoExecer = errors.New("the container runtime does not serve interactive exec")
