package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	utilexec "k8s.io/client-go/util/exec"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berthdev/berth/agent/runtime"
	"github.com/berthdev/berth/agent/streaming"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	clientstreaming "github.com/berthdev/berth/internal/streaming"
	"github.com/berthdev/berth/test/testenv"
	regtest "github.com/berthdev/berth/test/testenv/registry"
	"github.com/berthdev/berth/test/testobj"
)

// TestExec is ECS Exec end to end: commands run in a real container through the
// agent's streaming server as the caller's identity, with their output and exit
// codes; a terminal is a terminal; RBAC without exec is refused (and audited); a task
// started without enableExecuteCommand is refused; `berth exec` exits with the
// command's code and explains a refusal.
func TestExec(t *testing.T) {
	s := newStack(t)
	s.startAgent(t, "node-"+s.ns)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := env.Client.Create(ctx, testobj.TaskDefinition(s.ns, "shell").Container("app", s.image).Network(ecsv1alpha1.NetworkModeNone).Obj()); err != nil {
		t.Fatal(err)
	}
	execd := testobj.Task(s.ns, "execd", "shell").Cluster(s.cluster).Obj()
	execd.Spec.EnableExecuteCommand = true
	plain := testobj.Task(s.ns, "plain", "shell").Cluster(s.cluster).Obj()
	for _, task := range []*ecsv1alpha1.Task{execd, plain} {
		if err := env.Client.Create(ctx, task); err != nil {
			t.Fatal(err)
		}
		waitTask(t, s.ns, task.Name, "RUNNING", func(tk *ecsv1alpha1.Task) error {
			if tk.Status.LastStatus != ecsv1alpha1.TaskRunning {
				return errors.New("not RUNNING")
			}
			return nil
		})
	}

	alice := execUser(t, ctx, s.ns, "alice", true)
	bob := execUser(t, ctx, s.ns, "bob", false)
	run := func(cfg *rest.Config, o clientstreaming.ExecOptions) (string, error) {
		var out bytes.Buffer
		o.Namespace, o.Stdout = s.ns, &out
		if o.Task == "" {
			o.Task = "execd"
		}
		err := clientstreaming.NewClient(cfg, env.Client).Exec(ctx, o)
		return out.String(), err
	}

	if out, err := run(alice, clientstreaming.ExecOptions{Command: []string{regtest.TestBinaryPath, "echo=hello from exec", "id"}}); err != nil ||
		out != "hello from exec\nuid=0 gid=0\n" {
		t.Errorf("exec: %q, %v", out, err)
	}
	_, err := run(alice, clientstreaming.ExecOptions{Command: []string{regtest.TestBinaryPath, "exit=3"}})
	var ee utilexec.ExitError
	if !errors.As(err, &ee) || ee.ExitStatus() != 3 {
		t.Errorf("exit=3 returned %v, want an ExitError with status 3", err)
	}
	// A terminal, and standard input that ends: the command reads the end as a
	// typed Ctrl-D and finishes its output (a hang-up would race it).
	if out, err := run(alice, clientstreaming.ExecOptions{Container: "app", TTY: true, Stdin: strings.NewReader(""),
		Command: []string{regtest.TestBinaryPath, "tty=0", "tty=1", "stdin"}}); err != nil ||
		!strings.Contains(out, "tty 0: yes") || !strings.Contains(out, "tty 1: yes") || !strings.Contains(out, "stdin closed") {
		t.Errorf("exec with a terminal: %q, %v", out, err)
	}
	if out, err := run(alice, clientstreaming.ExecOptions{Stdin: strings.NewReader("typed"),
		Command: []string{regtest.TestBinaryPath, "tty=0", "stdin"}}); err != nil || out != "tty 0: no\nstdin closed\n" {
		t.Errorf("exec with stdin: %q, %v", out, err)
	}
	// A client that goes away: its command is killed and its exec process removed.
	blockCtx, blockCancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	go func() {
		_ = clientstreaming.NewClient(alice, env.Client).Exec(blockCtx, clientstreaming.ExecOptions{Namespace: s.ns, Task: "execd",
			Command: []string{regtest.TestBinaryPath, "echo=started", "sleep=inf"}, Stdout: pw})
		_ = pw.Close()
	}()
	if line, err := bufio.NewReader(pr).ReadString('\n'); err != nil || line != "started\n" {
		t.Fatalf("sleeping exec: %q, %v", line, err)
	}
	blockCancel()
	ctrID := runtime.ContainerID(string(getTask(t, s.ns, "execd").UID), "app")
	testenv.EventuallyWithin(t, 30*time.Second, "the abandoned exec process removed", func() error {
		var pids int
		s.eachContainer(t, func(ctx context.Context, c containerd.Container) {
			if c.ID() != ctrID {
				return
			}
			if task, err := c.Task(ctx, nil); err == nil {
				if ps, err := task.Pids(ctx); err == nil {
					pids = len(ps)
				}
			}
		})
		if pids != 1 {
			return fmt.Errorf("container %s has %d processes, want its own only", ctrID, pids)
		}
		return nil
	})

	// The log, through the same server.
	if logs, err := clientstreaming.NewClient(alice, env.Client).Logs(ctx, s.ns, "execd", "", -1); err != nil || !strings.Contains(string(logs), "ready") {
		t.Errorf("logs: %q, %v", logs, err)
	}

	if _, err := run(bob, clientstreaming.ExecOptions{Command: []string{regtest.TestBinaryPath, "echo=no"}}); !apierrors.IsForbidden(err) {
		t.Errorf("bob's exec: %v, want forbidden", err)
	}
	if _, err := run(alice, clientstreaming.ExecOptions{Task: "plain", Command: []string{regtest.TestBinaryPath, "echo=no"}}); err == nil ||
		!strings.Contains(err.Error(), "execute command was not enabled when the task was run") {
		t.Errorf("exec in a task without enableExecuteCommand: %v", err)
	}

	// The berth binary: the remote exit code, and a refusal that says who and what.
	berth := testenv.BerthBinary(t)
	code, _, stderr := runBerth(t, berth, kubeconfigFor(t, alice, s.ns), "exec", "execd", "--", regtest.TestBinaryPath, "exit=4")
	if code != 4 {
		t.Errorf("berth exec of exit=4 exited %d (stderr %q)", code, stderr)
	}
	code, _, stderr = runBerth(t, berth, kubeconfigFor(t, bob, s.ns), "exec", "execd", "-c", "app", "--", regtest.TestBinaryPath, "echo=no")
	if want := fmt.Sprintf(`forbidden: user "bob-%s" cannot exec tasks.ecs.berth.dev execd in namespace %q`, s.ns, s.ns); code != 1 ||
		!strings.HasPrefix(stderr, "Error: ") || !strings.Contains(stderr, want) {
		t.Errorf("berth exec as bob exited %d with %q, want 1 and %q", code, stderr, want)
	}

	waitTaskEvent(t, ctx, s.ns, "execd", streaming.ReasonExecCommand, fmt.Sprintf(`alice-%s ran ["%s" "exit=3"] in container app`, s.ns, regtest.TestBinaryPath))
	waitTaskEvent(t, ctx, s.ns, "execd", streaming.ReasonExecDenied, fmt.Sprintf("bob-%s may not exec in task execd", s.ns))
}

