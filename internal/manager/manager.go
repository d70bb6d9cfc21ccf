// Package manager assembles Berth's control plane: a controller-runtime manager with
// the Berth scheme, metrics, health probes and leader election, running every
// controller that Berth registers.
package manager

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/controllers"
	"github.com/berthdev/berth/controllers/endpoints"
	"github.com/berthdev/berth/controllers/utilization"
	"github.com/berthdev/berth/internal/agentidentity"
	"github.com/berthdev/berth/internal/kube"
)

// Options configure the manager process. Defaults suit production; Berth's throughput
// depends on the client rate limits, so they are far above client-go's 5 QPS / 10 burst.
type Options struct {
	Kubeconfig              string
	MetricsBindAddress      string
	HealthProbeBindAddress  string
	LeaderElection          bool
	LeaderElectionID        string
	LeaderElectionNamespace string
	QPS                     float64
	Burst                   int
	GracefulShutdownTimeout time.Duration
	// RunControllers runs the controllers; without them the process serves only the
	// agents' read gateway.
	RunControllers bool
	Controllers    controllers.Options
	Gateway        GatewayOptions
}

// DefaultOptions returns the options a production manager starts with.
func DefaultOptions() Options {
	return Options{
		MetricsBindAddress:      ":8080",
		HealthProbeBindAddress:  ":8081",
		LeaderElectionID:        "berth-manager.ecs.berth.dev",
		QPS:                     500,
		Burst:                   1000,
		GracefulShutdownTimeout: 30 * time.Second,
		RunControllers:          true,
		Gateway:                 GatewayOptions{BindAddress: "0", DaemonSetUser: agentidentity.DefaultDaemonSetUser},
		Controllers: controllers.Options{
			HeartbeatGrace:        40 * time.Second,
			SchedulerWorkers:      controllers.DefaultSchedulerWorkers,
			ServiceWorkers:        controllers.DefaultServiceWorkers,
			UtilizationInterval:   utilization.DefaultInterval,
			AutoScalingStaleAfter: controllers.DefaultAutoScalingStaleAfter,
			AutoScalingInterval:   controllers.DefaultAutoScalingInterval,
		},
	}
}

// BindFlags registers the options as command-line flags.
func (o *Options) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "Path to a kubeconfig file. Without it: $KUBECONFIG, the in-cluster configuration, then ~/.kube/config.")
	fs.StringVar(&o.MetricsBindAddress, "metrics-bind-address", o.MetricsBindAddress, "Address the Prometheus metrics endpoint binds to; 0 disables it.")
	fs.StringVar(&o.HealthProbeBindAddress, "health-probe-bind-address", o.HealthProbeBindAddress, "Address the /healthz and /readyz probes bind to; 0 disables them.")
	fs.BoolVar(&o.LeaderElection, "leader-elect", o.LeaderElection, "Elect a leader so that only one of several manager replicas reconciles at a time.")
	fs.StringVar(&o.LeaderElectionID, "leader-election-id", o.LeaderElectionID, "Name of the Lease used for leader election.")
	fs.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", o.LeaderElectionNamespace, "Namespace of the leader election Lease; defaults to the manager's own namespace in a cluster.")
	fs.Float64Var(&o.QPS, "kube-api-qps", o.QPS, "Sustained requests per second the manager may send to the apiserver.")
	fs.IntVar(&o.Burst, "kube-api-burst", o.Burst, "Requests the manager may send to the apiserver in a burst above --kube-api-qps.")
	fs.DurationVar(&o.GracefulShutdownTimeout, "graceful-shutdown-timeout", o.GracefulShutdownTimeout, "How long running reconciles may take to finish on shutdown.")
	fs.BoolVar(&o.RunControllers, "controllers", o.RunControllers, "Run the controllers. false serves only the agents' read gateway: a gateway apart from the controllers, which agents keep reading through while the controllers are stopped (berth up runs one so).")
	fs.StringVar(&o.Gateway.BindAddress, "gateway-bind-address", o.Gateway.BindAddress, "Address the agents' read gateway binds to (HTTPS): agents read their tasks, and the Secrets and ConfigMaps those reference, through it; 0 disables it.")
	fs.StringVar(&o.Gateway.CertDir, "gateway-cert-dir", o.Gateway.CertDir, "Directory with the gateway's serving certificate, tls.crt and tls.key (read again when they change).")
	fs.StringVar(&o.Gateway.DaemonSetUser, "gateway-daemonset-user", o.Gateway.DaemonSetUser, "User of the agent DaemonSet's ServiceAccount, whose tokens name the node they are bound to (the Helm chart sets its release's).")
	fs.DurationVar(&o.Controllers.HeartbeatGrace, "heartbeat-grace", o.Controllers.HeartbeatGrace, "How long an agent may go without renewing its lease before its instance is disconnected.")
	fs.IntVar(&o.Controllers.SchedulerWorkers, "scheduler-workers", o.Controllers.SchedulerWorkers, "Tasks placed in parallel.")
	fs.IntVar(&o.Controllers.ServiceWorkers, "service-workers", o.Controllers.ServiceWorkers, "Services reconciled in parallel.")
	fs.IntVar(&o.Controllers.ServiceMaxWritesPerPass, "service-max-writes-per-pass", o.Controllers.ServiceMaxWritesPerPass, "Creates, and stops, of one service pass before its status is written and the next pass goes on (0: the default, 500).")
	fs.DurationVar(&o.Controllers.UtilizationInterval, "utilization-interval", o.Controllers.UtilizationInterval, "Each Service's, TaskDefinition's and Cluster's status.utilization is written at most this often; match the agents' --utilization-interval.")
	fs.DurationVar(&o.Controllers.AutoScalingStaleAfter, "autoscaling-stale-after", o.Controllers.AutoScalingStaleAfter, "Service auto scaling ignores a utilization measured longer ago than this (keep it above --utilization-interval).")
	fs.DurationVar(&o.Controllers.AutoScalingInterval, "autoscaling-evaluation-interval", o.Controllers.AutoScalingInterval, "How often service auto scaling reads customized (Prometheus) metrics; a counter's rate spans this.")
}

