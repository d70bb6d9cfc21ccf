package up

import (
	"bufio"
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
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berthdev/berth/agent/network"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// drainTimeout bounds how long `down` waits for the agent to stop the local
// instance's tasks. Containers that outlast it are killed by the cleanup after.
const drainTimeout = 2 * time.Minute

// stopReason is written on every task `down` stops.
const stopReason = "berth down: the local instance was shut down"

// drainInstance stops every task bound to instance through the API, as `aws ecs
// stop-task` would, and waits until the agent reports them STOPPED, so that each
// container gets its stop signal and timeout and each network is torn down by the
// agent itself (CNI DEL releases addresses and host ports). The manager is already
// stopped, so no replacement is started meanwhile; the next `up` starts them.
func drainInstance(ctx context.Context, c client.Client, instance string, report func(string)) error {
	list := func() ([]ecsv1alpha1.Task, error) {
		var tasks ecsv1alpha1.TaskList
		err := c.List(ctx, &tasks, client.MatchingFields{"spec.containerInstance": instance})
		return tasks.Items, err
	}
	tasks, err := list()
	if err != nil {
		return err
	}
	for i := range tasks {
		t := &tasks[i]
		if t.Spec.DesiredStatus == ecsv1alpha1.DesiredStopped {
			continue
		}
		patch := client.MergeFrom(t.DeepCopy())
		t.Spec.DesiredStatus = ecsv1alpha1.DesiredStopped
		t.Spec.StopCode = ecsv1alpha1.StopUserInitiated
		t.Spec.StopReason = stopReason
		if err := c.Patch(ctx, t, patch, client.FieldOwner(FieldManager)); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("stopping task %s: %w", client.ObjectKeyFromObject(t), err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, drainTimeout)
	defer cancel()
	last := -1
	return poll(ctx, func(context.Context) (bool, error) {
		tasks, err := list()
		if err != nil {
			return false, nil // the apiserver may be busy; the deadline decides
		}
		running := 0
		for i := range tasks {
			if tasks[i].Status.LastStatus != ecsv1alpha1.TaskStopped && tasks[i].Status.LastStatus != "" {
				running++
			}
		}
		if running != last && running > 0 {
			report(fmt.Sprintf("waiting for %d task(s) on %s to stop", running, instance))
		}
		last = running
		return running == 0, nil
	})
}

// cleanupLocal removes what may be left on the machine after the agent stopped:
// task networks (through the agent's own network code, from its state files) and
// containers (through containerd, when it still runs). It returns what it found
// still in use.
func cleanupLocal(ctx context.Context, l layout, o Options, containerdUp bool) (leftovers []string, err error) {
	var errs []error
	if nw, nerr := network.New(network.Config{StateDir: l.agentStateDir(), Subnet: o.BridgeSubnet, Bridge: o.BridgeName}); nerr != nil {
		errs = append(errs, fmt.Errorf("loading task networks: %w", nerr))
	} else if uids, rerr := nw.Recover(ctx); rerr != nil {
		errs = append(errs, fmt.Errorf("reading task networks: %w", rerr))
	} else {
		for _, uid := range uids {
			leftovers = append(leftovers, "network of task "+string(uid))
			if terr := nw.Teardown(ctx, uid); terr != nil {
				errs = append(errs, terr)
			}
		}
	}
	if containerdUp {
		ids, perr := purgeContainers(ctx, l.containerdSocket())
		for _, id := range ids {
			leftovers = append(leftovers, "container "+id)
		}
		if perr != nil {
			errs = append(errs, perr)
		}
	}
	return leftovers, errors.Join(errs...)
}

// purgeContainers kills and deletes every container of every containerd namespace,
// and returns those that were still running.
func purgeContainers(ctx context.Context, socket string) ([]string, error) {
	cl, err := containerd.New(socket, containerd.WithTimeout(10*time.Second))
	if err != nil {
		return nil, err
	}
	defer func() { _ = cl.Close() }() // containerd stops next
	nss, err := cl.NamespaceService().List(ctx)
	if err != nil {
		return nil, err
	}
	var ids []string
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
				// Stopped containers are expected: the agent keeps them for its
				// cleanup wait. A running one means a task was not stopped.
				if st, err := task.Status(nctx); err == nil && st.Status != containerd.Stopped {
					ids = append(ids, ns+"/"+ctr.ID())
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
	return ids, errors.Join(errs...)
}

// shimPIDs are the containerd shims serving the containerd at socket: their
// command line names its address.
func shimPIDs(socket string) []int {
	entries, _ := os.ReadDir("/proc")
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
		for i, a := range args {
			if a == "-address" && i+1 < len(args) && args[i+1] == socket {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// mountsUnder lists the mount points at or under dir, deepest first.
func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out, sc.Err()
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space, ...).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unmountUnder detaches every mount under dir and returns them.
func unmountUnder(dir string) ([]string, error) {
	mps, err := mountsUnder(dir)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, mp := range mps {
		if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", mp, err))
		}
	}
	return mps, errors.Join(errs...)
}
