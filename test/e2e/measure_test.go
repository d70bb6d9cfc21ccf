package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/testenv"
	"github.com/berthdev/berth/internal/testobj"
)

// TestMeasureAgent reports, without asserting on time, the agent's task start latency
// (placement to RUNNING, seen through a watch) against `ctr run -d` of the same
// already-pulled image in the same run, and the agent process's memory and CPU, idle
// and with 50 running tasks. Run it with BERTH_MEASURE=1; benchmarks proper live in
// `make bench`.
func TestMeasureAgent(t *testing.T) {
	if os.Getenv("BERTH_MEASURE") == "" {
		t.Skip("set BERTH_MEASURE=1 to measure")
	}
	s := newStack(t)
	bin := filepath.Join(t.TempDir(), "berth")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = testenv.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	o := s.agentOptions(t, "node-"+s.ns)
	agentCmd := exec.Command(bin, "agent", "--kubeconfig", o.Kubeconfig, "--cluster", o.Cluster, "--name", o.Name,
		"--containerd-address", o.ContainerdAddress, "--containerd-namespace", o.Namespace, "--state-dir", o.StateDir,
		"--snapshotter", o.Snapshotter, "--registry-config-dir", o.RegistryConfigDir, "--runc-root", o.RuncRoot,
		"--reserved-memory", "0", "--kube-api-qps", "200", "--kube-api-burst", "400")
	if err := agentCmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = agentCmd.Process.Kill(); _ = agentCmd.Wait() })
	pid := agentCmd.Process.Pid

	td := testobj.TaskDefinition(s.ns, "m").Container("app", s.image).Network(ecsv1alpha1.NetworkModeNone).
		Last(func(c *ecsv1alpha1.ContainerDefinition) { c.Cpu = 16 }).Obj() // 71 tasks on 2048 cpu units
	if err := env.Client.Create(context.Background(), td); err != nil {
		t.Fatal(err)
	}
	// Warm up: the image is pulled once.
	latencies(t, s, "warm", 1)
	time.Sleep(10 * time.Second)
	idleRSS := rssKiB(t, pid)

	agent := latencies(t, s, "lat", 20)
	ctr := ctrRunLatencies(t, s, 20)
	t.Logf("start latency, placement to RUNNING (agent): p50 %s p90 %s max %s", pct(agent, 50), pct(agent, 90), pct(agent, 100))
	t.Logf("start latency, ctr run -d (baseline):         p50 %s p90 %s max %s", pct(ctr, 50), pct(ctr, 90), pct(ctr, 100))
	t.Logf("ratio agent/ctr at p50: %.2f", float64(pct(agent, 50))/float64(pct(ctr, 50)))

	if err := env.Client.Create(context.Background(), testobj.Service(s.ns, "fifty", "m", 50).Cluster(s.cluster).Obj()); err != nil {
		t.Fatal(err)
	}
	steady(t, s.ns, "fifty", 50)
	time.Sleep(10 * time.Second)
	busyRSS := rssKiB(t, pid)
	cpu0 := cpuSeconds(t, pid)
	time.Sleep(30 * time.Second)
	cpu1 := cpuSeconds(t, pid)
	t.Logf("agent RSS: idle %d KiB, with 50 running tasks (+%d one-off) %d KiB", idleRSS, 21, busyRSS)
	t.Logf("agent CPU in steady state with 50 tasks: %.3f CPU-seconds per minute", (cpu1-cpu0)*2)
}

// latencies creates n standalone tasks one after another and returns, for each, the
// time from its binding (spec.containerInstance seen) to RUNNING, both seen through
// one watch.
func latencies(t *testing.T, s *stack, prefix string, n int) []time.Duration {
	t.Helper()
	c, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	w, err := c.Watch(context.Background(), &ecsv1alpha1.TaskList{}, client.InNamespace(s.ns))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	placed := map[string]time.Time{}
	var out []time.Duration
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("%s-%d", prefix, i)
		if err := env.Client.Create(context.Background(), testobj.Task(s.ns, name, "m").Cluster(s.cluster).Obj()); err != nil {
			t.Fatal(err)
		}
		deadline := time.After(60 * time.Second)
	wait:
		for {
			select {
			case ev := <-w.ResultChan():
				task, ok := ev.Object.(*ecsv1alpha1.Task)
				if !ok || ev.Type == watch.Deleted || task.Name != name {
					continue
				}
				if _, seen := placed[name]; !seen && task.Spec.ContainerInstance != "" {
					placed[name] = time.Now()
				}
				if task.Status.LastStatus == ecsv1alpha1.TaskRunning {
					out = append(out, time.Since(placed[name]))
					break wait
				}
			case <-deadline:
				t.Fatalf("task %s never ran", name)
			}
		}
	}
	return out
}

// ctrRunLatencies times `ctr run -d` of the agent's image in the same containerd.
func ctrRunLatencies(t *testing.T, s *stack, n int) []time.Duration {
	t.Helper()
	ctrBin := filepath.Join(testenv.BinDir(), "ctr")
	base := []string{"-a", s.ctr.Address, "-n", s.ctrNamespace}
	var out []time.Duration
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("ctr-baseline-%d", i)
		args := append(append([]string{}, base...), "run", "-d", "--snapshotter", s.ctr.Snapshotter, "--runc-root", s.ctr.RuncRoot,
			s.image, id)
		start := time.Now()
		if b, err := exec.Command(ctrBin, args...).CombinedOutput(); err != nil {
			t.Fatalf("ctr run: %v\n%s", err, b)
		}
		out = append(out, time.Since(start))
		_ = exec.Command(ctrBin, append(append([]string{}, base...), "task", "kill", "-s", "SIGKILL", id)...).Run()
	}
	return out
}

func pct(d []time.Duration, p int) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s)*p + 99) / 100
	if i < 1 {
		i = 1
	}
	return s[i-1].Round(time.Millisecond)
}

func rssKiB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			v, _ := strconv.Atoi(strings.Fields(line)[1])
			return v
		}
	}
	return 0
}

func cpuSeconds(t *testing.T, pid int) float64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b)[strings.LastIndexByte(string(b), ')')+2:])
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // USER_HZ
}
