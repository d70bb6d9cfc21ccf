package cli

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/berthdev/berth/agent/hollow"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/kube"
	"github.com/berthdev/berth/internal/version"
)

// hollowFlags are the command-line options of `berth hollow`.
type hollowFlags struct {
	kubeconfig      string
	qps             float64
	burst           int
	cfg             hollow.Config
	attributes      []string
	failImages      []string
	unhealthyImages []string
}

// hollowFlagNames maps hollow.Config options to the flags that set them, so that a
// validation error names the flag the user typed.
var hollowFlagNames = map[string]string{
	"Cluster":             "--cluster",
	"Instances":           "--instances",
	"NamePrefix":          "--name-prefix",
	"CPU":                 "--cpu",
	"Memory":              "--memory",
	"GPUs":                "--gpus",
	"Zones":               "--zones",
	"Attributes":          "--attribute",
	"RunningDelay":        "--running-delay",
	"LeaseInterval":       "--lease-interval",
	"StatusInterval":      "--status-interval",
	"UtilizationInterval": "--utilization-interval",
	"FailImages":          "--fail-image",
	"UnhealthyImages":     "--unhealthy-image",
}

func newHollowCommand() *cobra.Command {
	f := &hollowFlags{
		qps:   500,
		burst: 1000,
		cfg: hollow.Config{
			Cluster:             ecsv1alpha1.DefaultClusterName,
			Instances:           1,
			NamePrefix:          hollow.DefaultNamePrefix,
			CPU:                 hollow.DefaultCPU,
			Memory:              hollow.DefaultMemory,
			Zones:               []string{hollow.DefaultZone},
			RunningDelay:        hollow.DefaultRunningDelay,
			LeaseInterval:       hollow.DefaultLeaseInterval,
			StatusInterval:      hollow.DefaultStatusInterval,
			UtilizationInterval: hollow.DefaultUtilizationInterval,
		},
	}
	zapOpts := zap.Options{}
	cmd := &cobra.Command{
		Use:   "hollow",
		Short: "Simulate many Berth agents in one process, for tests and benchmarks",
		Long: `Simulate container instances without containerd, as kubemark's hollow nodes do:
each instance is the real agent (registration, heartbeat, task engine, status
reporting) over an in-memory container runtime and network, so the tasks the
control plane binds to it go through the agent's own rules. Images named by
--fail-image exit with code 1 as they start; health checks in images named by
--unhealthy-image fail. Thousands of instances share one process, one client and
one task watch.`,
		Example: `  berth hollow --kubeconfig ~/.kube/config --cluster bench --instances 1000 \
    --zones zone-a,zone-b,zone-c --attribute stack=bench --fail-image crashloop`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			agent, err := f.agent()
			if err != nil {
				return err
			}
			log := zap.New(zap.UseFlagOptions(&zapOpts))
			setLogger(log)
			log.Info("berth hollow", "version", version.Version, "commit", version.GitCommit)
			return agent.Run(ctrl.LoggerInto(cmd.Context(), log))
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.kubeconfig, "kubeconfig", f.kubeconfig, "Path to a kubeconfig file. Without it: $KUBECONFIG, the in-cluster configuration, then ~/.kube/config.")
	fs.StringVar(&f.cfg.Cluster, "cluster", f.cfg.Cluster, "Cluster the instances register in.")
	fs.IntVar(&f.cfg.Instances, "instances", f.cfg.Instances, "Number of instances to simulate.")
	fs.StringVar(&f.cfg.NamePrefix, "name-prefix", f.cfg.NamePrefix, "Instances are named <prefix>-0000, <prefix>-0001, ...")
	fs.Int64Var(&f.cfg.CPU, "cpu", f.cfg.CPU, "CPU units each instance registers (1024 per core).")
	fs.Int64Var(&f.cfg.Memory, "memory", f.cfg.Memory, "Memory in MiB each instance registers.")
	fs.IntVar(&f.cfg.GPUs, "gpus", f.cfg.GPUs, "GPUs each instance registers (IDs 0, 1, ...); tasks that ask for GPUs are placed on them and see their IDs in NVIDIA_VISIBLE_DEVICES.")
	fs.StringSliceVar(&f.cfg.Zones, "zones", f.cfg.Zones, "Availability zones (comma-separated), spread round-robin over the instances as attribute ecs.availability-zone.")
	fs.StringArrayVar(&f.attributes, "attribute", nil, "Extra instance attribute as name=value (repeatable).")
	fs.DurationVar(&f.cfg.RunningDelay, "running-delay", f.cfg.RunningDelay, "How long each simulated image pull takes: about the time from seeing a bound task to its containers running.")
	fs.DurationVar(&f.cfg.LeaseInterval, "lease-interval", f.cfg.LeaseInterval, "How often each instance renews its Lease (below the Lease's 40s duration).")
	fs.DurationVar(&f.cfg.StatusInterval, "status-interval", f.cfg.StatusInterval, "Longest time between writes of each instance's usage, when it changes (as the agent's).")
	fs.DurationVar(&f.cfg.UtilizationInterval, "utilization-interval", f.cfg.UtilizationInterval, "Window over which each instance averages its tasks' CPU and memory use for status.utilization, written once per window (as the agent's); at least 1s.")
	fs.StringArrayVar(&f.failImages, "fail-image", nil, "Containers whose image contains this substring exit with code 1 as they start; an essential one stops its task with EssentialContainerExited (repeatable).")
	fs.StringArrayVar(&f.unhealthyImages, "unhealthy-image", nil, "Health checks in containers whose image contains this substring fail, so they turn UNHEALTHY after their retries (repeatable).")
	fs.Float64Var(&f.qps, "kube-api-qps", f.qps, "Sustained requests per second the process may send to the apiserver (shared by all instances).")
	fs.IntVar(&f.burst, "kube-api-burst", f.burst, "Requests the process may send in a burst above --kube-api-qps.")
	goFlags(cmd, func(fs *flag.FlagSet) { zapOpts.BindFlags(fs) })
	return cmd
}

