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
)

// RBAC of the streaming server (agent/streaming): it has the apiserver authenticate
// its callers (TokenReview, and the client CA in kube-system's
// extension-apiserver-authentication, as aggregated apiservers read it) and
// authorize them (SubjectAccessReview), and audits execs as Events on tasks.
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

// serveStreaming serves exec and logs on the bound listener until ctx ends,
// building the handler again after a failure (the apiserver away at start).
func (n *Node) serveStreaming(ctx context.Context) {
	log := ctrl.LoggerFrom(ctx).WithName("streaming")
	for {
		err := n.runStreaming(ctx)
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

func (n *Node) runStreaming(ctx context.Context) error {
	log := ctrl.LoggerFrom(ctx).WithName("streaming")
	cs, err := kubernetes.NewForConfig(n.restConfig)
	if err != nil {
		return err
	}
	auth, err := streaming.NewDelegated(ctx, cs)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go auth.Run(ctx)
	if !auth.WaitForClientCA(ctx) {
		log.Info("the cluster's client CA is not readable yet: client certificates are refused until it is; bearer tokens work",
			"configMap", streaming.ClientCANamespace+"/"+streaming.ClientCAConfigMap)
	}
	audit := streaming.NewAuditor(cs, n.opts.Name)
	defer audit.Shutdown()
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
