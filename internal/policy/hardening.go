package policy

import (
	"slices"
	"strings"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// Hardening is the confinement the agent gives a container's process at a level,
// whatever its definition left out. The agent applies it as it is; it does not
// decide on its own.
type Hardening struct {
	// NoNewPrivileges stops the process gaining privileges through setuid and
	// setgid binaries or file capabilities (the kernel's no_new_privs).
	NoNewPrivileges bool
	// Seccomp filters the process's system calls through the runtime's default
	// seccomp profile (containerd's, which is Docker's); false runs it unconfined.
	Seccomp bool
}

// ContainerHardening decides the Hardening of container def in a cluster at level:
//   - every container gets the runtime's default seccomp profile, as Docker gives
//     it, except where its level allows the opt-out, privileged only: there a
//     privileged container (as Docker does) or one with seccomp=unconfined runs
//     unconfined. Baseline and restricted refuse both (Check), and apply the
//     profile anyway if such a container reaches the agent, so a level the agent
//     misreads fails closed;
//   - no-new-privileges when the container asks for it (dockerSecurityOptions),
//     and always at restricted, where a setuid binary must not give root to the
//     non-root user the level requires.
//
// An unset level is the default; a level the code does not know is restricted.
func ContainerHardening(level ecsv1alpha1.ContainerPolicyLevel, def *ecsv1alpha1.ContainerDefinition) Hardening {
	switch level {
	case "":
		level = ecsv1alpha1.DefaultContainerPolicyLevel
	case ecsv1alpha1.ContainerPolicyPrivileged, ecsv1alpha1.ContainerPolicyBaseline:
	default:
		level = ecsv1alpha1.ContainerPolicyRestricted
	}
	optOut := def.Privileged || slices.ContainsFunc(def.DockerSecurityOptions, UnconfinedSeccomp)
	return Hardening{
		NoNewPrivileges: level == ecsv1alpha1.ContainerPolicyRestricted || slices.ContainsFunc(def.DockerSecurityOptions, noNewPrivileges),
		Seccomp:         level != ecsv1alpha1.ContainerPolicyPrivileged || !optOut,
	}
}

// UnconfinedSeccomp reports whether the Docker security option o lifts the seccomp
// profile: seccomp=unconfined or seccomp:unconfined.
func UnconfinedSeccomp(o string) bool {
	return profileOption(o, "seccomp") == "unconfined"
}

// AppArmorProfile is the profile the Docker security option o names
// (apparmor:PROFILE or apparmor=PROFILE), or "" when o names none.
func AppArmorProfile(o string) string {
	return profileOption(o, "apparmor")
}

// unconfinedAppArmor reports whether o runs the process outside AppArmor:
// apparmor=unconfined or apparmor:unconfined.
func unconfinedAppArmor(o string) bool {
	return AppArmorProfile(o) == "unconfined"
}

// noNewPrivileges reports whether o is no-new-privileges (alone, :true or =true,
// the forms the API admits).
func noNewPrivileges(o string) bool {
	name, value, found := cutOption(o)
	return name == "no-new-privileges" && (!found || value == "true")
}

// profileOption is the value of option o when it names kind (seccomp, apparmor),
// and "" otherwise.
func profileOption(o, kind string) string {
	name, value, _ := cutOption(o)
	if name != kind {
		return ""
	}
	return value
}

// cutOption splits a Docker security option at its first ':' or '=', the two
// separators Docker accepts.
func cutOption(o string) (name, value string, found bool) {
	o = strings.TrimSpace(o)
	if i := strings.IndexAny(o, ":="); i >= 0 {
		return o[:i], o[i+1:], true
	}
	return o, "", false
}
