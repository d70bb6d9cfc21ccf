// Package up runs the whole of Berth on one machine: `berth up` starts etcd, a
// kube-apiserver with real TLS, containerd, a loopback OCI registry, the manager
// and one agent (plus optional hollow instances), the ECS API and the web console
// under one state directory, installs the CRDs and RBAC, pushes the demo image,
// applies the samples and serves the sample web Service on a local port. `berth down` stops a running `up`, or
// cleans up after one that died.
//
// Every component runs as its own process, with its log in <state>/logs, so the
// setup is the production one in miniature: the manager and the agent talk to the
// apiserver with their own client certificates and the generated ClusterRoles.
//
// Layout of the state directory:
//
//	kubeconfig                admin kubeconfig (system:masters)
//	console-token             the web console's access token (berth console --token-file)
//	pki/                      CA, serving and client certificates, service-account key
//	kubeconfigs/              the manager's, the agent's and the ECS API's kubeconfigs
//	aws/                      config and credentials for the aws CLI and SDKs
//	etcd/ containerd/ registry/ agent/ runc/   each component's state
//	logs/<component>.log      what each component printed
//	run/<component>.pid       processes of the running `up`; run/up.lock its lock
package up

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Options configures Run.
type Options struct {
	// StateDir holds everything `up` keeps (see the package comment).
	StateDir string
	// BinDir has etcd, kube-apiserver, containerd, containerd-shim-runc-v2 and
	// registry (`make tools` links them into bin/). Default: the directory of the
	// berth binary; each is also looked up in $PATH.
	BinDir string
	// APIServerPort is the apiserver's port on 127.0.0.1; when it is taken, a free
	// one is used instead.
	APIServerPort int
	// WebPort is where the sample web Service is served on 127.0.0.1; when it is
	// taken, a free one is used instead.
	WebPort int
	// ConsolePort is where the web console (`berth console`) listens on 127.0.0.1;
	// when it is taken, a free one is used instead. 0 runs no console.
	ConsolePort int
	// InstanceName is the local ContainerInstance. The default, worker-1, is the
	// instance the samples pre-register, so the agent takes it over.
	InstanceName string
	// HollowInstances adds simulated instances (`berth hollow`) to the cluster to
	// try placement on a laptop; their tasks only pretend to run.
	HollowInstances int
	// BridgeSubnet is the IPv4 range of bridge-mode task addresses (the agent's
	// --bridge-subnet; empty for its default).
	BridgeSubnet string
	// BridgeName is the host bridge of bridge-mode tasks (the agent's
	// --bridge-name; empty for its default). A bridge holds one subnet.
	BridgeName string
	// NoSamples skips applying the samples (and serving the web Service).
	NoSamples bool
	// Namespace receives the namespaced samples.
	Namespace string
	// Out receives progress and the final summary.
	Out io.Writer
}

// Defaults of Options.
const (
	DefaultAPIServerPort = 6443
	DefaultWebPort       = 8080
	DefaultConsolePort   = 8484
	DefaultInstanceName  = "worker-1"
	DefaultNamespace     = "default"
	// ClusterName is the cluster the agent and hollow instances join; the samples
	// use it too.
	ClusterName = "default"
)

// DefaultOptions returns the defaults, with state in ./.berth.
func DefaultOptions() Options {
	return Options{
		StateDir:      ".berth",
		APIServerPort: DefaultAPIServerPort,
		WebPort:       DefaultWebPort,
		ConsolePort:   DefaultConsolePort,
		InstanceName:  DefaultInstanceName,
		Namespace:     DefaultNamespace,
		Out:           os.Stdout,
	}
}

// maxSocketPath is the longest path a unix socket may have (sun_path is 108 bytes
// with the terminating NUL).
const maxSocketPath = 107

