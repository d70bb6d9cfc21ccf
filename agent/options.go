package agent

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/berthdev/berth/agent/metrics"
	"github.com/berthdev/berth/agent/network"
	"github.com/berthdev/berth/agent/runtime"
)

// Options configure `berth agent`. Defaults fit a normal host: containerd's standard
// socket, the hostname as the instance name, state under /var/lib/berth.
type Options struct {
	Kubeconfig string
	// GatewayURL is the manager's read gateway (internal/gateway): the agent's
	// tasks, and the Secrets and ConfigMaps they reference, are read through it.
	// Empty reads them with the agent's own credential, which the berth-agent
	// ClusterRole does not allow: for identities with broader rights only.
	GatewayURL string
	// GatewayCAFile is the CA the gateway's certificate is checked against.
	GatewayCAFile     string
	Cluster           string
	Name              string
	ContainerdAddress string
	// Namespace is the containerd namespace the agent's containers live in.
	Namespace string
	StateDir  string
	// Snapshotter is containerd's snapshotter for container filesystems ("" = its default).
	Snapshotter string
	// RegistryConfigDir holds registry host configuration in containerd's certs.d
	// layout (mirrors, CAs, plain HTTP).
	RegistryConfigDir string
	// RuncRoot is runc's state directory ("" = runc's default).
	RuncRoot string
	// BerthBinary is a static build of berth (default: this program): the process
	// of tasks' pause containers (`berth pause`) and the log driver of containers
	// with a terminal (`berth log-driver`).
	BerthBinary string
	// PullPolicy is default, always, once or prefer-cached.
	PullPolicy string
	// BridgeSubnet is the IPv4 range of bridge-mode tasks' addresses.
	BridgeSubnet string
	// Bridge is the host bridge of bridge-mode tasks. A bridge holds one subnet:
	// two agents on one machine (tests, `berth up` beside a real agent) need a
	// bridge each.
	Bridge string
	// CNIPluginDir lists the directories of the CNI plugins, separated by ':'.
	CNIPluginDir string
	// Zone is reported as the ecs.availability-zone attribute.
	Zone string
	// Attributes are extra instance attributes (name=value).
	Attributes attributeFlag
	// ReservedMemoryMiB is kept back from tasks for the system and the agent.
	ReservedMemoryMiB int64
	// GPUIDs declares the machine's GPUs, separated by ','; empty detects them from
	// /dev/nvidia[0-9]*, "none" registers none.
	GPUIDs        string
	LeaseInterval time.Duration
	// StatusInterval bounds how often the instance's usage is written.
	StatusInterval time.Duration
	// UtilizationInterval is the window the tasks' use is averaged over for
	// status.utilization.
	UtilizationInterval time.Duration
	QPS                 float64
	Burst               int
	// HousekeepingOptions: the HTTP endpoint, log rotation and cleanup.
	HousekeepingOptions
}

// DefaultOptions returns the options for a normal host.
func DefaultOptions() Options {
	host, _ := os.Hostname()
	self, _ := os.Executable()
	o := Options{
		BerthBinary:         self,
		Cluster:             "default",
		Name:                strings.ToLower(host),
		ContainerdAddress:   "/run/containerd/containerd.sock",
		Namespace:           "berth",
		StateDir:            "/var/lib/berth",
		RegistryConfigDir:   "/etc/containerd/certs.d",
		PullPolicy:          string(runtime.PullDefault),
		BridgeSubnet:        network.DefaultSubnet,
		Bridge:              network.DefaultBridge,
		CNIPluginDir:        network.DefaultPluginDir,
		Attributes:          attributeFlag{},
		ReservedMemoryMiB:   256,
		LeaseInterval:       10 * time.Second,
		StatusInterval:      DefaultStatusInterval,
		UtilizationInterval: metrics.DefaultInterval,
		QPS:                 50,
		Burst:               100,
	}
	o.HousekeepingOptions = defaultHousekeeping()
	return o
}

