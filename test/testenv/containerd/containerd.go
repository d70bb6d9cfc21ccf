// Package ctrtest runs a private containerd (bin/containerd, built by `make tools`) for
// tests: its own root, state and socket in a temporary directory, the runc runtime and
// the overlayfs snapshotter (native where overlayfs cannot be mounted). Stopping it
// kills every task it still runs, deletes every container, unmounts whatever is left
// under its directory and removes it, so a test leaves no process or mount behind.
//
// It needs root (containers, mounts, cgroups); without it Start fails the test in CI
// and skips it elsewhere (testenv.Require).
package ctrtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"

	"github.com/berthdev/berth/internal/up/localrun"
	"github.com/berthdev/berth/test/testenv"
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

// SkipReason says what real-containerd tests need and this machine lacks ("" when
// nothing): pass it to testenv.Require or testenv.RequireMain.
func SkipReason() string {
	if missing := testenv.MissingRoot(); missing != "" {
		return "containerd " + missing
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
// in -short mode; when SkipReason names something missing, it fails the test in CI
// and skips it elsewhere.
func Start(t testing.TB) *Containerd {
	t.Helper()
	if testing.Short() {
		t.Skip("containerd tests are skipped in -short mode")
	}
	testenv.Require(t, SkipReason())
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
	}
	for _, d := range []string{c.HostsDir, c.FIFODir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, c.cleanupDir(err)
		}
	}
	c.Snapshotter = localrun.Snapshotter(dir)
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(localrun.ContainerdConfig(filepath.Join(c.Dir, "root"), filepath.Join(c.Dir, "state"), c.Address)), 0o600); err != nil {
		return nil, c.cleanupDir(err)
	}
	if err := c.start(); err != nil {
		return nil, c.cleanupDir(err)
	}
	if err := c.waitReady(30 * time.Second); err != nil {
		_ = c.Stop()
		return nil, fmt.Errorf("%w\n%s", err, c.LogTail())
	}
	return c, nil
}

// start starts the containerd process with the configuration in Dir, appending to
// its log.
func (c *Containerd) start() error {
	logf, err := os.OpenFile(filepath.Join(c.Dir, "containerd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	// containerd writes to its own copy of the descriptor: ours is not needed once it
	// has started, and a failed close of it loses nothing.
	defer func() { _ = logf.Close() }()
	cmd := exec.Command(filepath.Join(testenv.BinDir(), "containerd"), "--config", filepath.Join(c.Dir, "config.toml"))
	cmd.Stdout, cmd.Stderr = logf, logf
	// containerd finds containerd-shim-runc-v2 on its PATH, the shim finds runc.
	cmd.Env = append(os.Environ(), "PATH="+testenv.BinDir()+":"+os.Getenv("PATH")+":/usr/sbin:/sbin")
	// Its own process group, so a test binary interrupted with ^C does not signal it
	// before Stop has cleaned up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	c.cmd, c.exited = cmd, exited
	return nil
}

// Restart ends containerd with sig and starts it again with the same configuration
// and directories, as a machine's containerd restarts: SIGTERM is a clean shutdown,
// SIGKILL a crash. Nothing is purged: containers, images and snapshots stay, and the
// shims of running containers (their own process groups) keep their processes
// running for the new containerd to reconnect to. It returns once the new
// containerd serves. Not safe to call concurrently with Stop.
func (c *Containerd) Restart(sig syscall.Signal) error {
	if err := c.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signalling containerd: %w", err)
	}
	select {
	case <-c.exited:
	case <-time.After(15 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
	if err := c.start(); err != nil {
		return fmt.Errorf("starting containerd again: %w", err)
	}
	if err := c.waitReady(30 * time.Second); err != nil {
		return fmt.Errorf("%w\n%s", err, c.LogTail())
	}
	return nil
}

func (c *Containerd) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-c.exited:
			return errors.New("containerd exited during startup")
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := localrun.ContainerdServing(ctx, c.Address)
		cancel()
		if err == nil {
			return nil
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
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			var err error
			nss, _, err = localrun.PurgeContainers(ctx, c.Address)
			cancel()
			if err != nil {
				errs = append(errs, fmt.Errorf("removing containers: %w", err))
			}
			// containerd shuts each shim down after its task's delete: give them
			// that time while it still runs. A shim left after this and the grace
			// below was leaked.
			_ = localrun.LeftoverShims(c.Address, shimExitGrace)
			_ = c.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-c.exited:
			case <-time.After(15 * time.Second):
				_ = c.cmd.Process.Kill()
				<-c.exited
			}
		}
	}
	if left := c.killShims(); len(left) > 0 {
		errs = append(errs, fmt.Errorf("killed %d shim process(es) left running: %v", len(left), left))
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

// shimExitGrace is how long a shim whose task was just deleted may take to exit.
const shimExitGrace = 5 * time.Second

// killShims kills shim processes of this containerd (their command line names its
// address) still running after shimExitGrace, and returns them.
func (c *Containerd) killShims() []localrun.Shim {
	left := localrun.LeftoverShims(c.Address, shimExitGrace)
	for _, s := range left {
		_ = syscall.Kill(s.PID, syscall.SIGKILL)
	}
	return left
}

func (c *Containerd) cleanupDir(err error) error {
	_ = os.RemoveAll(c.Dir)
	return err
}

// ShimPIDs lists the containerd-shim processes started for the containerd at address.
func ShimPIDs(address string) ([]int, error) { return localrun.ShimPIDs(address) }

// MountsUnder lists the mount points at or under dir, deepest first.
func MountsUnder(dir string) ([]string, error) { return localrun.MountsUnder(dir) }

func unmountUnder(dir string) error {
	_, err := localrun.UnmountUnder(dir)
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
