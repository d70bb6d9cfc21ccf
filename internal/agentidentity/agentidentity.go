// Package agentidentity says which container instance an authenticated caller acts
// for. It is the Go form of the rule config/admission/agent-policy.yaml states in
// CEL for writes; the manager's gateway applies it to reads. Both must agree, and
// test/integration/admission_test.go (TestAgentIdentityRuleMatchesPolicy) holds the two
// to one answer for every identity form.
package agentidentity

import (
	"fmt"
	"regexp"
	"strings"

	"k8s.io/apiserver/pkg/authentication/user"
)

// The identity forms of an agent.
const (
	// UserPrefix names the instance in a client certificate's CN (or a static user).
	UserPrefix = "berth:agent:"
	// Group holds every agent's user.
	Group = "berth:agents"
	// ServiceAccountPrefix starts the name of a ServiceAccount per external machine:
	// berth-agent-<instance>, in any namespace.
	ServiceAccountPrefix = "berth-agent-"
	// DefaultDaemonSetUser is the Helm chart's agent DaemonSet's ServiceAccount for a
	// release "berth" in berth-system; its tokens name their node.
	DefaultDaemonSetUser = "system:serviceaccount:berth-system:berth-agent"
	// NodeNameExtra is where the apiserver puts the node a ServiceAccount token is
	// bound to (through its pod).
	NodeNameExtra = "authentication.kubernetes.io/node-name"
)

var serviceAccountUser = regexp.MustCompile(`^system:serviceaccount:[^:]+:` + ServiceAccountPrefix + `([^:]+)$`)

// IsAgent tells whether u has an agent's form at all: such a caller is held to its
// instance, and one that names none may do nothing.
func IsAgent(u user.Info, daemonSetUser string) bool {
	name := u.GetName()
	if strings.HasPrefix(name, UserPrefix) || name == daemonSetUser || serviceAccountUser.MatchString(name) {
		return true
	}
	for _, g := range u.GetGroups() {
		if g == Group {
			return true
		}
	}
	return false
}

// Instance is the container instance u acts for, or an error that says why it acts
// for none. daemonSetUser is the chart's DaemonSet account (DefaultDaemonSetUser
// unless the release renders another).
func Instance(u user.Info, daemonSetUser string) (string, error) {
	name := u.GetName()
	switch {
	case strings.HasPrefix(name, UserPrefix) && len(name) > len(UserPrefix):
		return strings.TrimPrefix(name, UserPrefix), nil
	case name == daemonSetUser:
		if nodes := u.GetExtra()[NodeNameExtra]; len(nodes) == 1 && nodes[0] != "" {
			return nodes[0], nil
		}
		return "", fmt.Errorf("berth agent identity %s has a token bound to no node: use a token the kubelet projected into the agent's pod", name)
	}
	if m := serviceAccountUser.FindStringSubmatch(name); m != nil {
		return m[1], nil
	}
	return "", fmt.Errorf("berth agent identity %s names no container instance: agents authenticate as %s<instance>, as the ServiceAccount %s<instance>, or as the DaemonSet's ServiceAccount with a token bound to a pod on their node",
		name, UserPrefix, ServiceAccountPrefix)
}
