package up

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Component names: pid files, logs and messages use them.
const (
	compEtcd       = "etcd"
	compAPIServer  = "kube-apiserver"
	compContainerd = "containerd"
	compRegistry   = "registry"
	compManager    = "manager"
	compGateway    = "gateway"
	compAgent      = "agent"
	compHollow     = "hollow"
	compAPI        = "api"
	compConsole    = "console"
)

// stopOrder is the order components stop in: first what writes through the
// apiserver (the console and the ECS API first: their callers are people and scripts), then what runs
// containers (the agent sees its tasks through the gateway until it stops), then storage.
var stopOrder = []string{compConsole, compAPI, compHollow, compManager, compAgent, compGateway, compContainerd, compRegistry, compAPIServer, compEtcd}

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

// picked are the ports freePort returned: a port is free from its pick until the
// component it is for binds it, and the kernel may hand the same ephemeral port to
// the next bind in between (two components of one `up` then collide).
var picked = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// freePort returns preferred when it can be bound on 127.0.0.1, else a free port,
// never one it returned before.
func freePort(preferred int) (int, error) {
	picked.Lock()
	defer picked.Unlock()
	if preferred > 0 && !picked.ports[preferred] {
		if ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(preferred))); err == nil {
			_ = ln.Close()
			picked.ports[preferred] = true
			return preferred, nil
		}
	}
	// Hold every listener until a new port turns up, so the kernel cannot answer
	// an already picked one twice.
	var held []net.Listener
	defer func() {
		for _, ln := range held {
			_ = ln.Close()
		}
	}()
	for range 64 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		held = append(held, ln)
		if port := ln.Addr().(*net.TCPAddr).Port; !picked.ports[port] {
			picked.ports[port] = true
			return port, nil
		}
	}
	return 0, errors.New("no free loopback port that was not picked already")
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
