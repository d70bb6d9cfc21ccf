package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// The ECS API scenario's cluster and task definition family, and the sizes of its
// calls: ECS's most tasks per DescribeTasks and per RunTask.
const (
	apiCluster    = "ecsapi"
	apiFamily     = "api"
	describeBatch = 100
	runBatch      = 10
)

// apiTaskWorkers is ecsapi's taskWorkers: how many apiserver requests one
// DescribeTasks or RunTask makes at once. The client-go baselines make theirs as
// many at a time, so that both sides do the same work the same way.
const apiTaskWorkers = 8

// runECSAPI measures ECSAPIDescribeTasks, ECSAPIRunTask and ECSAPIFootprint: `berth
// api` runs as a child process with its production flags and SigV4, and the AWS SDK
// for Go's ECS client calls it as a namespace's user bound to berth-ecs-user, so every
// call pays for the signature's verification and the impersonation as in production.
// The manager and hollow instances place and run the tasks RunTask creates.
//
// Baselines, measured in the same run against the same apiserver: the same reads and
// writes made directly with controller-runtime's client (client-go underneath, no
// client-side rate limit), as a Kubernetes user of Berth would make them. The calls
// of the two ways alternate (pairedCalls), so that the noise of this shared machine
// and the placement work the created tasks cause fall on both.
func runECSAPI(ctx context.Context, r *runner, l *lab) (*outcome, error) {
	e, err := newAPIRun(ctx, r, l)
	if err != nil {
		return nil, err
	}
	if err := e.measure(ctx); err != nil {
		return e.out, err
	}
	return e.out, nil
}

// apiRun is the ECS API scenario's lab: the manager, hollow instances and `berth api`.
type apiRun struct {
	r      *runner
	l      *lab
	api    *apiServer
	hollow *child
	out    *outcome
}

func newAPIRun(ctx context.Context, r *runner, l *lab) (*apiRun, error) {
	// Each hollow instance fits 256 of the small tasks; the RunTask measurement
	// leaves 20 per pair of calls.
	instances := r.size.n(100, 3)
	if err := l.startManager(ctx); err != nil {
		return nil, err
	}
	hollow, err := l.startHollow(hollowConfig{cluster: apiCluster, prefix: "a", instances: instances})
	if err != nil {
		return nil, err
	}
	if err := l.setupCluster(ctx, apiCluster, smallTaskDefinition(benchNamespace, apiFamily, "bench/api:1")); err != nil {
		return nil, err
	}
	if err := l.waitInstances(ctx, apiCluster, instances, 2*time.Minute+time.Duration(instances)*20*time.Millisecond, hollow); err != nil {
		return nil, err
	}
	if err := l.waitClusterCount(ctx, apiCluster, instances); err != nil {
		return nil, err
	}
	api, err := l.startAPI(ctx)
	if err != nil {
		return nil, err
	}
	return &apiRun{r: r, l: l, api: api, hollow: hollow, out: &outcome{}}, nil
}

// waitClusterCount waits until the cluster counts n registered instances: RunTask
// refuses a cluster that counts none.
func (l *lab) waitClusterCount(ctx context.Context, cluster string, n int) error {
	return l.poll(ctx, time.Minute, 100*time.Millisecond, "the cluster to count its instances", func() (bool, string, error) {
		var cl ecsv1alpha1.Cluster
		if err := l.c.Get(ctx, client.ObjectKey{Name: cluster}, &cl); err != nil {
			return false, "", err
		}
		got := cl.Status.RegisteredContainerInstancesCount
		return int(got) >= n, fmt.Sprintf("%d of %d registered", got, n), nil
	})
}

// measure seeds the tasks DescribeTasks reads, then measures the selected calls
// and the server's footprint over them.
func (e *apiRun) measure(ctx context.Context) error {
	seeded, err := e.seed(ctx)
	if err != nil {
		return err
	}
	idleRSS, err := statusKiB(e.api.proc.pid(), "VmRSS")
	if err != nil {
		return err
	}
	meter := newCPUMeter(map[string]int{"berth api": e.api.proc.pid(), "kube-apiserver": e.l.apiserverPID})
	if e.r.wants(ECSAPIDescribeTasks) || e.r.wants(ECSAPIFootprint) {
		if err := e.describeTasks(ctx, seeded); err != nil {
			return err
		}
	}
	if e.r.wants(ECSAPIRunTask) || e.r.wants(ECSAPIFootprint) {
		if err := e.runTasks(ctx, taskNameOf(seeded[0])); err != nil {
			return err
		}
	}
	return e.footprint(idleRSS, meter)
}

