// Package policy is Berth's container policy: what the task definitions run in a
// cluster may ask of their instances, at the levels of Kubernetes' Pod Security
// Standards (privileged, baseline, restricted). The Cluster sets the level
// (spec.containerPolicy.level); the scheduler and the service controller refuse to
// start tasks whose revision exceeds it, and the agent checks again before it creates
// any container, so an object that skipped the manager (a task created already bound
// to an instance) or a policy tightened after placement cannot slip through.
//
// The package is pure: Check looks at a task definition spec only, CheckImageUser at
// one container's configured and image users. See docs/container-policy.md.
package policy

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// baselineCapabilities are the capabilities a container may add at level baseline:
// Docker's (and containerd's) default set, which Pod Security Standards' baseline
// allows too. Adding one of them is a no-op unless the container dropped it first.
var baselineCapabilities = []string{
	"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
	"NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
}

// restrictedCapability is the one capability a container may add at level restricted.
const restrictedCapability = "NET_BIND_SERVICE"

// Check returns every way spec exceeds level, each with its field path in the
// TaskDefinition (spec.containerDefinitions[0].privileged, spec.networkMode, ...),
// in a fixed order. An empty list means the spec may run at level.
//
// A task's overrides are not checked: they can change only a container's command,
// environment, cpu and memory, none of which the policy governs (a test keeps that
// true as the API grows).
//
// Running as root can only be judged here when the container sets user; a container
// without one runs as its image's user, which the agent checks once the image is
// pulled (CheckImageUser). An unknown level is treated as restricted: a policy the
// code does not understand fails closed.
func Check(level ecsv1alpha1.ContainerPolicyLevel, spec *ecsv1alpha1.TaskDefinitionSpec) field.ErrorList {
	if level == "" {
		level = ecsv1alpha1.DefaultContainerPolicyLevel
	}
	if level == ecsv1alpha1.ContainerPolicyPrivileged || spec == nil {
		return nil
	}
	restricted := level != ecsv1alpha1.ContainerPolicyBaseline
	if restricted {
		level = ecsv1alpha1.ContainerPolicyRestricted
	}
	root := field.NewPath("spec")
	errs := checkHost(level, root, spec)
	for i := range spec.ContainerDefinitions {
		c := &spec.ContainerDefinitions[i]
		path := root.Child("containerDefinitions").Index(i)
		if c.Privileged {
			errs = append(errs, field.Forbidden(path.Child("privileged"), "privileged containers are not allowed at level "+string(level)))
		}
		errs = append(errs, checkCapabilities(level, path.Child("linuxParameters", "capabilities"), c.LinuxParameters)...)
		errs = append(errs, checkSecurityOptions(level, path.Child("dockerSecurityOptions"), c.DockerSecurityOptions)...)
		if restricted && c.User != "" {
			if ok, why := NonRootUser(c.User); !ok {
				errs = append(errs, field.Forbidden(path.Child("user"), why+"; not allowed at level "+string(level)))
			}
		}
	}
	return errs
}

// checkHost refuses what shares the instance itself: its network, PID and IPC
// namespaces and its files.
func checkHost(level ecsv1alpha1.ContainerPolicyLevel, root *field.Path, spec *ecsv1alpha1.TaskDefinitionSpec) field.ErrorList {
	var errs field.ErrorList
	if spec.NetworkMode == ecsv1alpha1.NetworkModeHost {
		errs = append(errs, field.Forbidden(root.Child("networkMode"), "the host's network is not allowed at level "+string(level)))
	}
	if spec.PidMode == ecsv1alpha1.NamespaceModeHost {
		errs = append(errs, field.Forbidden(root.Child("pidMode"), "the host's PID namespace is not allowed at level "+string(level)))
	}
	if spec.IpcMode == ecsv1alpha1.NamespaceModeHost {
		errs = append(errs, field.Forbidden(root.Child("ipcMode"), "the host's IPC namespace is not allowed at level "+string(level)))
	}
	for i, c := range spec.ContainerDefinitions {
		if lp := c.LinuxParameters; lp != nil && len(lp.Devices) > 0 {
			errs = append(errs, field.Forbidden(root.Child("containerDefinitions").Index(i).Child("linuxParameters", "devices"),
				"the host's devices are not allowed at level "+string(level)))
		}
	}
	for i, v := range spec.Volumes {
		// host: {} without sourcePath is a task volume, which shares nothing.
		if v.Host != nil && v.Host.SourcePath != "" {
			errs = append(errs, field.Forbidden(root.Child("volumes").Index(i).Child("host"),
				fmt.Sprintf("host path volumes (%s) are not allowed at level %s", v.Host.SourcePath, level)))
		}
		// A Docker volume of type none is a bind mount of an instance path: the same
		// as host.sourcePath.
		if dvc := v.DockerVolumeConfiguration; dvc != nil && dvc.DriverOpts != nil && dvc.DriverOpts.Type == "none" {
			errs = append(errs, field.Forbidden(root.Child("volumes").Index(i).Child("dockerVolumeConfiguration", "driverOpts"),
				fmt.Sprintf("bind mounts of instance paths (%s) are not allowed at level %s", dvc.DriverOpts.Device, level)))
		}
	}
	return errs
}

