package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berthdev/berth/agent/network"
	"github.com/berthdev/berth/agent/registration"
	"github.com/berthdev/berth/agent/runtime"
	"github.com/berthdev/berth/agent/runtime/containerd"
	"github.com/berthdev/berth/agent/streaming"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/kube"
	"github.com/berthdev/berth/internal/version"
)

// Node is `berth agent`: one container instance on this machine's containerd and
// CNI, with the HTTP endpoint, log rotation and cleanup beside it.
type Node struct {
	opts    Options
	agent   *Agent
	inst    *Instance
	network *network.Manager
	// restConfig is the agent's identity, for the delegated authentication its
	// servers share and the streaming server's Events.
	restConfig *rest.Config
	// streamingLn is the bound exec and logs server; nil when disabled.
	streamingLn *streaming.Listener
}

// Run runs the agent until ctx ends. Containers keep running when it returns.
func Run(ctx context.Context, o Options) error {
	if err := o.Validate(); err != nil {
		return err
	}
	n, err := New(ctx, o)
	if err != nil {
		return err
	}
	return n.Run(ctx)
}

// New connects to containerd and describes this machine; it does not contact the
// apiserver yet.
func New(ctx context.Context, o Options) (*Node, error) {
	cfg, err := kube.RESTConfig(o.Kubeconfig, o.QPS, o.Burst)
	if err != nil {
		return nil, err
	}
	cfg.UserAgent = "berth-agent/" + o.Name
	c, err := client.New(cfg, client.Options{Scheme: kube.Scheme})
	if err != nil {
		return nil, err
	}
	reads, err := newReads(cfg, c.RESTMapper(), o)
	if err != nil {
		return nil, err
	}
	rt, err := containerd.New(ctx, containerd.Options{
		Address: o.ContainerdAddress, Namespace: o.Namespace, Snapshotter: o.Snapshotter,
		HostsDir: o.RegistryConfigDir, RuncRoot: o.RuncRoot, FIFODir: filepath.Join(o.StateDir, "fifo"),
		HelperBinary: o.BerthBinary,
	})
	if err != nil {
		return nil, fmt.Errorf("connecting to containerd at %s: %w", o.ContainerdAddress, err)
	}
	log := ctrl.LoggerFrom(ctx).WithValues(logInstance, o.Name, logCluster, o.Cluster)
	nw, err := network.New(network.Config{
		StateDir: o.StateDir, PluginDirs: filepath.SplitList(o.CNIPluginDir), Subnet: o.BridgeSubnet, Bridge: o.Bridge,
		Log: log.WithName("network"),
	})
	if err != nil {
		return nil, fmt.Errorf("bridge networking: %w", err)
	}
	pauseBinary := o.BerthBinary
	if err := staticBinary(pauseBinary); err != nil {
		// Other tasks run; these fail to start with a reason that names the flag.
		log.Error(err, "tasks that need a pause container (pidMode or ipcMode task, interactive without pseudoTerminal) will fail to start")
		pauseBinary = ""
	}
	reg, err := machineRegistration(ctx, o, rt)
	if err != nil {
		return nil, err
	}
	sl, ep, err := listenStreaming(o, reg.Addresses)
	if err != nil {
		return nil, err
	}
	reg.StreamingEndpoint = ep
	if sl != nil {
		// No task may publish the streaming server's port, as ECS keeps its agent's
		// ports (51678, 51679) from tasks.
		if reg.ReservedPorts == nil {
			reg.ReservedPorts = registration.DefaultReservedPorts
		}
		reg.ReservedPorts = append(slices.Clone(reg.ReservedPorts), sl.Port())
	}
	// Containers with a network of their own get a resolv.conf built on the
	// instance's; an instance without one gives them none but their dnsServers.
	resolv, err := os.ReadFile("/etc/resolv.conf")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading the instance's resolv.conf: %w", err)
	}
	a, err := NewAgent(Config{Client: c, Cache: reads.cache, Log: log}, InstanceConfig{
		Secrets:      reads.secrets,
		Registration: reg, Runtime: rt, Network: nw, PullPolicy: runtime.PullPolicy(o.PullPolicy),
		StateDir: o.StateDir, StatusInterval: o.StatusInterval, UtilizationInterval: o.UtilizationInterval,
		ResolvConf: string(resolv), DevDir: hostDevDir,
		PauseBinary: pauseBinary,
	})
	if err != nil {
		return nil, err
	}
	return &Node{opts: o, agent: a, inst: a.Instance(o.Name), network: nw, restConfig: cfg, streamingLn: sl}, nil
}

// NewCache builds the cache of an agent process: the Tasks that tasks selects (the
// apiserver filters them), task definition revisions only (not every
// ControllerRevision of the cluster), and the instances' Cluster only. Nothing the
// agent does reads managed fields, which are most of a cached task's memory.
func NewCache(cfg *rest.Config, cluster string, tasks fields.Selector, mapper meta.RESTMapper) (cache.Cache, error) {
	family, err := labels.Parse(ecsv1alpha1.LabelFamily)
	if err != nil {
		return nil, err
	}
	return cache.New(cfg, cache.Options{
		Scheme:           kube.Scheme,
		Mapper:           mapper,
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&ecsv1alpha1.Task{}:          {Field: tasks},
			&appsv1.ControllerRevision{}: {Label: family},
			&ecsv1alpha1.Cluster{}:       {Field: fields.OneTermEqualSelector("metadata.name", cluster)},
		},
	})
}

// machineRegistration describes this machine: containerd's version, its cores and
// memory, its attributes and addresses.
func machineRegistration(ctx context.Context, o Options, rt runtime.Runtime) (registration.Config, error) {
	rtVersion, err := rt.Version(ctx)
	if err != nil {
		return registration.Config{}, fmt.Errorf("asking containerd for its version: %w", err)
	}
	cpu, mem, err := registration.DetectResources(o.ReservedMemoryMiB)
	if err != nil {
		return registration.Config{}, err
	}
	gpus, err := machineGPUs(o)
	if err != nil {
		return registration.Config{}, err
	}
	attrs := registration.BuiltinAttributes(o.Zone)
	for k, v := range o.Attributes {
		attrs[k] = v
	}
	return registration.Config{
		Name: o.Name, Cluster: o.Cluster, CPU: cpu, Memory: mem, GPUs: gpus, Attributes: attrs,
		Addresses: registration.DetectAddresses(), AgentVersion: version.Version,
		RuntimeName: "containerd", RuntimeVersion: rtVersion, LeaseInterval: o.LeaseInterval,
	}, nil
}

// hostDevDir is where the machine's device nodes are: GPUs are detected there and
// their nodes given to the containers they are assigned to.
const hostDevDir = "/dev"

// machineGPUs are the GPUs --gpu-ids declares, or else those found in /dev.
func machineGPUs(o Options) ([]string, error) {
	declared, err := o.declaredGPUs()
	if err != nil || declared != nil {
		return declared, err
	}
	return registration.DetectGPUs(hostDevDir)
}

// Run serves the instance's tasks until ctx ends, with the housekeeping beside it.
func (n *Node) Run(ctx context.Context) error {
	stop := n.startHousekeeping(ctx)
	defer stop()
	// The task networks outlive the agent; the host ports it reserved for them are
	// let go, for its successor to take again.
	defer func() { _ = n.network.Close() }()
	return n.agent.Run(ctx)
}
