package manager

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthdev/berth/controllers"
	"github.com/berthdev/berth/test/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Run(m, &env)) }

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String()
}

// waitHTTP polls url until it answers 200 or the deadline passes, and returns the body.
func waitHTTP(t *testing.T, url string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return string(body)
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, body)
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s never answered 200; last: %s", url, last)
	return ""
}

func TestManagerServesProbesAndMetrics(t *testing.T) {
	o := DefaultOptions()
	o.Kubeconfig = env.Kubeconfig
	o.MetricsBindAddress = freeAddr(t)
	o.HealthProbeBindAddress = freeAddr(t)
	o.LeaderElection = true
	o.LeaderElectionNamespace = "default"
	o.LeaderElectionID = "berth-manager-test"

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, o) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager returned %v", err)
		}
	}()

	waitHTTP(t, "http://"+o.HealthProbeBindAddress+"/healthz")
	ready := waitHTTP(t, "http://"+o.HealthProbeBindAddress+"/readyz?verbose")
	if !strings.Contains(ready, "crds ok") {
		t.Errorf("readyz does not report the CRD check: %q", ready)
	}
	metrics := waitHTTP(t, "http://"+o.MetricsBindAddress+"/metrics")
	if !strings.Contains(metrics, "rest_client_requests_total") {
		t.Errorf("metrics lack client-go request counts")
	}
	// Leader election took the lease, so the process is the active manager.
	waitLease(t, "default", "berth-manager-test")
}

func waitLease(t *testing.T, ns, name string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		out, err := exec.Command("kubectl", "--kubeconfig", env.Kubeconfig, "get", "lease", "-n", ns, name, "-o", "jsonpath={.spec.holderIdentity}").CombinedOutput()
		if err == nil && len(out) > 0 {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("leader election lease %s/%s was never acquired", ns, name)
}

func TestOptionsValidate(t *testing.T) {
	cases := []struct {
		name    string
		mutate  func(*Options)
		wantErr string
	}{
		{name: "defaults", mutate: func(*Options) {}},
		{name: "zero qps", mutate: func(o *Options) { o.QPS = 0 }, wantErr: "--kube-api-qps"},
		{name: "zero burst", mutate: func(o *Options) { o.Burst = 0 }, wantErr: "--kube-api-burst"},
		{name: "leader election without id", mutate: func(o *Options) { o.LeaderElection, o.LeaderElectionID = true, "" }, wantErr: "--leader-election-id"},
		{name: "sub-second autoscaling staleness", mutate: func(o *Options) { o.Controllers.AutoScalingStaleAfter = time.Millisecond },
			wantErr: "--autoscaling-stale-after"},
		{name: "zero autoscaling interval", mutate: func(o *Options) { o.Controllers.AutoScalingInterval = 0 }, wantErr: "--autoscaling-evaluation-interval"},
		{name: "gateway without a certificate", mutate: func(o *Options) { o.Gateway.BindAddress = ":9444" }, wantErr: "--gateway-cert-dir"},
		{name: "gateway only", mutate: func(o *Options) {
			o.RunControllers, o.Gateway.BindAddress, o.Gateway.CertDir = false, ":9444", "/certs"
		}},
		{name: "neither controllers nor gateway", mutate: func(o *Options) { o.RunControllers = false }, wantErr: "--controllers=false needs --gateway-bind-address"},
		{name: "negative writes per pass", mutate: func(o *Options) { o.Controllers.ServiceMaxWritesPerPass = -1 }, wantErr: "--service-max-writes-per-pass"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := DefaultOptions()
			tc.mutate(&o)
			err := o.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v does not name %s", err, tc.wantErr)
			}
		})
	}
}

func TestFlagsOverrideDefaults(t *testing.T) {
	o := DefaultOptions()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	o.BindFlags(fs)
	if err := fs.Parse([]string{"--kube-api-qps=42", "--kube-api-burst=84", "--leader-elect", "--kubeconfig=/x",
		"--autoscaling-stale-after=10s", "--autoscaling-evaluation-interval=2s"}); err != nil {
		t.Fatal(err)
	}
	if o.QPS != 42 || o.Burst != 84 || !o.LeaderElection || o.Kubeconfig != "/x" ||
		o.Controllers.AutoScalingStaleAfter != 10*time.Second || o.Controllers.AutoScalingInterval != 2*time.Second {
		t.Fatalf("flags not applied: %+v", o)
	}
}

// TestDefaultWorkers: the manager starts with the controllers' default worker
// counts, which `make bench` chose (see controllers.DefaultSchedulerWorkers), and the
// flags document them.
func TestDefaultWorkers(t *testing.T) {
	o := DefaultOptions()
	if o.Controllers.SchedulerWorkers != controllers.DefaultSchedulerWorkers || o.Controllers.ServiceWorkers != controllers.DefaultServiceWorkers {
		t.Errorf("default workers %+v, want the controllers' defaults", o.Controllers)
	}
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	o.BindFlags(fs)
	if got := fs.Lookup("scheduler-workers").DefValue; got != fmt.Sprint(controllers.DefaultSchedulerWorkers) {
		t.Errorf("--scheduler-workers defaults to %s", got)
	}
}

// TestBinaryManagerCommand runs the real `berth manager --kubeconfig` binary, the
// command-line contract, and waits for it to become ready.
func TestBinaryManagerCommand(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "berth")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = testenv.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	probe := freeAddr(t)
	cmd := exec.Command(bin, "manager", "--kubeconfig", env.Kubeconfig,
		"--metrics-bind-address", "0", "--health-probe-bind-address", probe, "--zap-log-level", "debug")
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		if err := cmd.Wait(); err != nil {
			t.Errorf("berth manager did not exit cleanly on SIGINT: %v\n%s", err, logs.String())
		}
	}()
	waitHTTP(t, "http://"+probe+"/readyz")
	if !strings.Contains(logs.String(), `"msg":"berth manager"`) {
		t.Errorf("expected structured JSON logs, got:\n%s", logs.String())
	}
}