// checkCapabilities allows at baseline only additions from Docker's default set, and
// at restricted only NET_BIND_SERVICE, with ALL dropped.
func checkCapabilities(level ecsv1alpha1.ContainerPolicyLevel, path *field.Path, lp *ecsv1alpha1.LinuxParameters) field.ErrorList {
	var caps *ecsv1alpha1.KernelCapabilities
	if lp != nil {
		caps = lp.Capabilities
	}
	var errs field.ErrorList
	restricted := level == ecsv1alpha1.ContainerPolicyRestricted
	if caps != nil {
		for j, c := range caps.Add {
			name := CapabilityName(c)
			allowed := slices.Contains(baselineCapabilities, name)
			if restricted {
				allowed = name == restrictedCapability
			}
			if !allowed {
				errs = append(errs, field.Forbidden(path.Child("add").Index(j), fmt.Sprintf("capability %s is not allowed at level %s (allowed: %s)",
					c, level, strings.Join(allowedCapabilities(level), ", "))))
			}
		}
	}
	if restricted && (caps == nil || !slices.ContainsFunc(caps.Drop, func(c ecsv1alpha1.Capability) bool { return CapabilityName(c) == "ALL" })) {
		errs = append(errs, field.Required(path.Child("drop"), "must include ALL at level restricted"))
	}
	return errs
}

// checkSecurityOptions refuses, as Pod Security Standards' baseline does, the
// dockerSecurityOptions that lift the process's confinement: an unconfined seccomp
// or AppArmor profile.
func checkSecurityOptions(level ecsv1alpha1.ContainerPolicyLevel, path *field.Path, opts []string) field.ErrorList {
	var errs field.ErrorList
	for j, o := range opts {
		switch {
		case UnconfinedSeccomp(o):
			errs = append(errs, field.Forbidden(path.Index(j), fmt.Sprintf("%s: an unconfined seccomp profile is not allowed at level %s (the runtime's default profile applies)", o, level)))
		case unconfinedAppArmor(o):
			errs = append(errs, field.Forbidden(path.Index(j), fmt.Sprintf("%s: an unconfined AppArmor profile is not allowed at level %s", o, level)))
		}
	}
	return errs
}

func allowedCapabilities(level ecsv1alpha1.ContainerPolicyLevel) []string {
	if level == ecsv1alpha1.ContainerPolicyRestricted {
		return []string{restrictedCapability}
	}
	return baselineCapabilities
}

// CapabilityName is a capability as the runtime reads it: upper case, without the
// CAP_ prefix, so "cap_sys_admin" and "SYS_ADMIN" are the same capability here as in
// the container.
func CapabilityName(c ecsv1alpha1.Capability) string {
	return strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(string(c))), "CAP_")
}

// NonRootUser reports whether user (user, uid, user:group or uid:gid, as a container
// definition or an image config names it) is known not to be root before the
// container starts, and if not, why. Only a numeric, non-zero UID is: a name could
// map to UID 0 in the image's /etc/passwd, so, as the kubelet does for runAsNonRoot,
// a name other than root cannot be verified and is refused too. The group does not
// matter (Pod Security Standards' restricted level allows group 0 as well).
func NonRootUser(user string) (bool, string) {
	uid, _, _ := strings.Cut(strings.TrimSpace(user), ":")
	switch uid {
	case "":
		return false, "runs as root (no user)"
	case "root":
		return false, fmt.Sprintf("runs as root (user %q)", user)
	}
	n, err := strconv.ParseUint(uid, 10, 32)
	switch {
	case err != nil:
		return false, fmt.Sprintf("runs as user %q, a name that cannot be verified as non-root before the container starts", user)
	case n == 0:
		return false, fmt.Sprintf("runs as root (user %q)", user)
	}
	return true, ""
}

// CheckImageUser judges, at level, the user a container runs as when its definition
// sets none: the image config's (imageUser). It returns nil when that is allowed: at
// levels below restricted, when the container sets user (Check judged that), or when
// the image's user is a numeric, non-zero UID. index is the container's position in
// containerDefinitions, for the field path.
func CheckImageUser(level ecsv1alpha1.ContainerPolicyLevel, index int, containerUser, imageUser string) *field.Error {
	if level == "" {
		level = ecsv1alpha1.DefaultContainerPolicyLevel
	}
	if level == ecsv1alpha1.ContainerPolicyPrivileged || level == ecsv1alpha1.ContainerPolicyBaseline || containerUser != "" {
		return nil
	}
	if ok, why := NonRootUser(imageUser); !ok {
		return field.Forbidden(field.NewPath("spec", "containerDefinitions").Index(index).Child("user"),
			"user is unset and the image "+why+"; not allowed at level restricted: set user to a non-zero UID")
	}
	return nil
}

// Message says in one line, for a condition, an Event or a stopped reason, that
// revision (family:N) exceeds the container policy of cluster at level, and lists
// every offending field.
func Message(revision, cluster string, level ecsv1alpha1.ContainerPolicyLevel, errs field.ErrorList) string {
	parts := make([]string, 0, len(errs))
	for _, e := range errs {
		parts = append(parts, e.Error())
	}
	return fmt.Sprintf("task definition %s exceeds the container policy of cluster %s (level %s): %s",
		revision, cluster, level, strings.Join(parts, "; "))
}
