// Package network gives bridge-mode tasks their network, as the Amazon ECS agent's
// bridge mode does with Docker's bridge, but through CNI plugins driven by
// containerd's go-cni. Each task gets a network namespace at a deterministic path,
// StateDir/netns/<taskUID>, shared by all its containers. One CNI ADD of the agent's
// conflist (StateDir/cni/berth.conflist) attaches it: the bridge plugin puts a veth
// on the berth0 bridge with an address from host-local IPAM (masqueraded, the bridge
// as gateway, hairpin on), the portmap plugin publishes the task's port mappings on
// the instance with iptables DNAT, and the loopback plugin brings lo up. Dynamic host
// ports (hostPort 0) are picked from an ephemeral range, 49153-65535 as in ECS.
//
// What a task holds (namespace, address, host ports) is written to
// StateDir/network/<taskUID>.json, atomically, before Setup returns. A restarted
// agent reads those files (Recover) before it allocates any port, so no host port is
// handed out twice; running tasks find their namespace again; and the networks of
// tasks that went away while the agent was down can still be torn down. The engine's
// recovered state cannot replace the file: containers carry no host ports, and a
// task whose containers were never created still holds a namespace and ports.
package network

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	gocni "github.com/containerd/go-cni"
	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/taskrules"
)

// Defaults of Config.
const (
	DefaultStateDir  = "/var/lib/berth"
	DefaultPluginDir = "/usr/lib/cni"
	DefaultBridge    = "berth0"
	DefaultSubnet    = "10.200.0.0/16"
	// DefaultPortMin and DefaultPortMax are ECS's dynamic host port range, the one
	// every component assumes (taskrules).
	DefaultPortMin = taskrules.DynamicPortMin
	DefaultPortMax = taskrules.DynamicPortMax
)

// networkName is the CNI network's name; host-local keeps its leases under it.
const networkName = "berth"

// ifName is the task's interface on the bridge.
const ifName = "eth0"

// cleanupTimeout bounds the teardown of a setup that failed, which runs even when the
// setup's context ended.
const cleanupTimeout = 30 * time.Second

// Config configures a Manager.
type Config struct {
	// StateDir holds netns/<taskUID> (the namespaces), network/<taskUID>.json (what
	// each task holds) and cni/ (the conflist and host-local's leases). Default
	// /var/lib/berth, the engine's.
	StateDir string
	// PluginDirs are searched for the CNI plugin binaries (bridge, host-local,
	// portmap, loopback). Default /usr/lib/cni, where Debian installs them.
	PluginDirs []string
	// Bridge is the name of the host bridge. Default berth0.
	Bridge string
	// Subnet is the IPv4 range task addresses come from. Default 10.200.0.0/16.
	Subnet string
	// PortMin and PortMax bound dynamic host ports. Default 49153-65535.
	PortMin, PortMax int32
	// Log receives the manager's logs.
	Log logr.Logger
}

// plugins is what the Manager needs of go-cni.
type plugins interface {
	SetupSerially(ctx context.Context, id string, path string, opts ...gocni.NamespaceOpts) (*gocni.Result, error)
	Remove(ctx context.Context, id string, path string, opts ...gocni.NamespaceOpts) error
}

// Manager sets up and tears down the networks of bridge-mode tasks. Its methods are
// safe for concurrent use; they run one at a time, as host ports are allocated
// across tasks.
type Manager struct {
	cfg Config
	log logr.Logger
	cni plugins

	mu     sync.Mutex
	loaded bool
	tasks  map[types.UID]*taskState
	ports  hostPorts
}

// New checks cfg, writes the conflist and loads it. Missing plugin binaries are not
// an error here: Setup reports them, so an instance without CNI still runs host and
// none tasks.
func New(cfg Config) (*Manager, error) {
	cfg = withDefaults(cfg)
	if err := validate(&cfg); err != nil {
		return nil, err
	}
	conf, err := conflist(&cfg)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(cfg.StateDir, "cni", networkName+".conflist")
	if err := writeFileAtomic(path, conf); err != nil {
		return nil, fmt.Errorf("writing the CNI configuration: %w", err)
	}
	c, err := gocni.New(gocni.WithPluginDir(cfg.PluginDirs), gocni.WithInterfacePrefix("eth"))
	if err != nil {
		return nil, fmt.Errorf("initializing CNI: %w", err)
	}
	if err := c.Load(gocni.WithConfListFile(path)); err != nil {
		return nil, fmt.Errorf("loading %s: %w", path, err)
	}
	return newManager(cfg, c), nil
}

func newManager(cfg Config, c plugins) *Manager {
	cfg = withDefaults(cfg)
	log := cfg.Log
	if log.GetSink() == nil {
		log = logr.Discard()
	}
	return &Manager{cfg: cfg, log: log, cni: c, tasks: map[types.UID]*taskState{}, ports: newHostPorts(cfg.PortMin, cfg.PortMax, reservePort)}
}

