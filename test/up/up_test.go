// Package up_test runs `berth up` and `berth down` as a user would, as processes
// of the built binary on real etcd, kube-apiserver, containerd, runc and registry,
// and checks that the sample web Service serves the demo page, that the aws CLI
// works with the exports it prints, and that nothing of Berth is left on the
// machine afterwards.
package up_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/ecsapi/auth"
	"github.com/berthdev/berth/internal/kube"
	"github.com/berthdev/berth/internal/up/demo"
	"github.com/berthdev/berth/test/testenv"
	ctrtest "github.com/berthdev/berth/test/testenv/containerd"
)

// bridgeName and bridgeSubnet keep this test's task network apart from other
// packages' agents that may run at the same time on the default bridge.
const (
	bridgeName   = "berthup0"
	bridgeSubnet = "10.199.0.0/16"
)

// berthBinary builds a static berth, as `make build` does: the demo image holds it.
func berthBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "berth")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
	cmd.Dir = testenv.RepoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	return fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
}

// upProcess is a running `berth up` and what it printed.
type upProcess struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  strings.Builder
	done chan struct{}
	err  error
}

func (p *upProcess) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// startUp runs `berth up` with args and waits until it says it is up.
func startUp(t *testing.T, bin, dir string, args ...string) *upProcess {
	t.Helper()
	args = append([]string{"up", "--state-dir", dir, "--bin-dir", testenv.BinDir(),
		"--apiserver-port", freePort(t), "--web-port", freePort(t), "--console-port", freePort(t), "--bridge-subnet", bridgeSubnet, "--bridge-name", bridgeName}, args...)
	p := &upProcess{cmd: exec.Command(bin, args...), done: make(chan struct{})}
	r, w := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = w, w
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		_ = w.Close()
	}()
	up := make(chan struct{})
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(r)
		once := sync.Once{}
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if strings.HasPrefix(sc.Text(), "Berth is up.") {
				once.Do(func() { close(up) })
			}
		}
	}()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			<-p.done
		}
		// A test that failed before its own `berth down` still leaves nothing behind:
		// task networks published on host ports would shadow the next run's ports.
		// `berth down` of a stack already down does nothing.
		if out, err := exec.Command(bin, "down", "--state-dir", dir).CombinedOutput(); err != nil {
			t.Errorf("berth down after the test: %v\n%s", err, out)
		}
		if t.Failed() {
			t.Logf("berth up printed:\n%s", p.output())
			for _, c := range []string{"manager", "agent", "containerd"} {
				b, _ := os.ReadFile(filepath.Join(dir, "logs", c+".log"))
				if len(b) > 3000 {
					b = b[len(b)-3000:]
				}
				t.Logf("%s log (end):\n%s", c, b)
			}
		}
	})
	select {
	case <-up:
	case <-p.done:
		t.Fatalf("berth up exited before it was up (%v):\n%s", p.err, p.output())
	case <-time.After(5 * time.Minute):
		t.Fatalf("berth up not up after 5 minutes:\n%s", p.output())
	}
	return p
}

func (p *upProcess) wait(t *testing.T) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(4 * time.Minute):
		t.Fatalf("berth up did not exit:\n%s", p.output())
	}
}

// adminClient is a client of `berth up`'s administrator, watches included.
func adminClient(t *testing.T, dir string) client.WithWatch {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dir, "kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: kube.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func getInfo(t *testing.T, url string) demo.Info {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Accept", "application/json")
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s: %s", url, resp.Status, b)
	}
	var inf demo.Info
	if err := json.NewDecoder(resp.Body).Decode(&inf); err != nil {
		t.Fatal(err)
	}
	return inf
}

