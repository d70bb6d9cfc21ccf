package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStaticBinary: a static executable can be the pause process; a dynamically
// linked one, a file that is not an executable and a missing one cannot, each with
// the flag named.
func TestStaticBinary(t *testing.T) {
	notELF := filepath.Join(t.TempDir(), "berth")
	if err := os.WriteFile(notELF, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path, wantErr string
	}{
		{"/bin/busybox", ""}, // busybox-static, which the conformance suite needs too
		{"/bin/bash", "dynamically linked"},
		{notELF, "--berth-binary " + notELF},
		{filepath.Join(t.TempDir(), "missing"), "no such file"},
		{"", "empty"},
	}
	for _, tc := range tests {
		err := staticBinary(tc.path)
		if tc.wantErr == "" {
			if err != nil {
				t.Errorf("staticBinary(%q) = %v, want nil", tc.path, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "--berth-binary") {
			t.Errorf("staticBinary(%q) = %v, want an error naming --berth-binary with %q", tc.path, err, tc.wantErr)
		}
	}
}
