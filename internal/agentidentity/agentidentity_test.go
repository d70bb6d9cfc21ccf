package agentidentity

import (
	"testing"

	"k8s.io/apiserver/pkg/authentication/user"
)

func TestInstance(t *testing.T) {
	node := map[string][]string{NodeNameExtra: {"node-a"}}
	for _, tc := range []struct {
		name     string
		u        user.Info
		agent    bool
		instance string // "" expects an error
	}{
		{"certificate", &user.DefaultInfo{Name: "berth:agent:worker-1", Groups: []string{Group}}, true, "worker-1"},
		{"certificate without an instance", &user.DefaultInfo{Name: "berth:agent:"}, true, ""},
		{"external ServiceAccount", &user.DefaultInfo{Name: "system:serviceaccount:edge:berth-agent-pi-4"}, true, "pi-4"},
		{"DaemonSet token bound to a node", &user.DefaultInfo{Name: DefaultDaemonSetUser, Extra: node}, true, "node-a"},
		{"DaemonSet token bound to no node", &user.DefaultInfo{Name: DefaultDaemonSetUser}, true, ""},
		{"DaemonSet token with two nodes", &user.DefaultInfo{Name: DefaultDaemonSetUser, Extra: map[string][]string{NodeNameExtra: {"a", "b"}}}, true, ""},
		{"member of the group with another name", &user.DefaultInfo{Name: "mallory", Groups: []string{Group}}, true, ""},
		{"another release's account is not this one's", &user.DefaultInfo{Name: "system:serviceaccount:other:berth-agent", Extra: node}, false, ""},
		{"the manager", &user.DefaultInfo{Name: "berth-manager"}, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsAgent(tc.u, DefaultDaemonSetUser); got != tc.agent {
				t.Errorf("IsAgent = %v, want %v", got, tc.agent)
			}
			got, err := Instance(tc.u, DefaultDaemonSetUser)
			if tc.instance == "" {
				if err == nil {
					t.Fatalf("Instance = %q, want an error", got)
				}
				return
			}
			if err != nil || got != tc.instance {
				t.Fatalf("Instance = %q, %v; want %q", got, err, tc.instance)
			}
		})
	}
}