// TestUpServesTheSampleAndDownLeavesNothing is the newcomer's path: `berth up` on
// an empty state directory brings the sample web Service to steady, its demo page
// answers on each task's host port and on the printed URL, a second `up` on the
// same directory is refused, and `berth down` stops it all without leftovers. With
// only the two exports `up` prints, the real aws CLI lists the clusters, registers a
// task definition, runs a task and waits for it to stop.
// Then `up` runs again on the same state with hollow instances, is killed with
// SIGKILL, and `berth down` cleans up after it.
func TestUpServesTheSampleAndDownLeavesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole system")
	}
	testenv.Require(t, ctrtest.SkipReason(), testenv.MissingAWSCLI())
	ctrllog.SetLogger(testenv.TestLogger(t))
	bin := berthBinary(t)
	dir := filepath.Join(t.TempDir(), "state")
	ctx := context.Background()

	begin := time.Now()
	p := startUp(t, bin, dir)
	c := adminClient(t, dir)

	svc := &ecsv1alpha1.Service{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: "web"}, svc); err != nil {
		t.Fatal(err)
	}
	if svc.Status.RunningCount != 3 {
		t.Fatalf("web runs %d tasks after up, want 3", svc.Status.RunningCount)
	}
	var tasks ecsv1alpha1.TaskList
	if err := c.List(ctx, &tasks, client.InNamespace("default"), client.MatchingLabels{ecsv1alpha1.LabelService: "web"}); err != nil {
		t.Fatal(err)
	}
	served := 0
	for _, task := range tasks.Items {
		if task.Status.LastStatus != ecsv1alpha1.TaskRunning {
			continue
		}
		port := hostPortOf(&task, "app", 8080)
		if port == 0 {
			t.Fatalf("task %s has no host port for app:8080: %+v", task.Name, task.Status.Containers)
		}
		inf := getInfo(t, fmt.Sprintf("http://127.0.0.1:%d/", port))
		if inf.Task != "default/"+task.Name || inf.ContainerInstance != "worker-1" || !strings.HasPrefix(inf.TaskDefinition, "web:") || inf.Greeting != "hello from berth" {
			t.Errorf("task %s on port %d answered %+v", task.Name, port, inf)
		}
		served++
	}
	if served != 3 {
		t.Errorf("%d running web tasks answered, want 3", served)
	}

	url := regexp.MustCompile(`curl (http://127\.0\.0\.1:\d+/)`).FindStringSubmatch(p.output())
	if url == nil {
		t.Fatalf("berth up printed no URL:\n%s", p.output())
	}
	if inf := getInfo(t, url[1]); !strings.HasPrefix(inf.Task, "default/web-") {
		t.Errorf("%s answered %+v, want a web task", url[1], inf)
	}
	if out, err := exec.Command("kubectl", "--kubeconfig", filepath.Join(dir, "kubeconfig"), "get", "ecs", "-A").CombinedOutput(); err != nil ||
		!strings.Contains(string(out), "service.ecs.berth.dev/web") {
		t.Errorf("kubectl get ecs: %v\n%s", err, out)
	}

	t.Run("console sign-in", func(t *testing.T) { checkConsoleSignIn(t, p.output()) })
	t.Run("agent endpoint", func(t *testing.T) { checkAgentEndpoint(t, dir, p.output()) })
	t.Run("utilization", func(t *testing.T) { checkUtilization(t, dir, begin) })
	awsEnv := awsExports(t, p.output())
	t.Run("aws CLI", func(t *testing.T) { checkAWSCLI(t, awsEnv) })
	t.Run("console", func(t *testing.T) { checkConsole(t, bin, dir, p.output()) })
	t.Run("scale beyond room", func(t *testing.T) { checkScaleBeyondRoom(t, dir) })
	t.Run("deleted service leaves nothing", func(t *testing.T) { checkDeletedServiceLeavesNothing(t, dir) })
	t.Run("agent reads", func(t *testing.T) { checkAgentReads(t, dir, p.output()) })
	firstKey := credentialsKey(t, awsEnv)

	// A second `up` on the same state directory is refused at once.
	second, err := exec.Command(bin, "up", "--state-dir", dir, "--bin-dir", testenv.BinDir()).CombinedOutput()
	if err == nil || !strings.Contains(string(second), "already running") {
		t.Errorf("second berth up: %v\n%s", err, second)
	}

	down(t, bin, dir)
	p.wait(t)
	if p.err != nil {
		t.Errorf("berth up exited with %v", p.err)
	}
	if !strings.Contains(p.output(), "no containers, mounts or processes left") {
		t.Errorf("berth up did not report a clean stop:\n%s", p.output())
	}
	assertNothingLeft(t, dir)

	// Again on the same state, with simulated instances under their own identity;
	// then `up` dies without cleaning up.
	p = startUp(t, bin, dir, "--no-samples", "--hollow-instances", "3")
	var cis ecsv1alpha1.ContainerInstanceList
	if err := adminClient(t, dir).List(ctx, &cis); err != nil {
		t.Fatal(err)
	}
	if len(cis.Items) != 4 {
		t.Errorf("%d container instances, want worker-1 and 3 hollow ones", len(cis.Items))
	}
	// The same ECS API credential, not a new one each time.
	if key := credentialsKey(t, awsExports(t, p.output())); key != firstKey {
		t.Errorf("the second up wrote access key %s, want the first one's, %s", key, firstKey)
	}
	var secrets corev1.SecretList
	if err := adminClient(t, dir).List(ctx, &secrets, client.InNamespace("berth-system"), client.MatchingLabels{auth.LabelCredential: "true"}); err != nil {
		t.Fatal(err)
	}
	if len(secrets.Items) != 1 {
		t.Errorf("%d ECS API credentials after two runs of up, want 1", len(secrets.Items))
	}
	_ = p.cmd.Process.Kill()
	p.wait(t)
	out := down(t, bin, dir)
	if !strings.Contains(out, "some of its components are") {
		t.Errorf("berth down after a killed up printed:\n%s", out)
	}
	assertNothingLeft(t, dir)
}

