// Package awsconfig writes the AWS configuration that points the aws CLI, boto3 and
// the AWS SDKs at a Berth ECS API (`berth api`): a config file and a shared
// credentials file, used through AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE so
// that nothing in ~/.aws changes.
//
// The endpoint is in the config file's services section (`services = berth` in the
// profile, and a [services berth] section with ecs, application_auto_scaling and
// sts), which the aws CLI reads
// from versions 1.29 and 2.13 and the SDKs from their 2023 releases. Older clients
// (Debian bookworm's aws CLI 2.9, say) ignore it and need --endpoint-url: no plugin
// is written for them, because a [plugins] section breaks every aws CLI v1.
package awsconfig

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Services are the services whose endpoint is Berth's, by the keys of a services
// section (the service ID in snake case, as botocore and the SDKs look it up): the
// API serves ECS, Application Auto Scaling for ECS services, and STS's
// GetCallerIdentity, which tools call to check a profile or learn the account.
var Services = []string{"ecs", "application_auto_scaling", "sts"}

// Names in the files.
const (
	// ServicesSection is the services section the profile names.
	ServicesSection = "berth"
	// Profile is the only profile written.
	Profile = "default"
)

// Endpoint is one Berth ECS API and a credential for it.
type Endpoint struct {
	// URL is the API's base URL, e.g. http://127.0.0.1:40123.
	URL string
	// Region is the profile's region: it must be the region `berth api` signs in.
	Region string
	// AccessKeyID and SecretAccessKey are an ECS API credential
	// (`berth api credentials create`).
	AccessKeyID, SecretAccessKey string
}

// Validate names the first field that cannot be written into the files.
func (e Endpoint) Validate() error {
	u, err := url.Parse(e.URL)
	switch {
	case err != nil:
		return fmt.Errorf("endpoint URL %q: %w", e.URL, err)
	case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return fmt.Errorf("endpoint URL %q: want http(s)://host:port", e.URL)
	case !regionPattern.MatchString(e.Region):
		return fmt.Errorf("region %q: want a region name such as us-east-1", e.Region)
	case !keyPattern.MatchString(e.AccessKeyID):
		return errors.New("access key ID: want 16 to 128 letters and digits")
	case e.SecretAccessKey == "" || strings.ContainsAny(e.SecretAccessKey, "\r\n \t"):
		return errors.New("secret access key: want a non-empty value without whitespace")
	}
	return nil
}

var (
	regionPattern = regexp.MustCompile(`^[a-z0-9-]{1,64}$`)
	keyPattern    = regexp.MustCompile(`^[A-Za-z0-9]{16,128}$`)
)

// ConfigFile is the config file's text: the default profile with its region and
// services section, and the endpoints of Services.
func ConfigFile(e Endpoint) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by berth up: the aws CLI and the AWS SDKs call Berth's ECS API at %s.\n", e.URL)
	fmt.Fprintf(&b, "[%s]\nregion = %s\nservices = %s\n\n", Profile, e.Region, ServicesSection)
	fmt.Fprintf(&b, "[services %s]\n", ServicesSection)
	for _, s := range Services {
		fmt.Fprintf(&b, "%s =\n  endpoint_url = %s\n", s, e.URL)
	}
	return b.String()
}

// CredentialsFile is the shared credentials file's text: the default profile's key.
func CredentialsFile(e Endpoint) string {
	return fmt.Sprintf("[%s]\naws_access_key_id = %s\naws_secret_access_key = %s\n", Profile, e.AccessKeyID, e.SecretAccessKey)
}

// Files are the paths Write wrote.
type Files struct {
	Config, Credentials string
}

// Write writes dir/config and dir/credentials (readable by its owner only), each
// replaced atomically.
func Write(dir string, e Endpoint) (Files, error) {
	if err := e.Validate(); err != nil {
		return Files{}, err
	}
	f := Files{
		Config:      filepath.Join(dir, "config"),
		Credentials: filepath.Join(dir, "credentials"),
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Files{}, err
	}
	writes := []struct {
		path string
		data []byte
		mode os.FileMode
	}{
		{f.Config, []byte(ConfigFile(e)), 0o644},
		{f.Credentials, []byte(CredentialsFile(e)), 0o600},
	}
	for _, w := range writes {
		if err := writeFile(w.path, w.data, w.mode); err != nil {
			return Files{}, err
		}
	}
	return f, nil
}

// Env is the environment that selects the files: AWS_CONFIG_FILE and
// AWS_SHARED_CREDENTIALS_FILE.
func (f Files) Env() []string {
	return []string{"AWS_CONFIG_FILE=" + f.Config, "AWS_SHARED_CREDENTIALS_FILE=" + f.Credentials}
}

// Exports are Env as shell export lines, quoted when a path needs it.
func (f Files) Exports() []string {
	env := f.Env()
	out := make([]string, len(env))
	for i, kv := range env {
		name, value, _ := strings.Cut(kv, "=")
		out[i] = "export " + name + "=" + shellQuote(value)
	}
	return out
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)

func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	// WriteFile keeps the mode of a file that exists; a leftover must not widen it.
	if err := os.Chmod(tmp, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
