package agent

import (
	"fmt"

	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/gateway"
)

// The agent's RBAC lets it read no Secret, no ConfigMap and no list of tasks
// (config/rbac/agent): RBAC cannot say "those of my tasks". It reads them through
// the manager's gateway, which answers only what this instance's tasks need, with
// the agent's own identity. Writes go to the apiserver directly.
//
// +kubebuilder:rbac:groups=ecs.berth.dev,resources=containerinstances,verbs=get;create
// +kubebuilder:rbac:groups=ecs.berth.dev,resources=containerinstances/status,verbs=get;patch
// +kubebuilder:rbac:groups=ecs.berth.dev,resources=tasks/status,verbs=patch
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;create;update

// reads is where an agent process reads from.
type reads struct {
	cache   cache.Cache
	secrets func(ns, task string) client.Reader
}

// newReads builds the agent's cache (this instance's tasks, task definitions and
// their revisions, its Cluster) and its Secret reader: through the gateway when
// --gateway-url is set, else with cfg itself.
func newReads(cfg *rest.Config, o Options) (reads, error) {
	// Only this instance's tasks: the apiserver filters with the CRD's selectable field.
	tasks := fields.OneTermEqualSelector(ecsv1alpha1.TaskFieldContainerInstance, o.Name)
	if o.GatewayURL == "" {
		ch, err := NewCache(cfg, o.Cluster, tasks, nil)
		return reads{cache: ch}, err
	}
	gw := gateway.RESTConfig(cfg, o.GatewayURL, o.GatewayCAFile)
	// Discovery is the apiserver's: the gateway serves lists and watches only.
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return reads{}, err
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, hc)
	if err != nil {
		return reads{}, fmt.Errorf("discovering the apiserver's kinds: %w", err)
	}
	ch, err := NewCache(gw, o.Cluster, tasks, mapper)
	if err != nil {
		return reads{}, err
	}
	gc, err := gateway.NewClient(gw)
	if err != nil {
		return reads{}, err
	}
	return reads{cache: ch, secrets: gc.ForTask}, nil
}