// seed runs the tasks DescribeTasks reads through the API (RunTask, runBatch at a
// time) and waits until they all run, so that they are described with their
// containers, as a running task is. It returns their ARNs.
func (e *apiRun) seed(ctx context.Context) ([]string, error) {
	start := time.Now()
	arns := make([]string, 0, describeBatch)
	for len(arns) < describeBatch {
		out, err := e.api.ecs.RunTask(ctx, e.runTaskInput())
		if err != nil {
			return nil, fmt.Errorf("RunTask through berth api: %w", err)
		}
		for _, t := range out.Tasks {
			arns = append(arns, aws.ToString(t.TaskArn))
		}
	}
	names := map[string]bool{}
	for _, arn := range arns {
		names[taskNameOf(arn)] = true
	}
	err := e.l.poll(ctx, 2*time.Minute, 200*time.Millisecond, "the seeded tasks to run", func() (bool, string, error) {
		if err := e.api.proc.exited(); err != nil {
			return false, "", err
		}
		var list ecsv1alpha1.TaskList
		if err := e.l.c.List(ctx, &list, client.InNamespace(benchNamespace), &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: "0"}}); err != nil {
			return false, "", err
		}
		running := 0
		for _, t := range list.Items {
			if names[t.Name] && t.Status.LastStatus == ecsv1alpha1.TaskRunning {
				running++
			}
		}
		return running == len(names), fmt.Sprintf("%d of %d RUNNING", running, len(names)), nil
	})
	if err == nil {
		e.r.logf("ecsapi: %d tasks run through the API and RUNNING in %s", len(arns), time.Since(start).Round(100*time.Millisecond))
	}
	return arns, err
}

// runTaskInput is `aws ecs run-task --cluster ecsapi --task-definition api --count
// 10`: the family's latest revision, resolved at each call.
func (e *apiRun) runTaskInput() *ecs.RunTaskInput {
	return &ecs.RunTaskInput{Cluster: aws.String(apiCluster), TaskDefinition: aws.String(apiFamily), Count: aws.Int32(runBatch)}
}

// taskNameOf is the object name in a task ARN (its last element).
func taskNameOf(arn string) string { return path.Base(arn) }

// servers are the processes each way's calls are charged with: the API goes
// through berth api to the apiserver and etcd, client-go straight to them.
func (e *apiRun) servers() (viaAPI, viaClientGo map[string]int) {
	viaClientGo = map[string]int{"kube-apiserver": e.l.apiserverPID, "etcd": e.l.etcdPID}
	viaAPI = map[string]int{"berth api": e.api.proc.pid(), "kube-apiserver": e.l.apiserverPID, "etcd": e.l.etcdPID}
	return viaAPI, viaClientGo
}

func (e *apiRun) children() map[string]*child {
	return map[string]*child{"berth api": e.api.proc, "berth hollow": e.hollow}
}

// describeTasks measures ECSAPIDescribeTasks: one DescribeTasks of the 100 seeded
// tasks per call. Baseline: what the API reads of them, one List of the cluster's
// tasks in the namespace (a DescribeTasks of more than ten tasks lists them).
func (e *apiRun) describeTasks(ctx context.Context, arns []string) error {
	n := e.r.size.n(1000, 20)
	in := &ecs.DescribeTasksInput{Cluster: aws.String(apiCluster), Tasks: arns}
	viaAPI := func(ctx context.Context) error {
		out, err := e.api.ecs.DescribeTasks(ctx, in)
		if err != nil {
			return fmt.Errorf("DescribeTasks through berth api: %w", err)
		}
		if len(out.Tasks) != len(arns) || len(out.Failures) > 0 {
			return fmt.Errorf("DescribeTasks described %d of %d tasks, %d failures", len(out.Tasks), len(arns), len(out.Failures))
		}
		return nil
	}
	viaClientGo := func(ctx context.Context) error {
		var list ecsv1alpha1.TaskList
		return e.l.c.List(ctx, &list, client.InNamespace(benchNamespace),
			client.MatchingFields{ecsv1alpha1.TaskFieldCluster: apiCluster})
	}
	if err := e.noteRequests(ctx, "DescribeTasks", viaAPI, viaClientGo); err != nil {
		return err
	}
	what := "one List of the cluster's tasks in the namespace with client-go (field selector spec.cluster), as the API reads them, alternating with the API's calls"
	_, err := e.pairs(ctx, ECSAPIDescribeTasks, n, viaAPI, viaClientGo, what,
		fmt.Sprintf("%d DescribeTasks calls of the same %d RUNNING tasks (ARNs), each signed by the AWS SDK for Go, verified by berth api and read as the credential's user: until the SDK returned the answer.", n, describeBatch))
	return err
}

