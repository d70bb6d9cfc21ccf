package containerd

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berthdev/berth/agent/runtime"
)

// ociSpec applies the agent's options (all but the image's, which need an image)
// to containerd's default Linux spec, in specOpts' order.
func ociSpec(t *testing.T, s runtime.ContainerSpec) *oci.Spec {
	t.Helper()
	opts := processOpts(s, nil)
	opts = append(opts, resourceOpts(s)...)
	opts = append(opts, securityOpts(s)...)
	if len(s.Mounts) > 0 {
		opts = append(opts, oci.WithMounts(bindMounts(s.Mounts)))
	}
	opts = append(opts, namespaceOpts(s)...)
	ctx := namespaces.WithNamespace(context.Background(), "fuzz")
	spec, err := oci.GenerateSpec(ctx, nil, &containers.Container{ID: "fuzz"}, opts...)
	if err != nil {
		t.Fatalf("generating the spec: %v", err)
	}
	return spec
}

// FuzzOCISpec turns arbitrary runtime specs into OCI specs. Invariants: no panic;
// without Privileged no device is open to all, paths stay masked and the
// capabilities are containerd's defaults plus those asked for; the container has
// its own network, PID and IPC namespaces unless it asked for the host's; the
// memory limit is the one asked for; the default seccomp profile filters the
// process unless SeccompUnconfined, and no_new_privs is set exactly when asked.
func FuzzOCISpec(f *testing.F) {
	f.Add(false, false, false, false, "", "", int64(0), uint64(0), false, false, false)
	f.Add(true, true, true, true, "ALL", "", int64(1<<30), uint64(512), true, false, true)
	f.Add(false, false, false, false, "NET_ADMIN, sys_time", "ALL", int64(256<<20), uint64(128), false, true, false)
	f.Add(false, true, false, false, "cap_net_raw", "CHOWN,KILL", int64(4<<20), uint64(2), true, true, true)
	f.Fuzz(func(t *testing.T, privileged, hostNet, hostPID, hostIPC bool, capAdd, capDrop string, memory int64, cpu uint64, readonly, noNewPrivs, unconfined bool) {
		s := runtime.ContainerSpec{
			ID: "fuzz", Privileged: privileged, HostNetwork: hostNet, HostPID: hostPID, HostIPC: hostIPC,
			CapAdd: splitList(capAdd), CapDrop: splitList(capDrop), MemoryLimitBytes: memory, CPUShares: cpu, ReadonlyRootfs: readonly,
			NoNewPrivileges: noNewPrivs, SeccompUnconfined: unconfined,
		}
		got := ociSpec(t, s)
		if !privileged {
			checkUnprivileged(t, s, got)
		}
		checkConfinement(t, s, got)
		checkNamespaces(t, s, got)
		if memory > 0 && (got.Linux.Resources.Memory == nil || got.Linux.Resources.Memory.Limit == nil || *got.Linux.Resources.Memory.Limit != memory) {
			t.Fatalf("memory limit %d not applied: %+v", memory, got.Linux.Resources.Memory)
		}
		if readonly && (got.Root == nil || !got.Root.Readonly) {
			t.Fatal("read-only root filesystem not applied")
		}
	})
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func checkUnprivileged(t *testing.T, s runtime.ContainerSpec, got *oci.Spec) {
	t.Helper()
	for _, d := range got.Linux.Resources.Devices {
		if d.Allow && (d.Type == "" || d.Type == "a") && d.Major == nil && d.Minor == nil {
			t.Fatalf("all devices allowed without privileged: %+v", d)
		}
	}
	if len(got.Linux.MaskedPaths) == 0 {
		t.Fatal("masked paths cleared without privileged")
	}
	if slices.ContainsFunc(s.CapAdd, func(c string) bool { return strings.EqualFold(strings.TrimSpace(c), "ALL") }) {
		return // every capability, as asked
	}
	defaults := ociSpec(t, runtime.ContainerSpec{ID: "fuzz"}).Process.Capabilities.Bounding
	for _, c := range got.Process.Capabilities.Bounding {
		if slices.Contains(defaults, c) {
			continue
		}
		asked := slices.ContainsFunc(s.CapAdd, func(a string) bool {
			a = strings.ToUpper(strings.TrimSpace(a))
			return a == c || "CAP_"+a == c
		})
		if !asked {
			t.Fatalf("capability %s granted without asking (asked %q)", c, s.CapAdd)
		}
	}
}

// checkConfinement: the default seccomp profile (which refuses what it does not
// allow) unless the spec lifts it, and no_new_privs as asked.
func checkConfinement(t *testing.T, s runtime.ContainerSpec, got *oci.Spec) {
	t.Helper()
	if filtered := got.Linux.Seccomp != nil; filtered == s.SeccompUnconfined {
		t.Fatalf("seccomp profile set %v with SeccompUnconfined %v", filtered, s.SeccompUnconfined)
	}
	if sc := got.Linux.Seccomp; sc != nil && (sc.DefaultAction != specs.ActErrno || len(sc.Syscalls) == 0) {
		t.Fatalf("seccomp profile is not the default one: default action %s, %d rules", sc.DefaultAction, len(sc.Syscalls))
	}
	if got.Process.NoNewPrivileges != s.NoNewPrivileges {
		t.Fatalf("no_new_privs %v, asked %v", got.Process.NoNewPrivileges, s.NoNewPrivileges)
	}
}

func checkNamespaces(t *testing.T, s runtime.ContainerSpec, got *oci.Spec) {
	t.Helper()
	own := func(typ specs.LinuxNamespaceType) bool {
		return slices.ContainsFunc(got.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == typ && n.Path == "" })
	}
	for _, c := range []struct {
		typ  specs.LinuxNamespaceType
		host bool
	}{{specs.NetworkNamespace, s.HostNetwork}, {specs.PIDNamespace, s.HostPID}, {specs.IPCNamespace, s.HostIPC}} {
		if own(c.typ) == c.host {
			t.Fatalf("%s namespace: own %v with host %v", c.typ, own(c.typ), c.host)
		}
	}
}
