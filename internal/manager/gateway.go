package manager

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/berthdev/berth/internal/access"
	"github.com/berthdev/berth/internal/gateway"
	"github.com/berthdev/berth/internal/revision"
)

// The gateway reads, live, the Secrets and ConfigMaps that tasks reference, for the
// agents those tasks are bound to (agents may read none themselves), and asks the
// apiserver who its callers are: TokenReviews, and the cluster's client CA for
// agents with certificates.
//
// +kubebuilder:rbac:groups="",resources=secrets;configmaps,verbs=get
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;list;watch,namespace=kube-system,resourceNames=extension-apiserver-authentication

// GatewayOptions configure the agents' read gateway (internal/gateway).
type GatewayOptions struct {
	// BindAddress is where it listens; "" or "0" disables it.
	BindAddress string
	// CertDir holds its serving certificate, tls.crt and tls.key.
	CertDir string
	// DaemonSetUser is the Helm chart's agent DaemonSet account, whose tokens name
	// their node.
	DaemonSetUser string
}

func (o GatewayOptions) enabled() bool { return o.BindAddress != "" && o.BindAddress != "0" }

// addGateway binds the gateway and adds it to mgr; nil when it is disabled.
func addGateway(ctx context.Context, mgr ctrl.Manager, cfg *rest.Config, o GatewayOptions) (*gateway.Listener, error) {
	if !o.enabled() {
		return nil, nil
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	auth, err := access.NewDelegated(ctx, cs)
	if err != nil {
		return nil, fmt.Errorf("the gateway's authentication: %w", err)
	}
	// Its own resolver: it decodes only the revisions of tasks that read a Secret or
	// ConfigMap, and forgets them with their ControllerRevisions.
	resolver := revision.NewResolver(mgr.GetClient())
	revisions, err := mgr.GetCache().GetInformer(ctx, &appsv1.ControllerRevision{})
	if err != nil {
		return nil, err
	}
	if err := revision.ForgetOnDelete(revisions, resolver); err != nil {
		return nil, err
	}
	srv, err := gateway.NewServer(gateway.Config{
		Auth: auth, Cache: mgr.GetClient(), Live: mgr.GetAPIReader(), Revisions: resolver, APIServer: cfg,
		DaemonSetUser: o.DaemonSetUser, Log: mgr.GetLogger().WithName("gateway"),
	})
	if err != nil {
		return nil, err
	}
	ln, err := gateway.Listen(o.BindAddress, o.CertDir, srv, auth)
	if err != nil {
		return nil, err
	}
	return ln, mgr.Add(ln)
}
