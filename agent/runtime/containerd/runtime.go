// Package containerd implements the agent's runtime.Runtime on containerd's v2 Go
// client, with runc as the OCI runtime.
//
// Everything the agent creates lives in one containerd namespace (default "berth"),
// so `ctr -n berth c ls` shows exactly the agent's containers and other users of the
// same containerd (Kubernetes' CRI uses k8s.io) are never touched. Container IDs are
// chosen by the caller (runtime.ContainerID) and every container carries
// runtime.Label* labels, which is all the state the agent needs to find its
// containers again after a restart.
package containerd

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	ctrd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/defaults"
	"github.com/containerd/containerd/v2/pkg/identifiers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"github.com/go-logr/logr"

	"github.com/berthdev/berth/agent/runtime"
)

// Defaults of Options.
const (
	DefaultAddress   = "/run/containerd/containerd.sock"
	DefaultNamespace = "berth"
	// DefaultHostsDir is where containerd's CRI plugin conventionally reads registry
	// host configuration (hosts.toml per registry).
	DefaultHostsDir = "/etc/containerd/certs.d"
	// DefaultFIFODir is containerd's own default for client-side stdio FIFOs.
	DefaultFIFODir = "/run/containerd/fifo"
)

// Options configure New.
type Options struct {
	// Address of containerd's gRPC socket (DefaultAddress).
	Address string
	// Namespace for every image and container of the agent (DefaultNamespace).
	Namespace string
	// Snapshotter for container filesystems; "" uses containerd's default (overlayfs).
	Snapshotter string
	// HostsDir holds registry host configuration in containerd's certs.d layout:
	// <host[:port]>/hosts.toml (mirrors, CA certificates, skip_verify, plain HTTP).
	// Registries on loopback addresses need none: they are tried over HTTPS, then
	// plain HTTP, as Docker does. DefaultHostsDir when empty.
	HostsDir string
	// FIFODir holds the FIFOs that carry Exec output (DefaultFIFODir).
	FIFODir string
	// InitPath is a statically linked init (tini-static, catatonit) on the host,
	// bind-mounted as PID 1 for ContainerSpec.Init. When empty, tini-static,
	// catatonit and docker-init are looked up on PATH when a container asks for one.
	InitPath string
	// HelperBinary is the berth binary (a static build), run by containerd's shim as
	// the log driver of containers with a terminal (`berth log-driver`). Containers
	// with a terminal cannot start without it.
	HelperBinary string
	// RuncRoot is runc's state directory; "" keeps runc's default
	// (/run/containerd/runc).
	RuncRoot string
	// DialTimeout bounds the connection to containerd (10s).
	DialTimeout time.Duration
}

// Runtime is the containerd implementation of runtime.Runtime.
type Runtime struct {
	client      *ctrd.Client
	namespace   string
	snapshotter string
	hostsDir    string
	fifoDir     string
	initPath    string
	runcRoot    string
	helper      string
	locks       idLocks
	used        imageUse
	creds       credentialMemo
	// started and execSeq name interactive exec processes (streamExecID).
	started time.Time
	execSeq atomic.Uint64
}

var (
	_ runtime.Runtime = (*Runtime)(nil)
	_ runtime.Execer  = (*Runtime)(nil)
)

// New connects to containerd and makes sure the namespace exists.
func New(ctx context.Context, opts Options) (*Runtime, error) {
	if opts.Address == "" {
		opts.Address = DefaultAddress
	}
	if opts.Namespace == "" {
		opts.Namespace = DefaultNamespace
	}
	if opts.HostsDir == "" {
		opts.HostsDir = DefaultHostsDir
	}
	if opts.FIFODir == "" {
		opts.FIFODir = DefaultFIFODir
	}
	if opts.DialTimeout == 0 {
		opts.DialTimeout = 10 * time.Second
	}
	if err := identifiers.Validate(opts.Namespace); err != nil {
		return nil, fmt.Errorf("containerd namespace %q: %w", opts.Namespace, err)
	}
	client, err := ctrd.New(opts.Address,
		ctrd.WithDefaultNamespace(opts.Namespace),
		ctrd.WithTimeout(opts.DialTimeout))
	if err != nil {
		return nil, fmt.Errorf("connecting to containerd at %s: %w", opts.Address, err)
	}
	r := &Runtime{
		started:     time.Now(),
		client:      client,
		namespace:   opts.Namespace,
		snapshotter: opts.Snapshotter,
		hostsDir:    opts.HostsDir,
		fifoDir:     opts.FIFODir,
		initPath:    opts.InitPath,
		runcRoot:    opts.RuncRoot,
		helper:      opts.HelperBinary,
	}
	ctx = r.withNamespace(ctx)
	if err := client.NamespaceService().Create(ctx, opts.Namespace, nil); err != nil && !errdefs.IsAlreadyExists(err) {
		_ = client.Close()
		return nil, fmt.Errorf("creating containerd namespace %q: %w", opts.Namespace, err)
	}
	if r.snapshotter == "" {
		// Resolve once so that images are unpacked for, and containers created on, the
		// same snapshotter.
		if r.snapshotter, err = client.GetLabel(ctx, defaults.DefaultSnapshotterNSLabel); err != nil || r.snapshotter == "" {
			r.snapshotter = defaults.DefaultSnapshotter
		}
	}
	if err := r.releaseLeases(ctx); err != nil {
		logr.FromContextOrDiscard(ctx).Error(err, "releasing the leases of a previous agent; containerd collects them when they expire")
	}
	return r, nil
}