// awsExports are the variables of the `export NAME=value` lines `up` printed.
// checkUtilization: `kubectl get esvc` shows web's CPU% and MEM% within two minutes
// of `berth up`'s start, measured by the agent and added up by the manager at their
// default intervals.
func checkUtilization(t *testing.T, dir string, begin time.Time) {
	var last string
	testenv.EventuallyWithin(t, time.Until(begin.Add(2*time.Minute)), "kubectl get esvc web shows CPU% and MEM%", func() error {
		out, err := exec.Command("kubectl", "--kubeconfig", filepath.Join(dir, "kubeconfig"), "get", "esvc", "web", "-n", "default").CombinedOutput()
		last = string(out)
		if err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		lines := strings.Split(strings.TrimSpace(last), "\n")
		if len(lines) != 2 {
			return fmt.Errorf("unexpected output:\n%s", last)
		}
		// kubectl aligns each value under its column's header.
		for _, col := range []string{"CPU%", "MEM%"} {
			at := strings.Index(lines[0], col)
			if at < 0 || len(lines[1]) <= at {
				return fmt.Errorf("no %s column:\n%s", col, last)
			}
			v := strings.Fields(lines[1][at:])
			if len(v) == 0 {
				return fmt.Errorf("%s is empty:\n%s", col, last)
			}
			if _, err := strconv.Atoi(v[0]); err != nil {
				return fmt.Errorf("%s is %q:\n%s", col, v[0], last)
			}
		}
		return nil
	})
	t.Logf("%.0f s after berth up started:\n%s", time.Since(begin).Seconds(), last)
}

func awsExports(t *testing.T, out string) []string {
	t.Helper()
	var env []string
	for _, m := range regexp.MustCompile(`(?m)^\s*export (AWS_[A-Z_]+=\S+)$`).FindAllStringSubmatch(out, -1) {
		env = append(env, m[1])
	}
	if len(env) != 2 || !strings.HasPrefix(env[0], "AWS_CONFIG_FILE=") || !strings.HasPrefix(env[1], "AWS_SHARED_CREDENTIALS_FILE=") {
		t.Fatalf("berth up printed exports %q, want AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE:\n%s", env, out)
	}
	return env
}

// credentialsKey is the access key ID of the credentials file env names.
func credentialsKey(t *testing.T, env []string) string {
	t.Helper()
	b, err := os.ReadFile(strings.TrimPrefix(env[1], "AWS_SHARED_CREDENTIALS_FILE="))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^aws_access_key_id = (\S+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no access key in the credentials file:\n%s", b)
	}
	return string(m[1])
}