// runTasks measures ECSAPIRunTask: RunTask with count 10 of the family's latest
// revision. Baseline: the 10 Tasks RunTask would create, created with client-go
// apiTaskWorkers at a time. The manager places and hollow instances run the tasks of
// both ways alike.
func (e *apiRun) runTasks(ctx context.Context, seeded string) error {
	n := e.r.size.n(500, 10)
	tmpl, err := e.taskAsRunTaskMakesIt(ctx, seeded)
	if err != nil {
		return err
	}
	viaAPI := func(ctx context.Context) error {
		out, err := e.api.ecs.RunTask(ctx, e.runTaskInput())
		if err != nil {
			return fmt.Errorf("RunTask through berth api: %w", err)
		}
		if len(out.Tasks) != runBatch || len(out.Failures) > 0 {
			return fmt.Errorf("RunTask started %d of %d tasks, %d failures", len(out.Tasks), runBatch, len(out.Failures))
		}
		return nil
	}
	viaClientGo := func(ctx context.Context) error {
		_, err := runParallel(ctx, runBatch, apiTaskWorkers, func(ctx context.Context, _ int) error {
			t := tmpl.DeepCopy()
			t.Name = randomHex()
			return e.l.c.Create(ctx, t)
		})
		return err
	}
	if err := e.noteRequests(ctx, "RunTask", viaAPI, viaClientGo); err != nil {
		return err
	}
	what := fmt.Sprintf("%d creates with client-go of the Tasks RunTask makes, %d at a time, alternating with the API's calls", runBatch, apiTaskWorkers)
	_, err = e.pairs(ctx, ECSAPIRunTask, n, viaAPI, viaClientGo, what,
		fmt.Sprintf("%d RunTask calls with count %d (`--task-definition %s`: the family's latest revision, resolved at each call), signed, verified and created as the credential's user: until the SDK returned the answer (the tasks placed and RUNNING later).", n, runBatch, apiFamily))
	return err
}

// taskAsRunTaskMakesIt is the Task RunTask created under name, as RunTask created
// it: its spec and annotations, without the binding the scheduler added since.
// Copying it rather than writing it here keeps the baseline the same write as
// RunTask's, whatever RunTask comes to write.
func (e *apiRun) taskAsRunTaskMakesIt(ctx context.Context, name string) (*ecsv1alpha1.Task, error) {
	var got ecsv1alpha1.Task
	if err := e.l.c.Get(ctx, client.ObjectKey{Namespace: benchNamespace, Name: name}, &got); err != nil {
		return nil, err
	}
	t := &ecsv1alpha1.Task{ObjectMeta: metav1.ObjectMeta{Namespace: got.Namespace, Labels: got.Labels, Annotations: got.Annotations},
		Spec: got.Spec}
	t.Spec.ContainerInstance = ""
	return t, nil
}

