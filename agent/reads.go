package agent

import (
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/gateway"
)

// The agent's RBAC lets it read no Secret, no ConfigMap and no list of tasks
// (config/rbac/agent): RBAC cannot say "those of my tasks". It reads them through
// the manager's gateway, which answers only what this instance's tasks need, with
// the agent's own identity. Writes go to the apiserver directly. It deletes only
// the stopped tasks their service does not keep (reporter.delete); its admission
// policy holds it to those.
//
// +kubebuilder:rbac:groups=ecs.berth.dev,resources=containerinstances,verbs=get;create
// +kubebuilder:rbac:groups=ecs.berth.dev,resources=containerinstances/status,verbs=get;patch
// +kubebuilder:rbac:groups=ecs.berth.dev,resources=tasks/status,verbs=patch
// +kubebuilder:rbac:groups=ecs.berth.dev,resources=tasks,verbs=delete
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;create;update

// reads is where an agent process reads from.
type reads struct {
	cache   cache.Cache
	secrets func(ns, task string) client.Reader
}

// newReads builds the agent's cache (this instance's tasks, task definitions and
// their revisions, its Cluster) and its Secret reader: through the gateway when
// --gateway-url is set, else with cfg itself. mapper is the direct client's:
// discovery is the apiserver's, the gateway serves lists and watches only.
func newReads(cfg *rest.Config, mapper meta.RESTMapper, o Options) (reads, error) {
	// Only this instance's tasks: the apiserver filters with the CRD's selectable field.
	tasks := fields.OneTermEqualSelector(ecsv1alpha1.TaskFieldContainerInstance, o.Name)
	if o.GatewayURL == "" {
		ch, err := NewCache(cfg, o.Cluster, tasks, mapper)
		return reads{cache: ch}, err
	}
	gw := gateway.RESTConfig(cfg, o.GatewayURL, o.GatewayCAFile)
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