// Validate checks o and makes StateDir and BinDir absolute.
func (o *Options) Validate() error {
	var errs []error
	if o.StateDir == "" {
		errs = append(errs, errors.New("--state-dir: must not be empty"))
	} else if abs, err := filepath.Abs(o.StateDir); err != nil {
		errs = append(errs, fmt.Errorf("--state-dir: %w", err))
	} else {
		o.StateDir = abs
		if sock := newLayout(abs).containerdSocket(); len(sock) > maxSocketPath {
			errs = append(errs, fmt.Errorf("--state-dir: %s is too long: containerd's socket %s would exceed the %d bytes a unix socket path may have", abs, sock, maxSocketPath))
		}
	}
	if o.BinDir == "" {
		if exe, err := os.Executable(); err == nil {
			o.BinDir = filepath.Dir(exe)
		}
	}
	for _, p := range []struct {
		flag string
		v    int
	}{{"--apiserver-port", o.APIServerPort}, {"--web-port", o.WebPort}} {
		if p.v < 1 || p.v > 65535 {
			errs = append(errs, fmt.Errorf("%s: %d is not a port (1-65535)", p.flag, p.v))
		}
	}
	if err := validConsolePort(o.ConsolePort); err != nil {
		errs = append(errs, err)
	}
	if o.HollowInstances < 0 || o.HollowInstances > 10000 {
		errs = append(errs, fmt.Errorf("--hollow-instances: %d is out of range (0-10000)", o.HollowInstances))
	}
	if o.InstanceName == "" {
		errs = append(errs, errors.New("--instance-name: must not be empty"))
	}
	if o.Namespace == "" {
		errs = append(errs, errors.New("--namespace: must not be empty"))
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	return errors.Join(errs...)
}

// layout names the files and directories under the state directory.
type layout struct{ dir string }

func newLayout(dir string) layout { return layout{dir: dir} }

func (l layout) path(elem ...string) string {
	return filepath.Join(append([]string{l.dir}, elem...)...)
}

func (l layout) adminKubeconfig() string      { return l.path("kubeconfig") }
func (l layout) pki(name string) string       { return l.path("pki", name) }
func (l layout) kubeconfig(who string) string { return l.path("kubeconfigs", who+".kubeconfig") }
func (l layout) logFile(name string) string   { return l.path("logs", name+".log") }
func (l layout) pidFile(name string) string   { return l.path("run", name+".pid") }
func (l layout) lockFile() string             { return l.path("run", "up.lock") }
func (l layout) containerdDir() string        { return l.path("containerd") }
func (l layout) containerdSocket() string     { return l.path("containerd", "containerd.sock") }
func (l layout) registryHostsDir() string     { return l.path("containerd", "certs.d") }
func (l layout) agentStateDir() string        { return l.path("agent") }
func (l layout) runcRoot() string             { return l.path("runc") }
func (l layout) etcdDataDir() string          { return l.path("etcd") }
func (l layout) registryDir() string          { return l.path("registry") }
func (l layout) runOptionsFile() string       { return l.path("run", "options.json") }
func (l layout) summaryFile() string          { return l.path("run", "summary.txt") }
func (l layout) containerdConfigFile() string { return l.path("containerd", "config.toml") }
func (l layout) registryConfigFile() string   { return l.path("registry", "config.yml") }
func (l layout) awsDir() string               { return l.path("aws") }
func (l layout) hostsFile(host string) string {
	return filepath.Join(l.registryHostsDir(), host, "hosts.toml")
}
func (l layout) dirs() []string {
	return []string{
		l.path("pki"), l.path("kubeconfigs"), l.path("logs"), l.path("run"), l.etcdDataDir(),
		l.containerdDir(), l.registryHostsDir(), l.agentStateDir(), l.runcRoot(), l.registryDir(),
	}
}

// runOptions are the options of a running `up` that a later `down` (or the next
// `up`, after a crash) needs to clean up after it.
type runOptions struct {
	InstanceName string `json:"instanceName"`
	BridgeSubnet string `json:"bridgeSubnet,omitempty"`
	BridgeName   string `json:"bridgeName,omitempty"`
}

func saveRunOptions(l layout, o Options) error {
	b, err := json.Marshal(runOptions{InstanceName: o.InstanceName, BridgeSubnet: o.BridgeSubnet, BridgeName: o.BridgeName})
	if err != nil {
		return err
	}
	return writeFile(l.runOptionsFile(), b, 0o644)
}

// loadRunOptions sets in o what the last `up` ran with, when it is recorded.
func loadRunOptions(l layout, o *Options) {
	b, err := os.ReadFile(l.runOptionsFile())
	if err != nil {
		return
	}
	var r runOptions
	if json.Unmarshal(b, &r) == nil && r.InstanceName != "" {
		o.InstanceName, o.BridgeSubnet, o.BridgeName = r.InstanceName, r.BridgeSubnet, r.BridgeName
	}
}
