package awsconfig

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var endpoint = Endpoint{
	URL:             "http://127.0.0.1:40123",
	Region:          "us-east-1",
	AccessKeyID:     "BKIAABCDEFGHIJKLMNOP",
	SecretAccessKey: "s3cr3t+/s3cr3ts3cr3ts3cr3ts3cr3ts3cr3t12",
}

// TestWriteFiles: the config file names the services section with the endpoint for
// ecs, application_auto_scaling and sts (and nothing else: a [plugins] section would break aws CLI v1); the
// credentials file holds the key, readable by its owner only.
func TestWriteFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "aws")
	f, err := Write(dir, endpoint)
	if err != nil {
		t.Fatal(err)
	}
	wantConfig := `# Written by berth up: the aws CLI and the AWS SDKs call Berth's ECS API at http://127.0.0.1:40123.
[default]
region = us-east-1
services = berth

[services berth]
ecs =
  endpoint_url = http://127.0.0.1:40123
application_auto_scaling =
  endpoint_url = http://127.0.0.1:40123
sts =
  endpoint_url = http://127.0.0.1:40123
`
	wantCredentials := `[default]
aws_access_key_id = BKIAABCDEFGHIJKLMNOP
aws_secret_access_key = s3cr3t+/s3cr3ts3cr3ts3cr3ts3cr3ts3cr3t12
`
	tests := []struct {
		path     string
		want     []byte
		wantMode os.FileMode
	}{
		{f.Config, []byte(wantConfig), 0o644},
		{f.Credentials, []byte(wantCredentials), 0o600},
	}
	for _, tc := range tests {
		got, err := os.ReadFile(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(string(tc.want), string(got)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.path, diff)
		}
		st, err := os.Stat(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != tc.wantMode {
			t.Errorf("%s has mode %v, want %v", tc.path, st.Mode().Perm(), tc.wantMode)
		}
	}
}

// TestWriteReplacesAndNarrows: a second Write (a restarted `up` on a new port)
// replaces the files, and a credentials file left readable by others is narrowed.
func TestWriteReplacesAndNarrows(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "credentials.tmp"), []byte("old"), 0o666); err != nil {
		t.Fatal(err)
	}
	if _, err := Write(dir, endpoint); err != nil {
		t.Fatal(err)
	}
	moved := endpoint
	moved.URL = "http://127.0.0.1:40999"
	f, err := Write(dir, moved)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(f.Config)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), ":40123") || strings.Count(string(b), "endpoint_url = http://127.0.0.1:40999") != len(Services) {
		t.Errorf("config after the second Write:\n%s", b)
	}
	if st, err := os.Stat(f.Credentials); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("credentials mode after a leftover temporary file: %v (%v), want 0600", st.Mode().Perm(), err)
	}
}

func TestExports(t *testing.T) {
	tests := []struct {
		dir  string
		want []string
	}{
		{"/var/lib/berth/.berth/aws", []string{
			"export AWS_CONFIG_FILE=/var/lib/berth/.berth/aws/config",
			"export AWS_SHARED_CREDENTIALS_FILE=/var/lib/berth/.berth/aws/credentials",
		}},
		{"/home/me/my state's/aws", []string{
			`export AWS_CONFIG_FILE='/home/me/my state'\''s/aws/config'`,
			`export AWS_SHARED_CREDENTIALS_FILE='/home/me/my state'\''s/aws/credentials'`,
		}},
	}
	for _, tc := range tests {
		f := Files{Config: tc.dir + "/config", Credentials: tc.dir + "/credentials"}
		if diff := cmp.Diff(tc.want, f.Exports()); diff != "" {
			t.Errorf("Exports for %s (-want +got):\n%s", tc.dir, diff)
		}
	}
}

// TestValidateNamesTheField: what would corrupt the files or never be accepted by
// the CLI is refused, naming the field.
func TestValidateNamesTheField(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*Endpoint)
		wantErr string
	}{
		{"valid", func(*Endpoint) {}, ""},
		{"no scheme", func(e *Endpoint) { e.URL = "127.0.0.1:40123" }, "endpoint URL"},
		{"no host", func(e *Endpoint) { e.URL = "http://" }, "endpoint URL"},
		{"region with a newline", func(e *Endpoint) { e.Region = "us-east-1\n[plugins]" }, "region"},
		{"empty region", func(e *Endpoint) { e.Region = "" }, "region"},
		{"short key", func(e *Endpoint) { e.AccessKeyID = "BKIA" }, "access key ID"},
		{"secret with a newline", func(e *Endpoint) { e.SecretAccessKey = "a\nb" }, "secret access key"},
		{"empty secret", func(e *Endpoint) { e.SecretAccessKey = "" }, "secret access key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := endpoint
			tc.edit(&e)
			err := e.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("Validate = %v, want an error naming %q", err, tc.wantErr)
			}
			if _, werr := Write(t.TempDir(), e); (werr != nil) != (tc.wantErr != "") {
				t.Errorf("Write error = %v, want one: %v", werr, tc.wantErr != "")
			}
		})
	}
}