func withDefaults(cfg Config) Config {
	if cfg.StateDir == "" {
		cfg.StateDir = DefaultStateDir
	}
	if abs, err := filepath.Abs(cfg.StateDir); err == nil {
		cfg.StateDir = abs
	}
	if len(cfg.PluginDirs) == 0 {
		cfg.PluginDirs = []string{DefaultPluginDir}
	}
	if cfg.Bridge == "" {
		cfg.Bridge = DefaultBridge
	}
	if cfg.Subnet == "" {
		cfg.Subnet = DefaultSubnet
	}
	if cfg.PortMin == 0 && cfg.PortMax == 0 {
		cfg.PortMin, cfg.PortMax = DefaultPortMin, DefaultPortMax
	}
	return cfg
}

func validate(cfg *Config) error {
	ip, ipnet, err := net.ParseCIDR(cfg.Subnet)
	switch {
	case err != nil:
		return fmt.Errorf("bridge subnet: %w", err)
	case ip.To4() == nil:
		return fmt.Errorf("bridge subnet %s is not IPv4", cfg.Subnet)
	}
	if ones, _ := ipnet.Mask.Size(); ones > 30 {
		return fmt.Errorf("bridge subnet %s is too small", cfg.Subnet)
	}
	cfg.Subnet = ipnet.String()
	if cfg.PortMin < 1 || cfg.PortMax > 65535 || cfg.PortMin > cfg.PortMax {
		return fmt.Errorf("dynamic host port range %d-%d is not within 1-65535", cfg.PortMin, cfg.PortMax)
	}
	if len(cfg.Bridge) > 15 {
		return fmt.Errorf("bridge name %q is longer than 15 characters", cfg.Bridge)
	}
	return nil
}

// uidPattern keeps task UIDs safe as file names and CNI container IDs.
var uidPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

func checkUID(uid types.UID) error {
	if len(uid) > 128 || !uidPattern.MatchString(string(uid)) {
		return fmt.Errorf("task UID %q cannot name a network namespace", uid)
	}
	return nil
}

// NetNSPath is where the network namespace of the task lives while it has one.
func (m *Manager) NetNSPath(uid types.UID) string {
	return filepath.Join(m.cfg.StateDir, "netns", string(uid))
}

func (m *Manager) stateDir() string { return filepath.Join(m.cfg.StateDir, "network") }

func (m *Manager) statePath(uid types.UID) string {
	return filepath.Join(m.stateDir(), string(uid)+".json")
}

// Setup gives the task its network: a namespace attached to the bridge, with ports
// published as mappings asks (hostPort 0 or unset picks a dynamic port). It returns
// the namespace's path and one binding per mapping, in order. It is idempotent: a
// task whose namespace is set up already (also by the agent before a restart) gets
// the same namespace and bindings back. On failure nothing of the task's network is
// left.
func (m *Manager) Setup(ctx context.Context, uid types.UID, mappings []ecsv1alpha1.PortMapping) (string, string, []ecsv1alpha1.NetworkBinding, error) {
	if err := checkUID(uid); err != nil {
		return "", "", nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.loadLocked(); err != nil {
		return "", "", nil, err
	}
	if st, ok := m.tasks[uid]; ok && isNetNS(st.NetNS) {
		return st.NetNS, st.IP, st.bindings(), nil
	}
	// What is left of an earlier attempt (an agent killed in the middle of a setup, a
	// namespace gone with a reboot) goes first.
	if err := m.teardownLocked(ctx, uid); err != nil {
		return "", "", nil, fmt.Errorf("removing the earlier network of the task: %w", err)
	}
	st, err := m.setupLocked(ctx, uid, mappings)
	if err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if cerr := m.teardownLocked(cctx, uid); cerr != nil {
			m.log.Error(cerr, "cleaning up after a failed network setup", logTaskUID, uid)
		}
		return "", "", nil, err
	}
	m.log.V(1).Info("task network set up", logTaskUID, uid, logIP, st.IP, logPorts, st.Ports)
	return st.NetNS, st.IP, st.bindings(), nil
}

func (m *Manager) setupLocked(ctx context.Context, uid types.UID, mappings []ecsv1alpha1.PortMapping) (*taskState, error) {
	ports, holds, err := m.allocate(uid, mappings)
	if err != nil {
		return nil, err
	}
	st := &taskState{Version: stateVersion, NetNS: m.NetNSPath(uid), Ports: ports, holds: holds}
	m.tasks[uid] = st // holds the ports, and tells a cleanup what to delete
	if err := createNetNS(st.NetNS); err != nil {
		return nil, err
	}
	res, err := m.cni.SetupSerially(ctx, string(uid), st.NetNS, gocni.WithCapabilityPortMap(portMaps(ports)))
	if err != nil {
		return nil, fmt.Errorf("CNI ADD: %w", err)
	}
	st.IP = ipOf(res)
	if err := writeState(m.statePath(uid), st); err != nil {
		return nil, err
	}
	return st, nil
}

