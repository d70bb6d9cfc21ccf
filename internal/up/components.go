package up

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
)

// Component names: pid files, logs and messages use them.
const (
	compEtcd       = "etcd"
	compAPIServer  = "kube-apiserver"
	compContainerd = "containerd"
	compRegistry   = "registry"
	compManager    = "manager"
	compAgent      = "agent"
	compHollow     = "hollow"
)

// stopOrder is the order components stop in: first what writes through the
// apiserver, then what runs containers, then storage.
var stopOrder = []string{compHollow, compManager, compAgent, compContainerd, compRegistry, compAPIServer, compEtcd}

// binaries `up` runs besides itself, with what to do when one is missing.
var binaries = []string{compEtcd, compAPIServer, compContainerd, "containerd-shim-runc-v2", compRegistry}

// startTimeout bounds each component's startup; the first apiserver start
// (bootstrapping RBAC and priority levels) is the slowest, a few seconds here.
const startTimeout = 2 * time.Minute

// findBinary returns the path of tool: in dir, then in $PATH.
func findBinary(dir, tool string) (string, error) {
	if dir != "" {
		p := filepath.Join(dir, tool)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	if p, err := exec.LookPath(tool); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s not found in %s or $PATH (run `make tools`, or pass --bin-dir)", tool, dir)
}

// freePort returns preferred when it can be bound on 127.0.0.1, else a free port.
func freePort(preferred int) (int, error) {
	if preferred > 0 {
		if ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(preferred))); err == nil {
			_ = ln.Close()
			return preferred, nil
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// httpOK is a readiness check: GET url answers 200.
func httpOK(c *http.Client, url string) func(context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}
}

// etcdArgs runs a single-member etcd on loopback, its data in the state directory.
func etcdArgs(l layout, port int) []string {
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	return []string{
		"--name=berth-up",
		"--data-dir=" + l.etcdDataDir(),
		"--listen-client-urls=" + url,
		"--advertise-client-urls=" + url,
		// Peers never connect to a single member; a kernel-chosen port avoids
		// clashing with another etcd on 2380.
		"--listen-peer-urls=http://127.0.0.1:0",
		"--log-outputs=stderr",
	}
}

// apiServerFiles are the certificate files the apiserver needs.
type apiServerFiles struct {
	caFile, certFile, keyFile, saKeyFile, saPubFile string
}

func apiServerArgs(l layout, f apiServerFiles, port, etcdPort int) []string {
	return []string{
		fmt.Sprintf("--etcd-servers=http://127.0.0.1:%d", etcdPort),
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		// The "kubernetes" Service's endpoints would be this loopback address,
		// which the endpoint reconciler refuses; nothing here routes to it.
		"--endpoint-reconciler-type=none",
		fmt.Sprintf("--secure-port=%d", port),
		"--tls-cert-file=" + f.certFile,
		"--tls-private-key-file=" + f.keyFile,
		"--client-ca-file=" + f.caFile,
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + f.saPubFile,
		"--service-account-signing-key-file=" + f.saKeyFile,
		"--service-cluster-ip-range=10.0.0.0/24",
		"--allow-privileged=true",
		"--cert-dir=" + l.path("pki", "apiserver-generated"),
		// No controller-manager runs here to create namespaces' default
		// ServiceAccounts, which that plugin would wait for.
		"--disable-admission-plugins=ServiceAccount",
	}
}

// containerdConfig is containerd's configuration: everything under the state
// directory, and only the plugins Berth's agent uses (no CRI).
func containerdConfig(l layout) string {
	return fmt.Sprintf(`version = 3
root = %q
state = %q
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.cri.v1.images",
  "io.containerd.cri.v1.runtime",
  "io.containerd.podsandbox.controller.v1.podsandbox",
  "io.containerd.nri.v1.nri",
  "io.containerd.snapshotter.v1.blockfile",
  "io.containerd.snapshotter.v1.erofs",
  "io.containerd.differ.v1.erofs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = %q

[ttrpc]
  address = %q
`, l.path("containerd", "root"), l.path("containerd", "state"), l.containerdSocket(), l.containerdSocket()+".ttrpc")
}

// containerdServing is containerd's readiness check.
func containerdServing(socket string) func(context.Context) error {
	return func(ctx context.Context) error {
		if _, err := os.Stat(socket); err != nil {
			return err
		}
		cl, err := containerd.New(socket, containerd.WithTimeout(2*time.Second))
		if err != nil {
			return err
		}
		defer func() { _ = cl.Close() }()
		ok, err := cl.IsServing(ctx)
		if err != nil {
			return err
		}
		if !ok {
			return errors.New("not serving")
		}
		return nil
	}
}

// snapshotter is overlayfs when the state directory's filesystem can hold an
// overlay mount (not on overlayfs itself, as in many containers), else native.
func snapshotter(l layout) string {
	base := l.path("containerd", "overlay-probe")
	defer func() { _ = os.RemoveAll(base) }()
	for _, d := range []string{"lower", "upper", "work", "merged"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o700); err != nil {
			return "native"
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s",
		filepath.Join(base, "lower"), filepath.Join(base, "upper"), filepath.Join(base, "work"))
	merged := filepath.Join(base, "merged")
	if err := syscall.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		return "native"
	}
	_ = syscall.Unmount(merged, syscall.MNT_DETACH)
	return "overlayfs"
}

// registryConfig serves the registry on loopback with its storage in the state
// directory. The HTTP secret only signs upload state; a new one each start is fine.
func registryConfig(l layout, port int) (string, error) {
	secret := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		return "", err
	}
	return fmt.Sprintf(`version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: 127.0.0.1:%d
  secret: %s
`, l.path("registry", "data"), port, hex.EncodeToString(secret)), nil
}

// SampleRegistry is the registry host the samples name. containerd maps it to
// the registry `up` runs, on whatever port that got, through hosts.toml.
const SampleRegistry = "localhost:5000"

// hostsTOML points containerd's pulls of SampleRegistry at the local registry.
func hostsTOML(port int) string {
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	return fmt.Sprintf("server = %q\n\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n", url, url)
}

// pathEnv is $PATH with the tools' directory first and the system directories
// where Debian keeps runc and iptables.
func pathEnv(binDir string) string {
	parts := []string{binDir, os.Getenv("PATH"), "/usr/local/sbin", "/usr/sbin", "/sbin"}
	return "PATH=" + strings.Join(parts, ":")
}
