package up

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/kube"
	"github.com/berthdev/berth/internal/up/awsconfig"
	"github.com/berthdev/berth/internal/up/localrun"
)

// session is one `up` (or the `down` that cleans up after one that died): the
// component processes and the admin client.
type session struct {
	o     Options
	l     layout
	out   *printer
	berth string

	procs map[string]*proc

	adminCfg *rest.Config
	admin    client.Client

	etcdPort, registryPort int
	snapshotter            string
	demoDigest             string
	agentURL, metricsURL   string
	// gatewayURL is the manager's read gateway, which the agent reads through.
	gatewayURL string
	apiURL     string
	consoleURL string
	aws        awsconfig.Files

	// stopProxy ends the web proxy, when it runs.
	stopProxy context.CancelFunc
	webURL    string
}

// printer writes progress lines; components report from several goroutines.
type printer struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *printer) printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, _ = fmt.Fprintf(p.w, format+"\n", args...)
}

// poll calls cond every 200 ms until it returns true or an error, or ctx ends.
func poll(ctx context.Context, cond func(context.Context) (bool, error)) error {
	for {
		ok, err := cond(ctx)
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Run starts everything, prints how to use it and serves until ctx ends (Ctrl-C)
// or `berth down` signals it; then it stops everything and removes what the
// components left on the machine. A component that fails to start stops the whole
// run with the end of its log.
func Run(ctx context.Context, o Options) error {
	if err := o.Validate(); err != nil {
		return err
	}
	s := &session{o: o, l: newLayout(o.StateDir), out: &printer{w: o.Out}, procs: map[string]*proc{}}
	if err := s.preflight(); err != nil {
		return err
	}
	for _, d := range s.l.dirs() {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	unlock, err := lock(s.l)
	if err != nil {
		return err
	}
	defer unlock()
	if err := s.cleanupPrevious(); err != nil {
		return err
	}
	if err := saveRunOptions(s.l, o); err != nil {
		return err
	}
	s.out.printf("berth up: state in %s, logs in %s", o.StateDir, s.l.path("logs"))
	runErr := s.start(ctx)
	if runErr == nil {
		s.printSummary()
		runErr = s.serve(ctx)
	}
	s.out.printf("berth up: stopping")
	if err := s.shutdown(); err != nil {
		runErr = errors.Join(runErr, err)
	}
	if errors.Is(runErr, context.Canceled) {
		return nil // Ctrl-C or `berth down`: a clean stop
	}
	return runErr
}

// preflight checks what `up` needs of the machine before starting anything.
func (s *session) preflight() error {
	var errs []error
	if os.Geteuid() != 0 {
		errs = append(errs, errors.New("berth up runs real containers with containerd and runc, which needs root: run it with sudo"))
	}
	for _, b := range binaries {
		if _, err := findBinary(s.o.BinDir, b); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := exec.LookPath("runc"); err != nil {
		if _, err := os.Stat("/usr/sbin/runc"); err != nil {
			errs = append(errs, errors.New("runc not found: install it (Debian: apt-get install runc)"))
		}
	}
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		errs = append(errs, errors.New("the CNI plugins are not in /usr/lib/cni: install them (Debian: apt-get install containernetworking-plugins)"))
	}
	exe, err := os.Executable()
	if err != nil {
		errs = append(errs, fmt.Errorf("finding the berth binary: %w", err))
	}
	s.berth = exe
	return errors.Join(errs...)
}

// lock takes the state directory's lock, so a second `up` on it fails at once
// instead of starting a second set of components on the same files.
func lock(l layout) (func(), error) {
	f, err := os.OpenFile(l.lockFile(), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		pid, _ := os.ReadFile(l.lockFile())
		_ = f.Close()
		return nil, fmt.Errorf("berth up is already running on %s (pid %s): stop it with Ctrl-C or `berth down --state-dir %s`",
			l.dir, strings.TrimSpace(string(pid)), l.dir)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() {
		_ = f.Truncate(0)
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Close()
	}, nil
}

// cleanupPrevious stops what an `up` that did not stop cleanly (killed, machine
// crash) left running, as `berth down` would.
func (s *session) cleanupPrevious() error {
	current := s.o
	defer func() { s.o = current }()
	loadRunOptions(s.l, &s.o) // clean up what the previous run had
	if !s.adoptAll() {
		_, err := localrun.UnmountUnder(s.l.dir)
		return err
	}
	s.out.printf("berth up: a previous run did not stop cleanly; cleaning up first")
	return s.shutdown()
}

// adoptAll finds the components of a previous run through their pid files.
func (s *session) adoptAll() bool {
	found := false
	for _, name := range stopOrder {
		if p := adoptProc(s.l, name); p != nil {
			s.procs[name] = p
			found = true
		}
	}
	if found {
		if cfg, err := clientcmd.BuildConfigFromFlags("", s.l.adminKubeconfig()); err == nil {
			s.adminCfg = cfg
			s.admin, _ = newClient(cfg)
		}
	}
	return found
}

func newClient(cfg *rest.Config) (client.Client, error) {
	return client.New(cfg, client.Options{Scheme: kube.Scheme})
}

// serve waits until ctx ends or a component exits.
func (s *session) serve(ctx context.Context) error {
	exited := make(chan *proc, len(s.procs))
	for _, p := range s.procs {
		go func(p *proc) {
			select {
			case <-p.exited:
				exited <- p
			case <-ctx.Done():
			}
		}(p)
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case p := <-exited:
		return fmt.Errorf("%s exited unexpectedly; the end of %s:\n%s", p.name, p.logPath, logTail(p.logPath, 20))
	}
}

// shutdown stops the components in order and removes what they left: tasks are
// stopped through the agent, then leftover networks and containers, shims and
// mounts under the state directory are removed.
func (s *session) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if s.stopProxy != nil {
		s.stopProxy()
	}
	var errs []error
	stop := func(name string, grace time.Duration) {
		if p := s.procs[name]; p != nil {
			if err := p.stop(grace); err != nil {
				errs = append(errs, err)
			}
			delete(s.procs, name)
		}
	}
	stop(compConsole, 10*time.Second)
	stop(compAPI, 15*time.Second)
	stop(compHollow, 30*time.Second)
	stop(compManager, 30*time.Second)
	if s.alive(compAPIServer) && s.alive(compAgent) && s.admin != nil {
		if err := drainInstance(ctx, s.admin, s.o.InstanceName, func(m string) { s.out.printf("  %s", m) }); err != nil {
			errs = append(errs, fmt.Errorf("stopping the tasks of %s: %w", s.o.InstanceName, err))
		}
	}
	stop(compAgent, 30*time.Second)
	stop(compGateway, 10*time.Second)
	killed, err := cleanupLocal(ctx, s.l, s.o, s.alive(compContainerd))
	if err != nil {
		errs = append(errs, err)
	}
	for _, k := range killed {
		s.out.printf("  removed leftover %s", k)
	}
	if s.alive(compContainerd) {
		// containerd shuts each shim down after its task's delete: give them that
		// time while it still runs.
		_ = localrun.LeftoverShims(s.l.containerdSocket(), 5*time.Second)
	}
	stop(compContainerd, 15*time.Second)
	for _, shim := range localrun.LeftoverShims(s.l.containerdSocket(), 5*time.Second) {
		s.out.printf("  killed leftover containerd shim %s", shim)
		_ = syscall.Kill(shim.PID, syscall.SIGKILL)
	}
	stop(compRegistry, 10*time.Second)
	stop(compAPIServer, 30*time.Second)
	stop(compEtcd, 30*time.Second)
	if _, err := localrun.UnmountUnder(s.l.dir); err != nil {
		errs = append(errs, err)
	}
	_ = os.Remove(s.l.summaryFile())
	if len(errs) == 0 {
		s.out.printf("berth up: stopped; no containers, mounts or processes left")
	}
	return errors.Join(errs...)
}

func (s *session) alive(name string) bool {
	p := s.procs[name]
	return p != nil && p.alive()
}

// start brings the components up one after the other, each ready before the next.
func (s *session) start(ctx context.Context) error {
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"certificates", s.startPKI},
		{compEtcd, s.startEtcd},
		{compAPIServer, s.startAPIServer},
		{"CRDs and RBAC", s.bootstrap},
		{compRegistry, s.startRegistry},
		{compContainerd, s.startContainerd},
		{"demo image", s.pushDemo},
		{compGateway, s.startGateway},
		{compManager, s.startManager},
		{compAgent, s.startAgent},
		{"ECS API", s.startAPI},
	}
	if s.o.ConsolePort != 0 {
		steps = append(steps, struct {
			name string
			fn   func(context.Context) error
		}{compConsole, s.startConsole})
	}
	if s.o.HollowInstances > 0 {
		steps = append(steps, struct {
			name string
			fn   func(context.Context) error
		}{compHollow, s.startHollow})
	}
	if !s.o.NoSamples {
		steps = append(steps, struct {
			name string
			fn   func(context.Context) error
		}{"samples", s.applySamples})
	}
	for _, st := range steps {
		began := time.Now()
		if err := st.fn(ctx); err != nil {
			return fmt.Errorf("%s: %w", st.name, err)
		}
		s.out.printf("  %-16s ready (%s)", st.name, time.Since(began).Round(100*time.Millisecond))
	}
	return nil
}

// progress reports a component still starting.
func (s *session) progress(name string) func(time.Duration) {
	return func(d time.Duration) { s.out.printf("  %-16s still starting (%s)...", name, d) }
}

// launch starts component name and waits until check passes.
func (s *session) launch(ctx context.Context, name, bin string, args, env []string, check func(context.Context) error) error {
	p, err := startProc(s.l, name, bin, args, env)
	if err != nil {
		return err
	}
	s.procs[name] = p
	return p.waitReady(ctx, startTimeout, check, s.progress(name))
}

// hostPort is "127.0.0.1:port".
func hostPort(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// instanceConnected reports whether the ContainerInstance name is registered, its
// agent connected, and its heartbeat Lease renewed since `since`: a restarted `up`
// finds the condition of the previous run still True until the manager notices.
func (s *session) instanceConnected(ctx context.Context, name string, since time.Time) (bool, error) {
	ci := &ecsv1alpha1.ContainerInstance{}
	if err := s.admin.Get(ctx, client.ObjectKey{Name: name}, ci); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	if !apimeta.IsStatusConditionTrue(ci.Status.Conditions, ecsv1alpha1.InstanceConditionConnected) {
		return false, nil
	}
	lease := &coordinationv1.Lease{}
	if err := s.admin.Get(ctx, client.ObjectKey{Namespace: ecsv1alpha1.NodeLeaseNamespace, Name: name}, lease); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	// Lease times have microsecond precision.
	return lease.Spec.RenewTime != nil && !lease.Spec.RenewTime.Time.Before(since.Truncate(time.Second)), nil
}