// BindFlags registers the options as flags.
func (o *Options) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "Path to a kubeconfig file. Without it: $KUBECONFIG, the in-cluster configuration, then ~/.kube/config.")
	fs.StringVar(&o.GatewayURL, "gateway-url", o.GatewayURL, "URL of the manager's read gateway (https://host:port): the agent reads its tasks, and the Secrets and ConfigMaps they reference, through it. Without it the agent reads them with its own credential, which the berth-agent ClusterRole does not allow.")
	fs.StringVar(&o.GatewayCAFile, "gateway-ca-file", o.GatewayCAFile, "CA certificate (PEM) the gateway's serving certificate is checked against.")
	fs.StringVar(&o.Cluster, "cluster", o.Cluster, "Cluster the instance registers in.")
	fs.StringVar(&o.Name, "name", o.Name, "Name of the ContainerInstance (default: the hostname).")
	fs.StringVar(&o.ContainerdAddress, "containerd-address", o.ContainerdAddress, "containerd's socket.")
	fs.StringVar(&o.Namespace, "containerd-namespace", o.Namespace, "containerd namespace of the agent's containers and images.")
	fs.StringVar(&o.StateDir, "state-dir", o.StateDir, "Directory for task volumes and container logs (logs/<namespace>_<task>_<uid>/<container>.log).")
	fs.StringVar(&o.Snapshotter, "snapshotter", o.Snapshotter, "containerd snapshotter for container filesystems (default: containerd's).")
	fs.StringVar(&o.RegistryConfigDir, "registry-config-dir", o.RegistryConfigDir, "Registry hosts configuration in containerd's certs.d layout (<host>/hosts.toml). Loopback registries need none.")
	fs.StringVar(&o.RuncRoot, "runc-root", o.RuncRoot, "runc's state directory (default: runc's).")
	fs.StringVar(&o.BerthBinary, "berth-binary", o.BerthBinary, "A static berth binary, run as tasks' pause process (pidMode and ipcMode task) and as the log driver of containers with a terminal (default: this program).")
	fs.StringVar(&o.PullPolicy, "image-pull-behavior", o.PullPolicy, "default, always, once or prefer-cached (as ECS_IMAGE_PULL_BEHAVIOR).")
	fs.StringVar(&o.BridgeSubnet, "bridge-subnet", o.BridgeSubnet, "IPv4 range of the addresses of bridge-mode tasks, on the --bridge-name bridge.")
	fs.StringVar(&o.Bridge, "bridge-name", o.Bridge, "Host bridge of bridge-mode tasks (at most 15 characters). One bridge holds one subnet.")
	fs.StringVar(&o.CNIPluginDir, "cni-plugin-dir", o.CNIPluginDir, "Directories of the CNI plugins bridge mode uses (bridge, host-local, portmap, loopback), separated by ':'.")
	fs.StringVar(&o.Zone, "availability-zone", o.Zone, "Reported as the ecs.availability-zone attribute.")
	fs.Var(&o.Attributes, "attribute", "Extra instance attribute as name=value (repeatable).")
	fs.StringVar(&o.GPUIDs, "gpu-ids", o.GPUIDs, "The machine's GPUs offered to tasks, as IDs separated by ',' (for NVIDIA_VISIBLE_DEVICES: indexes or UUIDs); default: detected from /dev/nvidia[0-9]*; none: no GPUs.")
	fs.Int64Var(&o.ReservedMemoryMiB, "reserved-memory", o.ReservedMemoryMiB, "MiB of the machine's memory kept from tasks for the system and the agent.")
	fs.DurationVar(&o.LeaseInterval, "lease-interval", o.LeaseInterval, "How often the heartbeat Lease is renewed.")
	fs.DurationVar(&o.StatusInterval, "status-interval", o.StatusInterval, "Longest time between writes of the instance's usage (task counts, remaining resources) while its tasks change; a busy instance writes it with each utilization window, and one that empties writes at once.")
	fs.DurationVar(&o.UtilizationInterval, "utilization-interval", o.UtilizationInterval, "Window over which the tasks' CPU and memory use is averaged for status.utilization (ECS's CPUUtilization and MemoryUtilization), written once per window; at least 1s.")
	fs.Float64Var(&o.QPS, "kube-api-qps", o.QPS, "Sustained requests per second to the apiserver.")
	fs.IntVar(&o.Burst, "kube-api-burst", o.Burst, "Requests in a burst above --kube-api-qps.")
	o.bindHousekeepingFlags(fs)
}

