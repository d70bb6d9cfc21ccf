package network

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"golang.org/x/sys/unix"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/testenv"
)

// The bridge and subnet of this package's tests, apart from the agent's defaults so
// the tests can run beside end-to-end ones.
const (
	testBridge = "berthnt0"
	testSubnet = "10.231.0.0/24"
)

// realManager is a Manager on the instance's CNI plugins; without root, plugins or
// iptables it fails in CI and skips elsewhere.
func realManager(t *testing.T, dir string) *Manager {
	t.Helper()
	testenv.Require(t, testenv.MissingRoot(),
		testenv.MissingFiles(DefaultPluginDir, []string{"bridge", "host-local", "portmap", "loopback"}, "apt-get install containernetworking-plugins"),
		testenv.MissingBinary("iptables", "apt-get install iptables"))
	m, err := New(Config{StateDir: dir, Bridge: testBridge, Subnet: testSubnet, PortMin: 42000, PortMax: 42999,
		Log: testr.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", testBridge).Run() })
	return m
}

// serveIn serves "ok" over HTTP on port inside the network namespace at nsPath, as a
// task's container would, until the test ends.
func serveIn(t *testing.T, nsPath string, port int) {
	t.Helper()
	type result struct {
		l   net.Listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// A socket belongs to the namespace it was made in; the thread is never
		// unlocked, so it dies with this goroutine instead of serving others.
		runtime.LockOSThread()
		fd, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer func() { _ = unix.Close(fd) }()
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			ch <- result{err: err}
			return
		}
		l, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
		ch <- result{l, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }),
		ReadHeaderTimeout: time.Second}
	go func() { _ = srv.Serve(r.l) }()
	t.Cleanup(func() { _ = srv.Close() })
}

func get(port int32) (string, error) {
	c := http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func iptablesMentions(t *testing.T, uid types.UID) bool {
	t.Helper()
	out, err := exec.Command("iptables-save").CombinedOutput()
	if err != nil {
		t.Fatalf("iptables-save: %v\n%s", err, out)
	}
	return strings.Contains(string(out), string(uid))
}

// TestRealCNI publishes a port of a task's namespace on the instance through the
// real plugins, keeps it across a restart of the manager, and removes every trace on
// teardown.
func TestRealCNI(t *testing.T) {
	dir := t.TempDir()
	m := realManager(t, dir)
	ctx := context.Background()
	uid := types.UID(fmt.Sprintf("cni-test-%d", os.Getpid()))
	t.Cleanup(func() { _ = m.Teardown(ctx, uid) })

	mappings := []ecsv1alpha1.PortMapping{{ContainerPort: 8080}, {ContainerPort: 9090, HostPort: ptr.To[int32](42999)}}
	path, _, bindings, err := m.Setup(ctx, uid, mappings)
	if err != nil {
		t.Fatal(err)
	}
	if path != filepath.Join(dir, "netns", string(uid)) || !isNetNS(path) {
		t.Fatalf("namespace %s is not at its place or not mounted", path)
	}
	if len(bindings) != 2 || bindings[0].HostPort < 42000 || bindings[0].HostPort > 42998 || bindings[1].HostPort != 42999 {
		t.Fatalf("bindings %+v", bindings)
	}
	serveIn(t, path, 8080)
	if body, err := get(bindings[0].HostPort); err != nil || body != "ok" {
		t.Fatalf("GET the dynamic host port: %q, %v", body, err)
	}
	out, err := exec.Command("nsenter", "--net="+path, "ip", "-o", "addr", "show", "up").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "lo ") || !strings.Contains(string(out), "10.231.0.") {
		t.Errorf("addresses in the namespace (%v):\n%s", err, out)
	}

	// A new manager (an agent restart) finds the task's network again.
	m2 := realManager(t, dir)
	uids, err := m2.Recover(ctx)
	if err != nil || len(uids) != 1 || uids[0] != uid {
		t.Fatalf("Recover = %v, %v", uids, err)
	}
	path2, _, bindings2, err := m2.Setup(ctx, uid, mappings)
	if err != nil || path2 != path || bindings2[0] != bindings[0] || bindings2[1] != bindings[1] {
		t.Fatalf("Setup after a restart = %s %+v %v, want %s %+v", path2, bindings2, err, path, bindings)
	}
	if body, err := get(bindings[0].HostPort); err != nil || body != "ok" {
		t.Fatalf("GET after the restart: %q, %v", body, err)
	}

	if err := m2.Teardown(ctx, uid); err != nil {
		t.Fatal(err)
	}
	if _, err := get(bindings[0].HostPort); err == nil {
		t.Errorf("the host port still answers after teardown")
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "netns")); len(entries) != 0 {
		t.Errorf("netns directory not empty: %v", entries)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "network")); len(entries) != 0 {
		t.Errorf("state directory not empty: %v", entries)
	}
	if iptablesMentions(t, uid) {
		t.Errorf("iptables still mentions the task after teardown")
	}
	if err := m2.Teardown(ctx, uid); err != nil {
		t.Errorf("second teardown: %v", err)
	}
}
