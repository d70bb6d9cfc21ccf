package integration

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// TestKubectlParsesServerVersion: the toolchain stamps kube-apiserver's version, or
// kubectl would see v0.0.0-master and refuse to talk to it.
func TestKubectlParsesServerVersion(t *testing.T) {
	out, err := exec.Command("kubectl", "--kubeconfig", env.Kubeconfig, "version", "-o", "json").Output()
	if err != nil {
		t.Fatalf("kubectl version: %v\n%s", err, out)
	}
	var v struct {
		ServerVersion struct {
			GitVersion string `json:"gitVersion"`
			Major      string `json:"major"`
			Minor      string `json:"minor"`
		} `json:"serverVersion"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("decoding %s: %v", out, err)
	}
	sv := v.ServerVersion
	if !strings.HasPrefix(sv.GitVersion, "v1.37.") || sv.Major != "1" || sv.Minor != "37" {
		t.Errorf("server version %+v, want v1.37.x stamped with major 1 minor 37", sv)
	}
}