// checkAWSCLI is an ECS user's first steps with the real aws CLI and nothing but
// up's exports: check the profile (sts get-caller-identity), list the clusters, register a task definition from ECS JSON, run
// it, wait for it to stop, and read its exit code.
func checkAWSCLI(t *testing.T, env []string) {
	t.Helper()
	var identity struct{ Account, Arn string }
	awsJSON(t, env, &identity, "sts", "get-caller-identity")
	if identity.Arn != "arn:aws:iam::000000000000:user/berth-ecs-user" {
		t.Errorf("aws sts get-caller-identity = %+v, want user berth-ecs-user of account 000000000000", identity)
	}
	var clusters struct{ ClusterArns []string }
	awsJSON(t, env, &clusters, "ecs", "list-clusters")
	if want := "arn:aws:ecs:us-east-1:000000000000:cluster/default"; !slices.Contains(clusters.ClusterArns, want) {
		t.Errorf("aws ecs list-clusters = %q, want %s among them", clusters.ClusterArns, want)
	}
	td := filepath.Join(t.TempDir(), "once.json")
	taskDef := `{
  "family": "up-cli-once",
  "containerDefinitions": [{
    "name": "once",
    "image": "localhost:5000/berth/demo:1.0",
    "command": ["--exit-after=1s", "--exit-code=3"],
    "memory": 64,
    "essential": true
  }]
}`
	if err := os.WriteFile(td, []byte(taskDef), 0o644); err != nil {
		t.Fatal(err)
	}
	var registered struct {
		TaskDefinition struct{ TaskDefinitionArn string }
	}
	awsJSON(t, env, &registered, "ecs", "register-task-definition", "--cli-input-json", "file://"+td)
	if !strings.HasPrefix(registered.TaskDefinition.TaskDefinitionArn, "arn:aws:ecs:us-east-1:000000000000:task-definition/up-cli-once:") {
		t.Fatalf("registered %q", registered.TaskDefinition.TaskDefinitionArn)
	}
	var run struct {
		Tasks    []struct{ TaskArn string }
		Failures []any
	}
	awsJSON(t, env, &run, "ecs", "run-task", "--cluster", "default", "--task-definition", registered.TaskDefinition.TaskDefinitionArn)
	if len(run.Tasks) != 1 || len(run.Failures) != 0 {
		t.Fatalf("aws ecs run-task: tasks %+v, failures %+v", run.Tasks, run.Failures)
	}
	arn := run.Tasks[0].TaskArn
	awsJSON(t, env, nil, "ecs", "wait", "tasks-stopped", "--cluster", "default", "--tasks", arn)
	var described struct {
		Tasks []struct {
			LastStatus string
			Containers []struct {
				Name     string
				ExitCode *int
			}
		}
	}
	awsJSON(t, env, &described, "ecs", "describe-tasks", "--cluster", "default", "--tasks", arn)
	if len(described.Tasks) != 1 || described.Tasks[0].LastStatus != "STOPPED" || len(described.Tasks[0].Containers) != 1 ||
		described.Tasks[0].Containers[0].ExitCode == nil || *described.Tasks[0].Containers[0].ExitCode != 3 {
		t.Errorf("aws ecs describe-tasks after the wait = %+v, want STOPPED with container once's exit code 3", described.Tasks)
	}
}