// Validate reports the first invalid option, naming its flag.
func (o *Options) Validate() error {
	switch {
	case o.Cluster == "":
		return errors.New("--cluster must not be empty")
	case o.Name == "":
		return errors.New("--name must not be empty (the hostname could not be read)")
	case o.ContainerdAddress == "":
		return errors.New("--containerd-address must not be empty")
	case o.StateDir == "" || !strings.HasPrefix(o.StateDir, "/"):
		return fmt.Errorf("--state-dir must be an absolute path, got %q", o.StateDir)
	case !runtime.PullPolicy(o.PullPolicy).Valid():
		return fmt.Errorf("--image-pull-behavior must be default, always, once or prefer-cached, got %q", o.PullPolicy)
	case o.ReservedMemoryMiB < 0:
		return fmt.Errorf("--reserved-memory must not be negative, got %d", o.ReservedMemoryMiB)
	case o.LeaseInterval < time.Second || o.LeaseInterval >= 40*time.Second:
		return fmt.Errorf("--lease-interval must be between 1s and 40s (the lease's duration), got %s", o.LeaseInterval)
	case o.StatusInterval < time.Second:
		return fmt.Errorf("--status-interval must be at least 1s, got %s", o.StatusInterval)
	case o.UtilizationInterval < metrics.MinInterval:
		return fmt.Errorf("--utilization-interval must be at least %s, got %s", metrics.MinInterval, o.UtilizationInterval)
	case o.QPS <= 0 || o.Burst < 1:
		return fmt.Errorf("--kube-api-qps and --kube-api-burst must be positive, got %v and %d", o.QPS, o.Burst)
	}
	return o.validateRest()
}

// gpuIDPattern is what a GPU ID may hold: NVIDIA's indexes and UUIDs (GPU-<hex>,
// MIG-<...>), nothing that would split NVIDIA_VISIBLE_DEVICES.
var gpuIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_./:-]{0,127}$`)

// declaredGPUs parses --gpu-ids: nil when the GPUs are to be detected, an empty
// list for "none".
func (o *Options) declaredGPUs() ([]string, error) {
	switch o.GPUIDs {
	case "":
		return nil, nil
	case "none":
		return []string{}, nil
	}
	ids := strings.Split(o.GPUIDs, ",")
	for i, id := range ids {
		id = strings.TrimSpace(id)
		if !gpuIDPattern.MatchString(id) {
			return nil, fmt.Errorf("--gpu-ids: %q is not a GPU ID (letters, digits and _./:- , at most 128)", id)
		}
		if slices.Contains(ids[:i], id) {
			return nil, fmt.Errorf("--gpu-ids: %q is listed twice", id)
		}
		ids[i] = id
	}
	if len(ids) > 64 {
		return nil, fmt.Errorf("--gpu-ids: %d GPUs; an instance registers at most 64", len(ids))
	}
	return ids, nil
}

// attributeFlag collects repeated --attribute name=value flags.
type attributeFlag map[string]string

func (a attributeFlag) String() string {
	parts := make([]string, 0, len(a))
	for k, v := range a {
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, ",")
}

func (a attributeFlag) Set(s string) error {
	name, value, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return fmt.Errorf("want name=value, got %q", s)
	}
	a[name] = value
	return nil
}

// validateRest checks the options that need more than a comparison.
func (o *Options) validateRest() error {
	if _, err := o.declaredGPUs(); err != nil {
		return err
	}
	if err := o.validateGateway(); err != nil {
		return err
	}
	return o.validateHousekeeping()
}

// validateGateway checks the gateway's flags: both or neither, over TLS.
func (o *Options) validateGateway() error {
	switch {
	case o.GatewayURL == "" && o.GatewayCAFile != "":
		return errors.New("--gateway-ca-file needs --gateway-url")
	case o.GatewayURL == "":
		return nil
	case !strings.HasPrefix(o.GatewayURL, "https://"):
		return fmt.Errorf("--gateway-url must be an https:// URL, got %q", o.GatewayURL)
	case o.GatewayCAFile == "":
		return errors.New("--gateway-ca-file must be set with --gateway-url")
	}
	return nil
}
