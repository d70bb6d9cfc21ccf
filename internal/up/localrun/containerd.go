// Package localrun runs Berth's external components privately on this machine:
// a containerd with all its state in one directory, and a loopback registry. It
// holds what `berth up` and the test harnesses (test/testenv/...) share: the
// configurations, readiness checks, and the cleanup that leaves no container,
// shim or mount behind.
package localrun

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
)

// ContainerdConfig is the configuration of a private containerd: root and state
// under the given directories, the API on socket, and only the plugins Berth's
// agent uses (no CRI, no NRI, no tracing).
func ContainerdConfig(root, state, socket string) string {
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
`, root, state, socket, socket+".ttrpc")
}

// Snapshotter is overlayfs when dir's filesystem can hold an overlay mount (it
// cannot on overlayfs itself, as in many containers), else native.
func Snapshotter(dir string) string {
	base := filepath.Join(dir, "overlay-probe")
	defer func() { _ = os.RemoveAll(base) }()
	for _, d := range []string{"lower", "upper", "work", "merged"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o700); err != nil {
			return "native"
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s",
		filepath.Join(base, "lower"), filepath.Join(base, "upper"), filepath.Join(base, "work"))
	merged := filepath.Join(base, "merged")
	if err := syscall.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		return "native"
	}
	_ = syscall.Unmount(merged, syscall.MNT_DETACH)
	return "overlayfs"
}

// ContainerdServing returns nil once the containerd at socket serves its API.
func ContainerdServing(ctx context.Context, socket string) error {
	if _, err := os.Stat(socket); err != nil {
		return err
	}
	cl, err := containerd.New(socket, containerd.WithTimeout(2*time.Second))
	if err != nil {
		return err
	}
	defer func() { _ = cl.Close() }()
	ok, err := cl.IsServing(ctx)
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("containerd is not serving")
	}
	return nil
}

// PurgeContainers kills and deletes every container (and its snapshot) of every
// namespace of the containerd at socket. It returns the namespaces and the
// containers that were still running ("namespace/id"); stopped ones are expected
// leftovers of an agent's cleanup wait.
func PurgeContainers(ctx context.Context, socket string) (nss, running []string, err error) {
	cl, err := containerd.New(socket, containerd.WithTimeout(10*time.Second))
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = cl.Close() }() // containerd stops next: a failed close changes nothing
	nss, err = cl.NamespaceService().List(ctx)
	if err != nil {
		return nil, nil, err
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
				if st, err := task.Status(nctx); err == nil && st.Status != containerd.Stopped {
					running = append(running, ns+"/"+ctr.ID())
				}
				if _, err := task.Delete(nctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
					errs = append(errs, fmt.Errorf("deleting task %s/%s: %w", ns, ctr.ID(), err))
				}
			}
			if err := ctr.Delete(nctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("deleting container %s/%s: %w", ns, ctr.ID(), err))
			}
		}
	}
	return nss, running, errors.Join(errs...)
}

// Shim is a containerd-shim process, named by what its command line says.
type Shim struct {
	PID int
	// Namespace and ID are the containerd namespace and the task (or sandbox) the
	// shim was started for.
	Namespace, ID string
}

func (s Shim) String() string { return fmt.Sprintf("pid %d (%s/%s)", s.PID, s.Namespace, s.ID) }

// Shims lists the containerd-shim processes started for the containerd at socket:
// their command line names its address.
func Shims(socket string) ([]Shim, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var shims []Shim
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
		s, ours := Shim{PID: pid}, false
		for i := 0; i+1 < len(args); i++ {
			switch args[i] {
			case "-address":
				ours = args[i+1] == socket
			case "-namespace":
				s.Namespace = args[i+1]
			case "-id":
				s.ID = args[i+1]
			}
		}
		if ours {
			shims = append(shims, s)
		}
	}
	return shims, nil
}

// ShimPIDs lists the pids of Shims(socket).
func ShimPIDs(socket string) ([]int, error) {
	shims, err := Shims(socket)
	pids := make([]int, 0, len(shims))
	for _, s := range shims {
		pids = append(pids, s.PID)
	}
	return pids, err
}

// LeftoverShims returns the shims of the containerd at socket that still run after
// grace. A shim exits on its own a moment after its last task is deleted, and the
// delete returns before it has: right after deleting tasks (PurgeContainers, an
// agent's cleanup) a shim may still be on its way out. Only one still running after
// grace is left behind.
func LeftoverShims(socket string, grace time.Duration) []Shim {
	deadline := time.Now().Add(grace)
	for {
		shims, _ := Shims(socket)
		if len(shims) == 0 || !time.Now().Before(deadline) {
			return shims
		}
		time.Sleep(100 * time.Millisecond)
	}
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

// UnmountUnder detaches every mount at or under dir and returns them.
func UnmountUnder(dir string) ([]string, error) {
	mounts, err := MountsUnder(dir)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, m := range mounts {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", m, err))
		}
	}
	return mounts, errors.Join(errs...)
}