// execUser is a client-certificate user who reads tasks and container instances,
// and may exec and read logs when allowed.
func execUser(t *testing.T, ctx context.Context, ns, name string, allowed bool) *rest.Config {
	t.Helper()
	user := name + "-" + ns
	cfg, err := env.AddUser(user)
	if err != nil {
		t.Fatal(err)
	}
	rules := []rbacv1.PolicyRule{{APIGroups: []string{ecsv1alpha1.GroupVersion.Group}, Resources: []string{"tasks"}, Verbs: []string{"get"}}}
	if allowed {
		rules = append(rules,
			rbacv1.PolicyRule{APIGroups: []string{ecsv1alpha1.GroupVersion.Group}, Resources: []string{"tasks"}, Verbs: []string{"exec"}},
			rbacv1.PolicyRule{APIGroups: []string{ecsv1alpha1.GroupVersion.Group}, Resources: []string{"tasks/log"}, Verbs: []string{"get"}})
	}
	subject := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}
	objs := []client.Object{
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: user}, Rules: rules},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: user}, Subjects: subject,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: user}},
		// The instance's streaming endpoint is read from the cluster-scoped instance.
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: user}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{ecsv1alpha1.GroupVersion.Group}, Resources: []string{"containerinstances"}, Verbs: []string{"get"}}}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: user}, Subjects: subject,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: user}},
	}
	for _, o := range objs {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = env.Client.Delete(context.Background(), o) })
	}
	return cfg
}

// kubeconfigFor writes a kubeconfig of cfg's identity whose context is namespace ns.
func kubeconfigFor(t *testing.T, cfg *rest.Config, ns string) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["c"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["u"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData}
	kc.Contexts["x"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u", Namespace: ns}
	kc.CurrentContext = "x"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// runBerth runs the berth binary with kubeconfig and returns its exit code and output.
func runBerth(t *testing.T, berth, kubeconfig string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(berth, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = io.NopCloser(strings.NewReader("")), &stdout, &stderr
	err := cmd.Run()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("running berth %v: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// waitTaskEvent waits for an Event on the task with reason whose message contains text.
func waitTaskEvent(t *testing.T, ctx context.Context, ns, task, reason, text string) {
	t.Helper()
	testenv.EventuallyWithin(t, 30*time.Second, fmt.Sprintf("a %s Event on %s containing %q", reason, task, text), func() error {
		var events corev1.EventList
		if err := env.Client.List(ctx, &events, client.InNamespace(ns)); err != nil {
			return err
		}
		var seen []string
		for _, e := range events.Items {
			if e.InvolvedObject.Kind == "Task" && e.InvolvedObject.Name == task && e.Reason == reason && strings.Contains(e.Message, text) {
				return nil
			}
			seen = append(seen, e.Reason+": "+e.Message)
		}
		return fmt.Errorf("events: %q", seen)
	})
}
