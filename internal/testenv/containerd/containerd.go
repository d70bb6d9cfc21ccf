// Package ctrtest runs a private containerd (bin/containerd, built by `make tools`) for
// tests: its own root, state and socket in a temporary directory, the runc runtime and
// the overlayfs snapshotter (native where overlayfs cannot be mounted). Stopping it
// kills every task it still runs, deletes every container, unmounts whatever is left
// under its directory and removes it, so a test leaves no process or mount behind.
//
// It needs root (containers, mounts, cgroups); Start skips the test otherwise.
package ctrtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"

	"github.com/berthdev/berth/internal/testenv"
)

// Containerd is a running private containerd.
type Containerd struct {
	// Address is the path of its gRPC socket.
	Address string
	// Snapshotter is the snapshotter to use: overlayfs, or native where overlayfs
	// cannot be mounted.
	Snapshotter string
	// HostsDir is an empty registry hosts directory (certs.d layout: one
	// <host[:port]>/hosts.toml per registry) for clients to read.
	HostsDir string
	// FIFODir is a directory for the client's stdio FIFOs (exec output).
	FIFODir string
	// RuncRoot is a runc state directory under Dir, for clients that can set it
	// (runc's default, /run/containerd/runc, is shared with the host's containerd).
	RuncRoot string
	// Dir holds everything: root, state, socket, config, log.
	Dir string

	cmd    *exec.Cmd
	exited chan struct{}
}

// SkipReason says why real-containerd tests cannot run here ("" when they can).
func SkipReason() string {
	if os.Geteuid() != 0 {
		return "containerd tests need root"
	}
	for _, b := range []string{"containerd", "containerd-shim-runc-v2"} {
		if _, err := os.Stat(filepath.Join(testenv.BinDir(), b)); err != nil {
			return fmt.Sprintf("%s not found in %s: run `make tools`", b, testenv.BinDir())
		}
	}
	if _, err := exec.LookPath("runc"); err != nil {
		if _, err := os.Stat("/usr/sbin/runc"); err != nil {
			return "runc not found: apt-get install runc"
		}
	}
	return ""
}

// Start starts a containerd for the test and stops it at cleanup. It skips the test
// in -short mode and when SkipReason says so.
func Start(t testing.TB) *Containerd {
	t.Helper()
	if testing.Short() {
		t.Skip("containerd tests are skipped in -short mode")
	}
	if reason := SkipReason(); reason != "" {
		t.Skip(reason)
	}
	c, err := Launch()
	if err != nil {
		t.Fatalf("starting containerd: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("containerd log (last lines):\n%s", c.LogTail())
		}
		if err := c.Stop(); err != nil {
			t.Errorf("stopping containerd: %v", err)
		}
	})
	return c
}

// Launch starts a containerd; the caller must Stop it. Use it from TestMain to share
// one containerd among the tests of a package (give each test its own namespace).
func Launch() (*Containerd, error) {
	// Unix socket paths are limited to 108 bytes: keep the directory short rather than
	// under t.TempDir, whose path grows with the test name.
	dir, err := os.MkdirTemp("", "ctrd-")
	if err != nil {
		return nil, err
	}
	c := &Containerd{
		Dir:         dir,
		Address:     filepath.Join(dir, "c.sock"),
		HostsDir:    filepath.Join(dir, "certs.d"),
		FIFODir:     filepath.Join(dir, "fifo"),
		RuncRoot:    filepath.Join(dir, "runc"),
		Snapshotter: "overlayfs",
		exited:      make(chan struct{}),
	}
	for _, d := range []string{c.HostsDir, c.FIFODir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, c.cleanupDir(err)
		}
	}
	if !overlayUsable(dir) {
		c.Snapshotter = "native"
	}
	cfg := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfg, []byte(c.config()), 0o600); err != nil {
		return nil, c.cleanupDir(err)
	}
	logf, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		return nil, c.cleanupDir(err)
	}
	// containerd writes to its own copy of the descriptor: ours is not needed once it
	// has started, and a failed close of it loses nothing.
	defer func() { _ = logf.Close() }()
	c.cmd = exec.Command(filepath.Join(testenv.BinDir(), "containerd"), "--config", cfg)
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	// containerd finds containerd-shim-runc-v2 on its PATH, the shim finds runc.
	c.cmd.Env = append(os.Environ(), "PATH="+testenv.BinDir()+":"+os.Getenv("PATH")+":/usr/sbin:/sbin")
	// Its own process group, so a test binary interrupted with ^C does not signal it
	// before Stop has cleaned up.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.cmd.Start(); err != nil {
		return nil, c.cleanupDir(err)
	}
	go func() { _ = c.cmd.Wait(); close(c.exited) }()
	if err := c.waitReady(30 * time.Second); err != nil {
		_ = c.Stop()
		return nil, fmt.Errorf("%w\n%s", err, c.LogTail())
	}
	return c, nil
}

func (c *Containerd) config() string {
	return fmt.Sprintf(`version = 3
root = %q
state = %q
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.cri.v1.images",
  "io.containerd.cri.v1.runtime",
  "io.containerd.podsandbox.controller.v1.podsandbox",
  "io.containerd.nri.v1.nri",
  "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.blockfile",
  "io.containerd.snapshotter.v1.erofs",
  "io.containerd.differ.v1.erofs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = %q

[ttrpc]
  address = %q

[debug]
  level = "info"
`, filepath.Join(c.Dir, "root"), filepath.Join(c.Dir, "state"), c.Address, c.Address+".ttrpc")
}