// agent validates the flags and builds the hollow agent, without contacting the
// apiserver; errors name the offending flag.
func (f *hollowFlags) agent() (*hollow.Agent, error) {
	cfg, err := f.config()
	if err != nil {
		return nil, err
	}
	switch {
	case f.qps <= 0:
		return nil, fmt.Errorf("--kube-api-qps must be positive, got %v", f.qps)
	case f.burst < 1:
		return nil, fmt.Errorf("--kube-api-burst must be at least 1, got %d", f.burst)
	}
	// Validate the options before loading the kubeconfig, so that a bad flag is
	// reported as such even where no apiserver is configured.
	if err := cfg.Validate(); err != nil {
		return nil, flagError(err)
	}
	restConfig, err := kube.RESTConfig(f.kubeconfig, f.qps, f.burst)
	if err != nil {
		return nil, err
	}
	restConfig.UserAgent = "berth-hollow/" + version.Version
	a, err := hollow.New(cfg, restConfig)
	if err != nil {
		return nil, flagError(err)
	}
	return a, nil
}

// config builds the hollow configuration from the flags.
func (f *hollowFlags) config() (hollow.Config, error) {
	cfg := f.cfg
	if cfg.CPU <= 0 {
		return cfg, fmt.Errorf("--cpu must be positive, got %d", cfg.CPU)
	}
	if cfg.Memory <= 0 {
		return cfg, fmt.Errorf("--memory must be positive, got %d", cfg.Memory)
	}
	if cfg.RunningDelay <= 0 {
		return cfg, fmt.Errorf("--running-delay must be positive, got %v", cfg.RunningDelay)
	}
	if cfg.LeaseInterval <= 0 {
		return cfg, fmt.Errorf("--lease-interval must be positive, got %v", cfg.LeaseInterval)
	}
	if cfg.StatusInterval < time.Second {
		return cfg, fmt.Errorf("--status-interval must be at least 1s, got %v", cfg.StatusInterval)
	}
	cfg.Zones = nil
	for _, z := range f.cfg.Zones {
		if z = strings.TrimSpace(z); z == "" {
			return cfg, fmt.Errorf("--zones has an empty zone in %q", strings.Join(f.cfg.Zones, ","))
		}
		cfg.Zones = append(cfg.Zones, z)
	}
	if len(cfg.Zones) == 0 {
		return cfg, errors.New("--zones must name at least one zone")
	}
	cfg.Attributes = map[string]string{}
	for _, kv := range f.attributes {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return cfg, fmt.Errorf("--attribute %q is not name=value", kv)
		}
		if _, dup := cfg.Attributes[k]; dup {
			return cfg, fmt.Errorf("--attribute %q is given twice", k)
		}
		cfg.Attributes[k] = v
	}
	cfg.FailImages = f.failImages
	cfg.UnhealthyImages = f.unhealthyImages
	return cfg, nil
}

// flagError rewrites a hollow.ConfigError to name the flag rather than the option.
func flagError(err error) error {
	var ce *hollow.ConfigError
	if errors.As(err, &ce) {
		if name, ok := hollowFlagNames[ce.Option]; ok {
			return fmt.Errorf("%s %s", name, ce.Message)
		}
	}
	return err
}