// Validate reports the first invalid option, naming its flag.
func (o *Options) Validate() error {
	switch {
	case o.QPS <= 0:
		return fmt.Errorf("--kube-api-qps must be positive, got %v", o.QPS)
	case o.Burst < 1:
		return fmt.Errorf("--kube-api-burst must be at least 1, got %d", o.Burst)
	case o.LeaderElection && o.LeaderElectionID == "":
		return fmt.Errorf("--leader-election-id must be set with --leader-elect")
	case o.Controllers.HeartbeatGrace < time.Second:
		return fmt.Errorf("--heartbeat-grace must be at least 1s, got %s", o.Controllers.HeartbeatGrace)
	case o.Controllers.SchedulerWorkers < 1:
		return fmt.Errorf("--scheduler-workers must be at least 1, got %d", o.Controllers.SchedulerWorkers)
	case o.Controllers.ServiceWorkers < 1:
		return fmt.Errorf("--service-workers must be at least 1, got %d", o.Controllers.ServiceWorkers)
	case o.Controllers.ServiceMaxWritesPerPass < 0:
		return fmt.Errorf("--service-max-writes-per-pass must not be negative, got %d", o.Controllers.ServiceMaxWritesPerPass)
	case o.Controllers.UtilizationInterval < time.Second:
		return fmt.Errorf("--utilization-interval must be at least 1s, got %s", o.Controllers.UtilizationInterval)
	case o.Controllers.AutoScalingStaleAfter < time.Second:
		return fmt.Errorf("--autoscaling-stale-after must be at least 1s, got %s", o.Controllers.AutoScalingStaleAfter)
	case o.Controllers.AutoScalingInterval < time.Second:
		return fmt.Errorf("--autoscaling-evaluation-interval must be at least 1s, got %s", o.Controllers.AutoScalingInterval)
	}
	return o.validateGateway()
}

// validateGateway checks the gateway's options against what the process runs.
func (o *Options) validateGateway() error {
	switch {
	case !o.RunControllers && !o.Gateway.enabled():
		return fmt.Errorf("--controllers=false needs --gateway-bind-address: the process would do nothing")
	case o.Gateway.enabled() && o.Gateway.CertDir == "":
		return fmt.Errorf("--gateway-cert-dir must be set with --gateway-bind-address")
	}
	return nil
}

// New builds a manager with probes, metrics and every controller, but does not start it.
func New(ctx context.Context, o Options) (ctrl.Manager, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	cfg, err := kube.RESTConfig(o.Kubeconfig, o.QPS, o.Burst)
	if err != nil {
		return nil, err
	}
	cfg.UserAgent = "berth-manager"
	return Build(ctx, cfg, o)
}