// LeaseLabel is on the containerd leases the runtime takes around pulls and creates.
// A lease keeps what an operation writes (downloaded layers, unpacked snapshots)
// from containerd's garbage collector until the operation is done. An agent killed in
// the middle of one leaves its lease, which would keep half a layer and an active
// snapshot for leaseExpiry; New deletes those, and containerd collects what they held.
const LeaseLabel = runtime.LabelPrefix + "lease"

// leaseExpiry is when containerd drops a lease no one deleted (its clients' default).
const leaseExpiry = 24 * time.Hour

// withLease puts a new lease of the runtime on ctx, unless ctx has one; done deletes it.
func (r *Runtime) withLease(ctx context.Context) (context.Context, func(context.Context) error, error) {
	leased, done, err := r.client.WithLease(ctx, leases.WithRandomID(), leases.WithExpiration(leaseExpiry),
		leases.WithLabel(LeaseLabel, "true"))
	if err != nil {
		return ctx, done, fmt.Errorf("creating lease: %w", err)
	}
	return leased, done, nil
}

// releaseLeases deletes the runtime's leases found in its namespace. It runs in New,
// before the runtime takes any lease, and one agent owns a namespace: they are what
// a previous agent process left when it was killed.
func (r *Runtime) releaseLeases(ctx context.Context) error {
	ls := r.client.LeasesService()
	stale, err := ls.List(ctx, "labels."+strconv.Quote(LeaseLabel))
	if err != nil {
		return fmt.Errorf("listing leases: %w", err)
	}
	var errs []error
	for _, l := range stale {
		if err := ls.Delete(ctx, l, leases.SynchronousDelete); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("deleting lease %s: %w", l.ID, err))
		}
	}
	if len(stale) > 0 {
		logr.FromContextOrDiscard(ctx).Info("released the leases of interrupted pulls and creates", "count", len(stale))
	}
	return errors.Join(errs...)
}

// Close closes the connection to containerd. Containers keep running.
func (r *Runtime) Close() error { return r.client.Close() }

// Namespace is the containerd namespace the runtime works in.
func (r *Runtime) Namespace() string { return r.namespace }

// Snapshotter is the snapshotter the runtime unpacks images for.
func (r *Runtime) Snapshotter() string { return r.snapshotter }

// Version returns containerd's version, e.g. "v2.2.9".
func (r *Runtime) Version(ctx context.Context) (string, error) {
	v, err := r.client.Version(r.withNamespace(ctx))
	if err != nil {
		return "", fmt.Errorf("getting containerd version: %w", err)
	}
	return v.Version, nil
}

// withNamespace puts the runtime's namespace on ctx (the client's default would
// apply anyway; being explicit keeps a caller's namespace from leaking in), and
// routes containerd's client logging to the caller's logger.
func (r *Runtime) withNamespace(ctx context.Context) context.Context {
	return withClientLogger(namespaces.WithNamespace(ctx, r.namespace))
}

// notFound wraps a containerd NotFound for container id into runtime.ErrNotFound.
func notFound(id string, err error) error {
	return fmt.Errorf("container %q: %w: %w", id, runtime.ErrNotFound, err)
}

// idLocks serializes operations on one container ID within this process, so a Create
// racing a Delete of the same container cannot interleave.
type idLocks struct {
	mu sync.Mutex
	m  map[string]*idLock
}

type idLock struct {
	sync.Mutex
	refs int
}

func (l *idLocks) lock(id string) (unlock func()) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*idLock{}
	}
	k := l.m[id]
	if k == nil {
		k = &idLock{}
		l.m[id] = k
	}
	k.refs++
	l.mu.Unlock()
	k.Lock()
	return func() {
		k.Unlock()
		l.mu.Lock()
		k.refs--
		if k.refs == 0 {
			delete(l.m, id)
		}
		l.mu.Unlock()
	}
}

var errNoInit = errors.New("no init binary: set Options.InitPath or install tini-static")

var errNoHelper = errors.New("a container with a terminal needs the berth binary as its log driver: set Options.HelperBinary")