// ipOf is the task's IPv4 address on the bridge.
func ipOf(res *gocni.Result) string {
	if res == nil {
		return ""
	}
	if c := res.Interfaces[ifName]; c != nil {
		for _, ip := range c.IPConfigs {
			if ip.IP.To4() != nil {
				return ip.IP.String()
			}
		}
	}
	return ""
}

// Teardown removes the task's network: CNI DEL (which releases its address and
// unpublishes its ports), then its namespace and state. A task without a network, or
// whose network is gone already, is fine. After an error the ports stay held, and
// Teardown can be called again.
func (m *Manager) Teardown(ctx context.Context, uid types.UID) error {
	if checkUID(uid) != nil {
		return nil // Setup never made a network for it
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.loadLocked(); err != nil {
		return err
	}
	return m.teardownLocked(ctx, uid)
}

func (m *Manager) teardownLocked(ctx context.Context, uid types.UID) error {
	path, statePath := m.NetNSPath(uid), m.statePath(uid)
	st, known := m.tasks[uid]
	if !known && !exists(path) && !exists(statePath) {
		return nil
	}
	ns := ""
	if isNetNS(path) {
		ns = path
	}
	var opts []gocni.NamespaceOpts
	if known {
		opts = append(opts, gocni.WithCapabilityPortMap(portMaps(st.Ports)))
	}
	if err := m.cni.Remove(ctx, string(uid), ns, opts...); err != nil {
		return fmt.Errorf("CNI DEL: %w", err)
	}
	if err := removeNetNS(path); err != nil {
		return err
	}
	if err := os.Remove(statePath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", statePath, err)
	}
	if known {
		st.release() // only now: the ports are unpublished
	}
	delete(m.tasks, uid)
	m.log.V(1).Info("task network torn down", logTaskUID, uid)
	return nil
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// Recover re-reads what tasks hold from the state directory, as after an agent
// restart, and returns every task that has a network (a state file or a namespace),
// sorted. The engine calls it before it runs any task; Setup and Teardown load the
// state themselves if it was not called.
func (m *Manager) Recover(context.Context) ([]types.UID, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.releaseLocked()
	if err := m.loadLocked(); err != nil {
		return nil, err
	}
	seen := map[types.UID]bool{}
	for uid := range m.tasks {
		seen[uid] = true
	}
	for dir, suffix := range map[string]string{m.stateDir(): ".json", filepath.Join(m.cfg.StateDir, "netns"): ""} {
		names, err := readDirNames(dir)
		if err != nil {
			return nil, err
		}
		for _, name := range names {
			uid := types.UID(strings.TrimSuffix(name, suffix))
			if strings.HasSuffix(name, suffix) && checkUID(uid) == nil {
				seen[uid] = true
			}
		}
	}
	out := make([]types.UID, 0, len(seen))
	for uid := range seen {
		out = append(out, uid)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	if len(out) > 0 {
		m.log.Info("recovered task networks", logCount, len(out))
	}
	return out, nil
}

// loadLocked reads the state files once. An unreadable one is logged and skipped:
// its task's namespace is still torn down, its ports are not known.
func (m *Manager) loadLocked() error {
	if m.loaded {
		return nil
	}
	names, err := readDirNames(m.stateDir())
	if err != nil {
		return err
	}
	for _, name := range names {
		uid := types.UID(strings.TrimSuffix(name, ".json"))
		if !strings.HasSuffix(name, ".json") || checkUID(uid) != nil {
			continue
		}
		st, err := readState(filepath.Join(m.stateDir(), name))
		if err != nil {
			m.log.Error(err, "skipping an unreadable network state file", logTaskUID, uid)
			continue
		}
		m.reserveAgain(uid, st)
		m.tasks[uid] = st
	}
	m.loaded = true
	return nil
}

// reserveAgain reserves the published ports of a task set up before the agent
// restarted. A port it cannot have (a process of the host took it while no agent
// held it) stays published to the task: logged, not fatal, as the task runs on.
func (m *Manager) reserveAgain(uid types.UID, st *taskState) {
	for _, p := range st.Ports {
		for i := range p.count() {
			c, err := m.ports.reserve(string(p.Protocol), p.HostPort+i)
			if err != nil {
				m.log.Error(err, "a published host port of the task could not be reserved again", logTaskUID, uid, logPorts, p.HostPort+i)
				continue
			}
			st.holds = append(st.holds, c)
		}
	}
}

// Close releases the host port reservations the Manager holds, leaving the task
// networks as they are: for an agent that stops, whose successor recovers them. A
// later call loads the state again.
func (m *Manager) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.releaseLocked()
	return nil
}

func (m *Manager) releaseLocked() {
	for _, st := range m.tasks {
		st.release()
	}
	m.tasks = map[types.UID]*taskState{}
	m.loaded = false
}

func readDirNames(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", dir, err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names, nil
}