// awsJSON runs the aws CLI with args in env alone and decodes what it prints into
// v (nil: the command prints nothing). A waiter gives up after 10 minutes; the
// command is killed after 3.
func awsJSON(t *testing.T, env []string, v any, args ...string) {
	t.Helper()
	cmd := testenv.AWSCommand(t, env, args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(3*time.Minute, func() { _ = cmd.Process.Kill() })
	err := cmd.Wait()
	timer.Stop()
	out := []byte(stdout.String())
	if err != nil {
		t.Fatalf("aws %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	if v == nil {
		return
	}
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("aws %s printed no JSON: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func down(t *testing.T, bin, dir string) string {
	t.Helper()
	out, err := exec.Command(bin, "down", "--state-dir", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("berth down: %v\n%s", err, out)
	}
	return string(out)
}

func hostPortOf(task *ecsv1alpha1.Task, container string, containerPort int32) int32 {
	for _, c := range task.Status.Containers {
		if c.Name != container {
			continue
		}
		for _, b := range c.NetworkBindings {
			if b.ContainerPort == containerPort {
				return b.HostPort
			}
		}
	}
	return 0
}

// assertNothingLeft checks that no process runs from or for the state directory
// (components, shims, containers), and nothing is mounted under it.
func assertNothingLeft(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if strings.Contains(string(cmdline), dir) {
			t.Errorf("process %s still runs: %s", e.Name(), strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
		// Container processes do not name the state directory; their cgroup
		// or environment does. The demo containers carry BERTH_TASK.
		environ, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err == nil && strings.Contains(string(environ), "BERTH_CONTAINER_INSTANCE=worker-1") {
			t.Errorf("container process %s still runs: %s", e.Name(), strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
	mountinfo, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mountinfo), "\n") {
		if strings.Contains(line, dir) {
			t.Errorf("still mounted: %s", line)
		}
	}
	if netns, _ := os.ReadDir(filepath.Join(dir, "agent", "netns")); len(netns) > 0 {
		t.Errorf("%d network namespace(s) left in %s", len(netns), filepath.Join(dir, "agent", "netns"))
	}
}

// checkConsoleSignIn opens the console URL `up` printed with a plain HTTP client: no
// page without the token, and the token signs in. checkConsole then drives it in a
// browser.
// checkAgentEndpoint: the curl command `up` printed, run as printed with the admin
// kubeconfig, lists the web tasks through the agent's /v1/tasks, and a container's
// output through /v1/logs; the same without the token is refused.
func checkAgentEndpoint(t *testing.T, dir, out string) {
	m := regexp.MustCompile(`(?m)^\s*(curl -H "Authorization: Bearer \$\(kubectl create token \S+ -n \S+\)" (http://127\.0\.0\.1:\d+))/v1/tasks$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("berth up printed no command for the agent's /v1/tasks:\n%s", out)
	}
	run := func(path string) string {
		t.Helper()
		cmd := exec.Command("sh", "-c", m[1]+path)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+filepath.Join(dir, "kubeconfig"))
		got, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s%s: %v", m[1], path, err)
		}
		return string(got)
	}
	var tasks []struct {
		Task, Name, Namespace string
	}
	body := run("/v1/tasks")
	if err := json.Unmarshal([]byte(body), &tasks); err != nil || len(tasks) == 0 {
		t.Fatalf("/v1/tasks answered %v:\n%s", err, body)
	}
	var web string
	for _, task := range tasks {
		if strings.HasPrefix(task.Task, "default/web-") {
			web = task.Name
		}
	}
	if web == "" {
		t.Fatalf("/v1/tasks lists no web task:\n%s", body)
	}
	// -w: the status code, after the log (which may be empty).
	if code := run("/v1/logs/default/" + web + "/app -s -o /dev/null -w %{http_code}"); code != "200" {
		t.Errorf("/v1/logs of web's app: status %s, want 200", code)
	}
	res, err := http.Get(m[2] + "/v1/tasks")
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("/v1/tasks without a token: status %d, want 401", res.StatusCode)
	}
}

func checkConsoleSignIn(t *testing.T, out string) {
	m := regexp.MustCompile(`console:\s+(http://127\.0\.0\.1:\d+)/\?token=(\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("berth up printed no console URL:\n%s", out)
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	get := func(url string) (int, string) {
		res, err := c.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer func() { _ = res.Body.Close() }()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(body)
	}
	if code, _ := get(m[1] + "/"); code != http.StatusUnauthorized {
		t.Errorf("console without the token: status %d, want 401", code)
	}
	if code, body := get(m[1] + "/?token=" + m[2]); code != http.StatusOK {
		t.Fatalf("console sign-in: status %d: %s", code, body)
	}
	code, body := get(m[1] + "/")
	if code != http.StatusOK || !strings.Contains(body, `<tr data-name="default">`) || !strings.Contains(body, `<span class="active">1</span>`) {
		t.Errorf("console clusters page: status %d, want the default cluster with one active instance:\n%s", code, body)
	}
}
