package up

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

func TestOptionsValidate(t *testing.T) {
	long := "/" + strings.Repeat("x", 100)
	cases := []struct {
		name    string
		mutate  func(*Options)
		wantErr string
	}{
		{name: "defaults", mutate: func(*Options) {}},
		{name: "empty state dir", mutate: func(o *Options) { o.StateDir = "" }, wantErr: "--state-dir: must not be empty"},
		{name: "socket path too long", mutate: func(o *Options) { o.StateDir = long }, wantErr: "--state-dir: " + long + " is too long"},
		{name: "bad apiserver port", mutate: func(o *Options) { o.APIServerPort = 70000 }, wantErr: "--apiserver-port: 70000 is not a port"},
		{name: "bad web port", mutate: func(o *Options) { o.WebPort = 0 }, wantErr: "--web-port: 0 is not a port"},
		{name: "no console", mutate: func(o *Options) { o.ConsolePort = 0 }},
		{name: "bad console port", mutate: func(o *Options) { o.ConsolePort = -1 }, wantErr: "--console-port: -1 is not a port"},
		{name: "negative hollow", mutate: func(o *Options) { o.HollowInstances = -1 }, wantErr: "--hollow-instances: -1 is out of range"},
		{name: "no instance name", mutate: func(o *Options) { o.InstanceName = "" }, wantErr: "--instance-name: must not be empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := DefaultOptions()
			tc.mutate(&o)
			err := o.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				if !filepath.IsAbs(o.StateDir) {
					t.Errorf("state dir %q not made absolute", o.StateDir)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate() = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// TestPKI: the CA and leaf certificates are issued once and reused; a changed
// identity is reissued; clients chain to the CA with their user and groups.
func TestPKI(t *testing.T) {
	l := newLayout(t.TempDir())
	if err := os.MkdirAll(l.path("pki"), 0o700); err != nil {
		t.Fatal(err)
	}
	p, err := loadOrCreatePKI(l)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := p.client("agent", AgentUserPrefix+"worker-1", AgentGroup)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := loadKeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if kp.cert.Subject.CommonName != "berth:agent:worker-1" || len(kp.cert.Subject.Organization) != 1 || kp.cert.Subject.Organization[0] != AgentGroup {
		t.Errorf("subject = %v", kp.cert.Subject)
	}
	if _, err := kp.cert.Verify(x509.VerifyOptions{Roots: pool(p.ca.cert), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client certificate does not verify: %v", err)
	}
	if st, _ := os.Stat(keyFile); st.Mode().Perm() != 0o600 {
		t.Errorf("key mode = %v, want 0600", st.Mode().Perm())
	}

	// A second run reuses the CA and the pair.
	p2, err := loadOrCreatePKI(l)
	if err != nil {
		t.Fatal(err)
	}
	if !p2.ca.cert.Equal(p.ca.cert) {
		t.Error("the CA was reissued")
	}
	if _, _, err := p2.client("agent", AgentUserPrefix+"worker-1", AgentGroup); err != nil {
		t.Fatal(err)
	}
	same, _ := loadKeyPair(certFile, keyFile)
	if !same.cert.Equal(kp.cert) {
		t.Error("an unchanged client certificate was reissued")
	}
	// Another instance name is another identity.
	if _, _, err := p2.client("agent", AgentUserPrefix+"worker-2", AgentGroup); err != nil {
		t.Fatal(err)
	}
	other, _ := loadKeyPair(certFile, keyFile)
	if other.cert.Subject.CommonName != "berth:agent:worker-2" {
		t.Errorf("certificate not reissued for the new identity: %v", other.cert.Subject)
	}

	sc, sk, err := p2.serving()
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := loadKeyPair(sc, sk)
	if err := srv.cert.VerifyHostname("127.0.0.1"); err != nil {
		t.Errorf("serving certificate: %v", err)
	}
	if time.Until(srv.cert.NotAfter) < 300*24*time.Hour {
		t.Errorf("serving certificate expires %v", srv.cert.NotAfter)
	}
}

func pool(c *x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c)
	return p
}

func TestLogTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.log")
	var b strings.Builder
	for i := 0; i < 100; i++ {
		b.WriteString("line " + strings.Repeat("x", i%3) + "\n")
	}
	b.WriteString("the last line\n")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	got := logTail(path, 3)
	if lines := strings.Split(got, "\n"); len(lines) != 3 || !strings.HasSuffix(lines[2], "the last line") {
		t.Errorf("logTail = %q", got)
	}
	if got := logTail(filepath.Join(t.TempDir(), "none"), 3); !strings.Contains(got, "no log") {
		t.Errorf("logTail of a missing file = %q", got)
	}
}

// TestWebProxyBackends: only ready endpoints on this machine's addresses are
// used; terminating ones and those of other (hollow) instances are not.
func TestWebProxyBackends(t *testing.T) {
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: "web-abc"},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Port: ptr.To[int32](49153)}},
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"192.0.2.10"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}},
			{Addresses: []string{"192.0.2.10"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(false)}},
			{Addresses: []string{"198.51.100.7"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}},
		},
	}
	if err := idx.Add(slice); err != nil {
		t.Fatal(err)
	}
	p := &webProxy{ns: "default", service: "web", lister: discoverylisters.NewEndpointSliceLister(idx),
		local: map[string]bool{"192.0.2.10": true}}
	got := p.backends()
	if len(got) != 1 || got[0] != "192.0.2.10:49153" {
		t.Errorf("backends = %v, want [192.0.2.10:49153]", got)
	}
}

func TestSampleRegistryHosts(t *testing.T) {
	got := hostsTOML(41234)
	for _, want := range []string{`server = "http://127.0.0.1:41234"`, `[host."http://127.0.0.1:41234"]`, `"pull", "resolve"`} {
		if !strings.Contains(got, want) {
			t.Errorf("hosts.toml lacks %q:\n%s", want, got)
		}
	}
}

// TestFreePortNeverRepeats: ports picked for different components differ even
// though none is bound between the picks.
func TestFreePortNeverRepeats(t *testing.T) {
	seen := map[int]bool{}
	for range 200 {
		p, err := freePort(0)
		if err != nil {
			t.Fatal(err)
		}
		if seen[p] {
			t.Fatalf("port %d picked twice", p)
		}
		seen[p] = true
	}
}

// TestConsoleArgs: the console acts as the admin, listens on loopback only and
// leaves its token where `up` reads it.
func TestConsoleArgs(t *testing.T) {
	l := newLayout("/state")
	got := strings.Join(consoleArgs(l, 8484), " ")
	want := "console --kubeconfig=/state/kubeconfig --address=127.0.0.1:8484 --token-file=/state/console-token"
	if got != want {
		t.Errorf("consoleArgs = %q, want %q", got, want)
	}
}