// randomHex is a name like RunTask's: 32 hexadecimal digits, ECS's task ID.
func randomHex() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// pairs measures n alternating pairs of calls, with the processes' CPU as context,
// adds the latency and server CPU figures of metric, and returns how long the
// pairs took.
func (e *apiRun) pairs(ctx context.Context, metric string, n int, viaAPI, viaClientGo func(context.Context) error, what, note string) (time.Duration, error) {
	start := time.Now()
	apiServers, kubeServers := e.servers()
	p := newPairedCalls(apiServers, kubeServers, n)
	m := e.l.startMeasurement(ctx, metric, e.children())
	err := p.run(ctx, n, viaAPI, viaClientGo)
	took := time.Since(start)
	e.out.contexts = append(e.out.contexts, m.stop(ctx)...)
	if err != nil {
		return took, err
	}
	e.r.logf("ecsapi: %s: %d pairs of calls in %s", metric, n, took.Round(100*time.Millisecond))
	e.out.figures = append(e.out.figures,
		p.latencyFigure(metric, what, note),
		p.cpuFigure(metric, what, "CPU time of the server processes over each call, per call: Value is their sum (berth api, kube-apiserver and etcd through the API; kube-apiserver and etcd for client-go); the other keys are each process's share, so the KubeAPIServer ratio is how much more the apiserver works for the API's call. Work that runs meanwhile (placement of earlier tasks, Lease renewals, the servers' own housekeeping) is charged to the call it overlaps, so the longer call carries a little more of it."))
	return took, nil
}

// noteRequests makes one call each way, before the measurement (so they also warm
// both up: the API's first call of a user builds its impersonating client), and
// notes the apiserver requests each made: where the API's extra time goes.
func (e *apiRun) noteRequests(ctx context.Context, action string, viaAPI, viaClientGo func(context.Context) error) error {
	for _, side := range []struct {
		name string
		call func(context.Context) error
	}{{"through berth api", viaAPI}, {"with client-go", viaClientGo}} {
		before, err := requestsByVerb(ctx, e.l.env.Config)
		if err != nil {
			return err
		}
		if err := side.call(ctx); err != nil {
			return err
		}
		after, err := requestsByVerb(ctx, e.l.env.Config)
		if err != nil {
			return err
		}
		e.out.note("apiserver reads and creates (of any client: the manager's events too) during one %s %s: %s", action, side.name, describeCounts(readsAndCreates(diff(before, after))))
	}
	return nil
}

// readsAndCreates keeps the GET, LIST and POST counts of requestsByVerb: what
// DescribeTasks and RunTask send, while the hollow instances' Lease renewals and
// status writes go on.
func readsAndCreates(byVerb map[string]float64) map[string]float64 {
	return withVerbs(byVerb, "GET", "LIST", "POST")
}

// footprint adds ECSAPIFootprint: berth api's memory after the measured calls, and
// its CPU over them. Baselines: the kube-apiserver's at the same moments, which
// served the same calls and the client-go baselines.
func (e *apiRun) footprint(idleRSS int64, meter *cpuMeter) error {
	cores := meter.cores()
	mem := map[string]int64{}
	for name, read := range map[string]struct {
		pid int
		key string
	}{
		"apiRSS": {e.api.proc.pid(), "VmRSS"}, "apiPeak": {e.api.proc.pid(), "VmHWM"},
		"kubeRSS": {e.l.apiserverPID, "VmRSS"}, "kubePeak": {e.l.apiserverPID, "VmHWM"},
	} {
		v, err := statusKiB(read.pid, read.key)
		if err != nil {
			return err
		}
		mem[name] = v
	}
	what := "kube-apiserver's at the same moment (it served the API's requests and the client-go baselines)"
	e.out.figures = append(e.out.figures,
		Figure{Metric: ECSAPIFootprint, Name: "RSS", Unit: "MiB",
			Values:   map[string]float64{"Value": mib(mem["apiRSS"]), "Peak": mib(mem["apiPeak"]), "Idle": mib(idleRSS)},
			Baseline: Baseline{What: what, Unit: "MiB", Values: map[string]float64{"Value": mib(mem["kubeRSS"]), "Peak": mib(mem["kubePeak"])}},
			Note:     "VmRSS of the `berth api` process after the measured calls (Peak: VmHWM; Idle: before them, its credential cache synced and the seeded tasks run)."},
		Figure{Metric: ECSAPIFootprint, Name: "CPUSecondsPerMinute", Unit: "CPU-s/min",
			Values:   map[string]float64{"Value": cores["berth api"] * 60},
			Baseline: Baseline{What: "kube-apiserver's CPU over the same window", Unit: "CPU-s/min", Values: map[string]float64{"Value": cores["kube-apiserver"] * 60}},
			Note:     "user+system CPU of `berth api` over the measured calls of both ways (it is idle during client-go's), scaled to a minute."})
	return nil
}
