// Package testenv starts a real kube-apiserver and etcd (the binaries that `make tools`
// links into bin/) with Berth's CRDs installed, for integration tests.
//
// One apiserver is shared by every test of a package: start it from TestMain with
// Run, and give each test its own namespace (Namespace) so tests stay independent.
package testenv

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/berthdev/berth/internal/kube"
)

// Env is a running apiserver with Berth's CRDs.
type Env struct {
	// Config reaches the apiserver as a cluster administrator.
	Config *rest.Config
	// Client is a plain (uncached) client with Berth's types registered.
	Client client.Client
	// Scheme has the core Kubernetes and Berth types.
	Scheme *runtime.Scheme
	// Kubeconfig is the path of an admin kubeconfig file, for kubectl and helm.
	Kubeconfig string

	env *envtest.Environment

	// The token of TaskReaderToken, made once.
	readerOnce  sync.Once
	readerToken string
	readerErr   error
}

// RepoRoot is the root of the Berth repository.
func RepoRoot() string {
	_, file, _, _ := goruntime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// BerthBinary builds a static berth, as `make build` does, into a directory of the
// test. An agent that runs inside a test binary needs it: the agent runs its berth
// binary as tasks' pause process and as the log driver of containers with a
// terminal, and a test binary is neither berth nor static.
func BerthBinary(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "berth")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
	cmd.Dir = RepoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// BinDir holds kube-apiserver and etcd; KUBEBUILDER_ASSETS overrides it.
func BinDir() string {
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		return d
	}
	return filepath.Join(RepoRoot(), "bin")
}

// Start starts etcd and kube-apiserver and installs the CRDs of config/crd/bases.
func Start() (*Env, error) {
	bin := BinDir()
	for _, b := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			return nil, fmt.Errorf("%s not found in %s: run `make tools` first: %w", b, bin, err)
		}
	}
	e := &envtest.Environment{
		BinaryAssetsDirectory: bin,
		CRDDirectoryPaths:     []string{filepath.Join(RepoRoot(), "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		// envtest's default of 20 s is too short when several apiservers start at
		// once on 2 busy cores (the benchmark smoke test starts six): one timed out
		// after 49-55 s starts of the others.
		ControlPlaneStartTimeout: 2 * time.Minute,
	}
	cfg, err := e.Start()
	if err != nil {
		// envtest leaves etcd and the apiserver running when it fails after starting
		// them (a CRD the apiserver refuses): stop them, or they outlive the test
		// and hold whatever the test process held, such as `flock`'s lock.
		_ = e.Stop()
		return nil, fmt.Errorf("starting kube-apiserver and etcd from %s: %w", bin, err)
	}
	// Integration tests create many objects quickly; do not let client-side rate
	// limiting make them slow or flaky.
	cfg.QPS, cfg.Burst = 1000, 2000
	s := kube.Scheme
	c, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		_ = e.Stop()
		return nil, err
	}
	env := &Env{Config: cfg, Client: c, Scheme: s, env: e}
	if env.Kubeconfig, err = writeKubeconfig(e); err != nil {
		_ = e.Stop()
		return nil, err
	}
	return env, nil
}

// Stop stops the apiserver and etcd and removes their data.
func (e *Env) Stop() error {
	if e.Kubeconfig != "" {
		_ = os.RemoveAll(filepath.Dir(e.Kubeconfig))
	}
	return e.env.Stop()
}

// Run is a TestMain helper: it starts an Env, stores it in *env, runs the tests and
// stops the Env. With -short, integration tests are skipped and no apiserver starts.
func Run(m *testing.M, env **Env) int {
	flag.Parse()
	// controller-runtime warns when no logger is set; tests opt in with BERTH_TEST_LOGS.
	ctrl.SetLogger(logr.Discard())
	if os.Getenv("BERTH_TEST_LOGS") == "" {
		// klog is what the Kubernetes libraries in the agents these tests start
		// log through (delegated authentication starts a controller per agent).
		klog.SetLogger(logr.Discard())
	}
	if testing.Short() {
		fmt.Println("skipping integration tests in -short mode")
		return 0
	}
	e, err := Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	*env = e
	code := m.Run()
	if err := e.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping test apiserver:", err)
	}
	return code
}

// AddUser makes a user the apiserver authenticates by a client certificate and
// returns a configuration that acts as it, with the Env's rate limits. The user has
// no rights until a test binds it a role: tests of what RBAC allows use it.
func (e *Env) AddUser(name string, groups ...string) (*rest.Config, error) {
	u, err := e.env.ControlPlane.AddUser(envtest.User{Name: name, Groups: groups}, e.Config)
	if err != nil {
		return nil, fmt.Errorf("adding user %s: %w", name, err)
	}
	cfg := u.Config()
	cfg.QPS, cfg.Burst = e.Config.QPS, e.Config.Burst
	return cfg, nil
}

// Namespace creates a namespace unique to the test and deletes it at cleanup.
func (e *Env) Namespace(t testing.TB) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "t-"}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.Client.Create(ctx, ns); err != nil {
		t.Fatalf("creating test namespace: %v", err)
	}
	t.Cleanup(func() { _ = e.Client.Delete(context.Background(), ns) })
	return ns.Name
}

func writeKubeconfig(e *envtest.Environment) (string, error) {
	user, err := e.ControlPlane.AddUser(envtest.User{Name: "berth-test-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return "", fmt.Errorf("adding admin user: %w", err)
	}
	data, err := user.KubeConfig()
	if err != nil {
		return "", fmt.Errorf("rendering kubeconfig: %w", err)
	}
	dir, err := os.MkdirTemp("", "berth-testenv-")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "kubeconfig")
	return path, os.WriteFile(path, data, 0o600)
}

// StartManager runs a controller-runtime manager against the Env until the test ends.
// setup registers what the test needs (controllers, indexes, runnables) before start.
// Metrics and probes are off and leader election is skipped, so tests can run several
// managers at once.
func (e *Env) StartManager(t testing.TB, opts ctrl.Options, setup func(context.Context, ctrl.Manager) error) ctrl.Manager {
	t.Helper()
	opts.Scheme = e.Scheme
	opts.Metrics = metricsserver.Options{BindAddress: "0"}
	opts.HealthProbeBindAddress = "0"
	if opts.Controller.SkipNameValidation == nil {
		skip := true // tests start the same controllers in several managers
		opts.Controller.SkipNameValidation = &skip
	}
	mgr, err := ctrl.NewManager(e.Config, opts)
	if err != nil {
		t.Fatalf("creating manager: %v", err)
	}
	ctx, cancel := context.WithCancel(ctrl.LoggerInto(context.Background(), TestLogger(t)))
	if err := setup(ctx, mgr); err != nil {
		cancel()
		t.Fatalf("setting up manager: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager stopped with error: %v", err)
		}
	})
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		t.Fatalf("manager cache never synced")
	}
	return mgr
}