// Build assembles the manager on cfg: the one scheme, the cache limits, probes and
// every controller. tweaks adjust the controller-runtime options before the manager
// is made (the test harness turns name validation off, as it runs several managers
// in one process). It does not start the manager.
func Build(ctx context.Context, cfg *rest.Config, o Options, tweaks ...func(*ctrl.Options)) (ctrl.Manager, error) {
	mo := ctrl.Options{
		Scheme:                        kube.Scheme,
		Metrics:                       metricsserver.Options{BindAddress: o.MetricsBindAddress},
		HealthProbeBindAddress:        o.HealthProbeBindAddress,
		LeaderElection:                o.LeaderElection,
		LeaderElectionID:              o.LeaderElectionID,
		LeaderElectionNamespace:       o.LeaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
		GracefulShutdownTimeout:       &o.GracefulShutdownTimeout,
		Cache:                         CacheOptions(),
	}
	for _, t := range tweaks {
		t(&mo)
	}
	mgr, err := ctrl.NewManager(cfg, mo)
	if err != nil {
		return nil, fmt.Errorf("creating manager: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("crds", crdsServed(mgr)); err != nil {
		return nil, err
	}
	if o.RunControllers {
		if err := controllers.Setup(ctx, mgr, o.Controllers); err != nil {
			return nil, err
		}
	}
	if _, err := addGateway(ctx, mgr, cfg, o.Gateway); err != nil {
		return nil, err
	}
	return mgr, nil
}

// CacheOptions limits what the manager caches to what it uses: of all the
// ControllerRevisions in a cluster (DaemonSets and StatefulSets keep theirs there too)
// only task definition revisions, of all Leases only agents' heartbeats, and of all
// EndpointSlices only Berth's. No controller reads managed fields, and they are
// about half of a reported Task's JSON (bench's TaskWriteCost), so the cache drops
// them, as the agent's does: less memory, and less for the collector to scan, per
// cached task. Writes are unaffected: an update or merge patch made from a cached
// object sends no managedFields, which the apiserver reads as "keep them".
func CacheOptions() cache.Options {
	revisions, err := labels.Parse(ecsv1alpha1.LabelFamily)
	if err != nil {
		panic(err) // a constant selector
	}
	slices := labels.SelectorFromSet(labels.Set{discoveryv1.LabelManagedBy: endpoints.ManagedBy})
	return cache.Options{DefaultTransform: cache.TransformStripManagedFields(), ByObject: map[client.Object]cache.ByObject{
		&appsv1.ControllerRevision{}: {Label: revisions},
		// Heartbeats only: not every Lease of the cluster (kube-node-lease, elections).
		&coordinationv1.Lease{}: {Namespaces: map[string]cache.Config{ecsv1alpha1.NodeLeaseNamespace: {}}},
		// Only the EndpointSlices Berth writes, not every slice of the cluster.
		&discoveryv1.EndpointSlice{}: {Label: slices},
	}}
}

// crdsServed is ready only while the apiserver serves every Berth kind, so that a
// manager deployed before its CRDs says so instead of failing reconciles.
func crdsServed(mgr ctrl.Manager) healthz.Checker {
	kinds := []string{"Cluster", "ContainerInstance", "TaskDefinition", "Service", "Task"}
	return func(_ *http.Request) error {
		for _, k := range kinds {
			gvk := ecsv1alpha1.GroupVersion.WithKind(k)
			if _, err := mgr.GetRESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
				return fmt.Errorf("kind %s is not served (are Berth's CRDs installed?): %w", gvk, err)
			}
		}
		return nil
	}
}

// Run builds the manager and runs it until ctx is done.
func Run(ctx context.Context, o Options) error {
	mgr, err := New(ctx, o)
	if err != nil {
		return err
	}
	log := ctrl.LoggerFrom(ctx)
	log.Info("starting manager", "metricsAddress", o.MetricsBindAddress, "probeAddress", o.HealthProbeBindAddress, "leaderElection", o.LeaderElection, "controllers", o.RunControllers, "gatewayAddress", o.Gateway.BindAddress, "qps", o.QPS, "burst", o.Burst)
	return mgr.Start(ctx)
}
