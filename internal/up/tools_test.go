package up

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestMakeUpBuildsWhatUpRuns: the tool set `make up` builds (hack/tools.sh's "up")
// provides every binary `berth up` runs, runc included, and the aws CLI its printed
// exports are for, and none of the development tools, so that a newcomer's first
// `make up` does not spend minutes on them.
func TestMakeUpBuildsWhatUpRuns(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(root, "hack", "tools.sh"), "--list")
	cmd.Env = append(os.Environ(), "BERTH_TOOLS=up")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("hack/tools.sh --list: %v", err)
	}
	got := strings.Fields(string(out))
	for _, b := range append(slices.Clone(binaries), "runc", "pyclients") {
		if !slices.Contains(got, b) {
			t.Errorf("berth up runs %s, which `make up` does not provide (it provides %v)", b, got)
		}
	}
	for _, dev := range []string{"controller-gen", "helm", "golangci-lint"} {
		if slices.Contains(got, dev) {
			t.Errorf("`make up` builds %s, which berth up does not run", dev)
		}
	}
}
