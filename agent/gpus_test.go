package agent

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berthdev/berth/agent/registration"
)

func TestGPUIDsFlag(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    []string // nil: detect from /dev
		wantErr string
	}{
		{name: "default detects", want: nil},
		{name: "declared", args: []string{"--gpu-ids", "0, 1,GPU-6f2c1a"}, want: []string{"0", "1", "GPU-6f2c1a"}},
		{name: "none", args: []string{"--gpu-ids", "none"}, want: []string{}},
		{name: "empty entry", args: []string{"--gpu-ids", "0,,1"}, wantErr: `--gpu-ids: "" is not a GPU ID`},
		{name: "twice", args: []string{"--gpu-ids", "0,1,0"}, wantErr: `--gpu-ids: "0" is listed twice`},
		{name: "separator inside", args: []string{"--gpu-ids", "a b"}, wantErr: `--gpu-ids: "a b" is not a GPU ID`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, ok := parseOptions(t, tc.args, tc.wantErr)
			if !ok {
				return
			}
			got, err := o.declaredGPUs()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" || (tc.want == nil) != (got == nil) {
				t.Errorf("declared GPUs (-want +got):\n%s (nil: %v, want nil: %v)", diff, got == nil, tc.want == nil)
			}
		})
	}
}

// TestDetectGPUs: the GPUs are the numbered /dev/nvidiaN nodes, in numeric order;
// the driver's control nodes are not GPUs.
func TestDetectGPUs(t *testing.T) {
	dev := t.TempDir()
	for _, node := range []string{"nvidia10", "nvidia2", "nvidia0", "nvidiactl", "nvidia-uvm", "nvidia-caps", "nvidia01", "null"} {
		if err := os.WriteFile(filepath.Join(dev, node), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got, err := registration.DetectGPUs(dev)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"0", "2", "10"}, got); diff != "" {
		t.Errorf("DetectGPUs (-want +got):\n%s", diff)
	}
	empty, err := registration.DetectGPUs(t.TempDir())
	if err != nil || len(empty) != 0 {
		t.Errorf("DetectGPUs of a machine without GPUs = %v, %v; want none", empty, err)
	}
}