// overlayUsable mounts a throwaway overlay under dir.
func overlayUsable(dir string) bool {
	base := filepath.Join(dir, "overlay-probe")
	// Anything left here goes with Dir when containerd stops.
	defer func() { _ = os.RemoveAll(base) }()
	for _, d := range []string{"lower", "upper", "work", "merged"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o700); err != nil {
			return false
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s",
		filepath.Join(base, "lower"), filepath.Join(base, "upper"), filepath.Join(base, "work"))
	merged := filepath.Join(base, "merged")
	if err := syscall.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		return false
	}
	_ = syscall.Unmount(merged, syscall.MNT_DETACH)
	return true
}

func (c *Containerd) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-c.exited:
			return errors.New("containerd exited during startup")
		default:
		}
		if _, err := os.Stat(c.Address); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			cl, err := containerd.New(c.Address, containerd.WithTimeout(2*time.Second))
			if err == nil {
				ok, _ := cl.IsServing(ctx)
				_ = cl.Close()
				if ok {
					cancel()
					return nil
				}
			}
			cancel()
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("containerd socket %s not serving after %s", c.Address, timeout)
}

// Client returns a new client of this containerd; the caller closes it.
func (c *Containerd) Client() (*containerd.Client, error) {
	return containerd.New(c.Address, containerd.WithTimeout(10*time.Second))
}

// Stop kills every task, deletes every container in every namespace, stops
// containerd, kills shims it left, unmounts what is left under Dir and removes Dir.
func (c *Containerd) Stop() error {
	var errs []error
	var nss []string
	if c.cmd != nil && c.cmd.Process != nil {
		select {
		case <-c.exited:
		default:
			var err error
			if nss, err = c.purge(); err != nil {
				errs = append(errs, fmt.Errorf("removing containers: %w", err))
			}
			_ = c.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-c.exited:
			case <-time.After(15 * time.Second):
				_ = c.cmd.Process.Kill()
				<-c.exited
			}
		}
	}
	if n := c.killShims(); n > 0 {
		errs = append(errs, fmt.Errorf("killed %d shim process(es) left running", n))
	}
	if err := unmountUnder(c.Dir); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(c.Dir); err != nil {
		errs = append(errs, err)
	}
	removeEmptyHostDirs(nss)
	return errors.Join(errs...)
}

// removeEmptyHostDirs removes what containerd and runc leave outside Dir once every
// container is gone: the per-namespace parent cgroups (/sys/fs/cgroup/[<controller>/]<ns>)
// and runc state directories under runc's default root, and the shim socket directory.
// Only empty directories are removed (rmdir), so nothing in use is touched.
func removeEmptyHostDirs(namespaces []string) {
	for _, ns := range namespaces {
		dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", ns))
		dirs = append(dirs, filepath.Join("/sys/fs/cgroup", ns), filepath.Join("/run/containerd/runc", ns))
		for _, d := range dirs {
			_ = syscall.Rmdir(d)
		}
	}
	for _, d := range []string{"/run/containerd/runc", "/run/containerd/s", "/run/containerd"} {
		_ = syscall.Rmdir(d)
	}
}

// purge deletes every task and container in every namespace, and returns the
// namespaces.
func (c *Containerd) purge() ([]string, error) {
	cl, err := c.Client()
	if err != nil {
		return nil, err
	}
	defer func() { _ = cl.Close() }() // containerd stops next: a failed close changes nothing
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nss, err := cl.NamespaceService().List(ctx)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, ns := range nss {
		nctx := namespaces.WithNamespace(ctx, ns)
		ctrs, err := cl.Containers(nctx)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, ctr := range ctrs {
			if task, err := ctr.Task(nctx, nil); err == nil {
				if _, err := task.Delete(nctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
					errs = append(errs, fmt.Errorf("deleting task %s/%s: %w", ns, ctr.ID(), err))
				}
			}
			if err := ctr.Delete(nctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("deleting container %s/%s: %w", ns, ctr.ID(), err))
			}
		}
	}
	return nss, errors.Join(errs...)
}

// killShims kills shim processes still serving this containerd (their command line
// names its address) and returns how many it found.
func (c *Containerd) killShims() int {
	pids, _ := ShimPIDs(c.Address)
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	return len(pids)
}

// ShimPIDs lists the containerd-shim processes started for the containerd at address.
func ShimPIDs(address string) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if len(args) == 0 || !strings.HasPrefix(filepath.Base(args[0]), "containerd-shim") {
			continue
		}
		for i := 0; i+1 < len(args); i++ {
			if args[i] == "-address" && args[i+1] == address {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids, nil
}

// MountsUnder lists the mount points at or under dir, deepest first.
func MountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }() // read-only
	dir = filepath.Clean(dir)
	var mounts []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64*1024), 1024*1024)
	for s.Scan() {
		fields := bytes.Fields(s.Bytes())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountPath(string(fields[4]))
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			mounts = append(mounts, mp)
		}
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i]) > len(mounts[j]) })
	return mounts, s.Err()
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountPath(p string) string {
	if !strings.Contains(p, `\`) {
		return p
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '\\' && i+3 < len(p) {
			if n, err := strconv.ParseUint(p[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

func unmountUnder(dir string) error {
	mounts, err := MountsUnder(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range mounts {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", m, err))
		}
	}
	return errors.Join(errs...)
}

func (c *Containerd) cleanupDir(err error) error {
	_ = os.RemoveAll(c.Dir)
	return err
}

// LogTail returns the end of containerd's log, for failure messages.
func (c *Containerd) LogTail() string {
	b, err := os.ReadFile(filepath.Join(c.Dir, "containerd.log"))
	if err != nil {
		return ""
	}
	if len(b) > 6000 {
		b = b[len(b)-6000:]
	}
	return string(bytes.TrimSpace(b))
}
