package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMissingAWSCLI: a CLI that reads the config file's services section qualifies
// (v1 from 1.29, v2 from 2.13); an older one and a missing binary are named with the
// reason.
func TestMissingAWSCLI(t *testing.T) {
	dir := t.TempDir()
	script := func(name, version string) string {
		p := filepath.Join(dir, name)
		body := "#!/bin/sh\necho '" + version + "'\n"
		if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name, path, want string
	}{
		{"v1", script("aws1", "aws-cli/1.45.11 Python/3.11.7 Linux/6.1 botocore/1.43.11"), ""},
		{"v2", script("aws2", "aws-cli/2.15.0 Python/3.11.6 Linux/6.1 exe/x86_64.debian.12 prompt/off"), ""},
		{"old v2", script("aws2old", "aws-cli/2.9.19 Python/3.11.2 Linux/6.1 source/x86_64.debian.12 prompt/off"), "predates"},
		{"old v1", script("aws1old", "aws-cli/1.22.34 Python/3.10.12 Linux/6.1 botocore/1.23.34"), "predates"},
		{"not aws", script("other", "something else"), "not an aws CLI version"},
		{"absent", filepath.Join(dir, "none"), "does not run"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := missingAWSCLI(tc.path)
			if (got == "") != (tc.want == "") || !strings.Contains(got, tc.want) {
				t.Errorf("missingAWSCLI(%s) = %q, want %q", tc.path, got, tc.want)
			}
			if got != "" && !strings.Contains(got, "make tools") {
				t.Errorf("missingAWSCLI(%s) = %q does not say how to get it", tc.path, got)
			}
		})
	}
}

func TestMissingBoto3(t *testing.T) {
	python := filepath.Join(t.TempDir(), "python3")
	if err := os.WriteFile(python, []byte("#!/bin/sh\necho \"ModuleNotFoundError: No module named 'boto3'\" >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got := missingBoto3(python); !strings.Contains(got, "cannot import boto3") || !strings.Contains(got, "No module named 'boto3'") {
		t.Errorf("missingBoto3 = %q, want the import error", got)
	}
}
