package bench

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	servicectl "github.com/berthdev/berth/controllers/service"
	"github.com/berthdev/berth/test/testobj"
)

// designWritesPerTask is the bound the writes of a service task from creation to
// RUNNING are held to, instance and cluster writes included. The task's own are 2
// (docs/architecture.md, "Writes per task"): the service controller creates it
// already placed, the agent reports RUNNING.
const designWritesPerTask = 3

// runService measures ServiceScaleOut, WritesPerTask and RollingDeploy on one
// Service: 0 to 5,000 tasks on 1,000 hollow instances that report RUNNING 100 ms
// after they see a task, then a new revision rolled out with minimumHealthyPercent
// 100, maximumPercent 200 and a stopTimeout of 0.
//
// Baseline of both times: creating the same number of small ConfigMaps, 64 at a
// time, on the same apiserver before Berth started. A scale-out costs at least that
// many creates; a rollout twice as many writes (a create and a stop per task), so its
// ratio is at least about 2 for the writes alone.
func runService(ctx context.Context, r *runner, l *lab) (*outcome, error) {
	instances, tasks := r.size.n(1000, 10), r.size.n(5000, 50)
	bStart, bDone, err := rawCreates(ctx, l.c, benchNamespace, "cm", tasks)
	if err != nil {
		return nil, err
	}
	baseline := Baseline{
		What: fmt.Sprintf("%d ConfigMap creates (%d in flight) on the same apiserver before Berth started", tasks, createWorkers),
		Unit: "s", Values: map[string]float64{"Value": lastOf(bDone).Sub(bStart).Seconds()},
	}
	r.logf("service: baseline: %d ConfigMaps in %.2fs", tasks, baseline.Values["Value"])

	const cluster = "service"
	taskBase, err := l.rawTaskCreates(ctx, tasks, func(i int) *ecsv1alpha1.Task {
		return serviceLikeTask(i, cluster, "s", instances)
	})
	if err != nil {
		return nil, err
	}
	if err := l.startManager(ctx); err != nil {
		return nil, err
	}
	hollow, err := l.startHollow(hollowConfig{cluster: cluster, prefix: "s", instances: instances})
	if err != nil {
		return nil, err
	}
	td := smallTaskDefinition(benchNamespace, "web", "bench/web:1")
	if err := l.setupCluster(ctx, cluster, td); err != nil {
		return nil, err
	}
	if err := l.waitInstances(ctx, cluster, instances, 2*time.Minute+time.Duration(instances)*20*time.Millisecond, hollow); err != nil {
		return nil, err
	}
	svc := testobj.Service(benchNamespace, "web", "web", 0).Cluster(cluster).Bounds(100, 200).Obj()
	if err := l.c.Create(ctx, svc); err != nil {
		return nil, err
	}
	if _, err := l.waitService(ctx, svc.Name, time.Minute, func(s *ecsv1alpha1.Service) bool {
		return s.Status.ObservedGeneration == s.Generation && s.Status.TaskDefinition == "web:1"
	}); err != nil {
		return nil, err
	}

	idle, err := l.idleCPU(ctx, r.size.d(10*time.Second, 2*time.Second))
	if err != nil {
		return nil, err
	}

	sp := &serviceRun{r: r, l: l, svc: svc, td: td, tasks: tasks, instances: instances, hollow: hollow, out: &outcome{},
		taskBase: taskBase, idle: idle}
	if err := sp.scaleOut(ctx, baseline); err != nil {
		return sp.out, err
	}
	if err := sp.rollingDeploy(ctx, baseline); err != nil {
		return sp.out, err
	}
	return sp.out, nil
}

type serviceRun struct {
	r                *runner
	l                *lab
	svc              *ecsv1alpha1.Service
	td               *ecsv1alpha1.TaskDefinition
	tasks, instances int
	hollow           *child
	out              *outcome
	// taskBase is the raw Task creates of the run's baseline; idle the servers' CPU
	// with the instances connected and no task.
	taskBase taskBaseline
	idle     serverCPU
}

// serviceLikeTask is a Task shaped as the service controller makes them (labels,
// annotation, owner, group, startedBy, a pinned revision) and, as the service
// controller of GitHub issue 16 creates them, already placed on an instance. Its
// owner reference names a Service that does not exist yet: nothing collects
// garbage in the lab, and these tasks are deleted before the Service is created.
func serviceLikeTask(i int, cluster, instancePrefix string, instances int) *ecsv1alpha1.Task {
	const deploymentID = "d0123456789a"
	slot := strconv.Itoa(i)
	t := testobj.Task(benchNamespace, fmt.Sprintf("web-%s-%s-0", deploymentID, slot), "web:1").Cluster(cluster).
		Group("service:web").On(fmt.Sprintf("%s-%04d", instancePrefix, i%instances)).Obj()
	t.Spec.StartedBy = "ecs-svc/" + deploymentID
	t.Labels = map[string]string{
		ecsv1alpha1.LabelService: "web", ecsv1alpha1.LabelDeployment: deploymentID, servicectl.LabelSlot: slot,
	}
	t.Annotations = map[string]string{ecsv1alpha1.AnnotationServiceGeneration: "2"}
	t.OwnerReferences = []metav1.OwnerReference{{
		APIVersion: ecsv1alpha1.GroupVersion.String(), Kind: "Service", Name: "web",
		UID: types.UID("00000000-0000-0000-0000-000000000000"), Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
	}}
	return t
}

// timeout for a phase that writes n tasks: generous, since a machine shared with
// other work can be several times slower than an idle one.
func phaseTimeout(n int) time.Duration { return 2*time.Minute + time.Duration(n)*60*time.Millisecond }

// settleWrites is how long after a phase the write counters are read, so that the
// writes batched behind it (instance status every 2 s, cluster counts) count too;
// shorter in a smoke run, where there is little to batch.
func (sp *serviceRun) settleWrites() time.Duration {
	return min(3*time.Second, sp.r.size.d(30*time.Second, time.Second))
}

func (sp *serviceRun) scaleOut(ctx context.Context, baseline Baseline) error {
	l, n := sp.l, sp.tasks
	before, err := readRequestCounts(ctx, l.env.Config)
	if err != nil {
		return err
	}
	passesBefore := reconciles()
	m := l.startMeasurement(ctx, ServiceScaleOut, map[string]*child{"berth hollow": sp.hollow})
	// Watch first, so that the time of the write and of the result are both seen.
	running := newLatch(func(o client.Object) bool {
		s, ok := o.(*ecsv1alpha1.Service)
		return ok && s.Name == sp.svc.Name && s.Status.ObservedGeneration >= s.Generation && s.Status.RunningCount >= int32(n) &&
			ptr.Deref(s.Spec.DesiredCount, 0) == int32(n)
	})
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	if err := watchObjects(wctx, l.c, &ecsv1alpha1.ServiceList{}, &client.ListOptions{Namespace: benchNamespace}, false, running.observe); err != nil {
		return err
	}
	start := time.Now()
	patch := client.MergeFrom(sp.svc.DeepCopy())
	sp.svc.Spec.DesiredCount = ptr.To(int32(n))
	if err := l.c.Patch(ctx, sp.svc, patch); err != nil {
		return err
	}
	err = waitSignal(ctx, running.done, phaseTimeout(n), func() string { return "runningCount " + fmt.Sprint(n) + "; " + running.lastSeen() })
	sp.out.contexts = append(sp.out.contexts, m.stop(ctx)...)
	if err != nil {
		return err
	}
	elapsed := running.time().Sub(start)
	sp.r.logf("service: scaled out to %d in %s", n, elapsed.Round(10*time.Millisecond))
	passes := diff(passesBefore, reconciles())
	time.Sleep(sp.settleWrites())
	after, err := readRequestCounts(ctx, l.env.Config)
	if err != nil {
		return err
	}
	requests := after.since(before)
	timeline, err := l.taskTimeline(ctx, start, running.time(), "web:1")
	if err != nil {
		return err
	}
	sp.out.note("ServiceScaleOut %s; reconciles: %s; %s", timeline, describeCounts(passes), readsNote(requests, n))
	sp.out.figures = append(sp.out.figures,
		Figure{
			Metric: ServiceScaleOut, Name: "DesiredToRunning", Unit: "s",
			Values:   map[string]float64{"Value": elapsed.Seconds()},
			Baseline: baseline,
			Note: fmt.Sprintf("time from the write of desiredCount %d (from 0) to status.runningCount %d seen through a watch of the Service, on %d hollow instances reporting RUNNING 100 ms after they see a task (%.0f tasks/s).",
				n, n, sp.instances, float64(n)/elapsed.Seconds()),
		},
		Figure{
			Metric: ServiceScaleOut, Name: "DesiredToRunningVsTaskCreates", Unit: "s",
			Values:   map[string]float64{"Value": elapsed.Seconds()},
			Baseline: sp.taskBase.elapsed(),
			Note:     fmt.Sprintf("the scale-out of DesiredToRunning against raw creates of %d Tasks shaped as the service's (labels, owner, group, pinned revision, already placed) on the same apiserver before Berth started, then deleted: a scale-out costs at least those creates, so 1 is the floor of the ratio.", n),
		},
		writesFigure(requests, n, "ScaleOut",
			fmt.Sprintf("apiserver mutating requests (apiserver_request_total) from the desiredCount write until %s after runningCount %d, divided by %d; Lease renewals (heartbeats, independent of tasks) are listed but not counted.", sp.settleWrites(), n, n),
			Baseline{
				What: "3 writes, the bound the control plane is held to; the design minimum (docs/architecture.md) is 2: the service controller creates the task already placed, the agent reports RUNNING",
				Unit: "writes/task", Values: map[string]float64{"Value": designWritesPerTask},
			}))
	// The harness created no task in the scale-out: the service controller did.
	sp.out.figures = append(sp.out.figures, cpuFigures(ServiceScaleOut, m.cpu, sp.idle, n, 0, sp.taskBase, "scaled out (0 to RUNNING)")...)
	return nil
}

// readsNote lists a phase's reads per task, by verb and resource: of every client,
// the harness's own watches and polls included.
func readsNote(requests requestReading, tasks int) string {
	reads := readRequests(requests.byVerb)
	for k, v := range reads {
		reads[k] = v / float64(tasks)
	}
	return "apiserver reads per task (any client, the harness's included): " + describeRates(reads)
}

// writesFigure is a WritesPerTask figure: the mutating requests of a phase per task,
// with the share of each resource, and how many of them the apiserver refused with a
// conflict (counted in the total: each cost the apiserver a request).
func writesFigure(requests requestReading, tasks int, name, note string, base Baseline) Figure {
	values := map[string]float64{}
	var total, conflicts float64
	for _, v := range requests.conflicts {
		conflicts += v
	}
	values["refused with a conflict (409, counted)"] = conflicts / float64(tasks)
	for res, v := range mutatingRequestsOf(requests.byVerb) {
		if res == "leases" {
			values["leases (not counted)"] = v / float64(tasks)
			continue
		}
		values[res] = v / float64(tasks)
		total += v
	}
	values["Value"] = total / float64(tasks)
	return Figure{
		Metric: WritesPerTask, Name: name, Unit: "writes/task", Values: values, Note: note, Baseline: base,
	}
}

func (sp *serviceRun) rollingDeploy(ctx context.Context, baseline Baseline) error {
	l, n := sp.l, sp.tasks
	before, err := readRequestCounts(ctx, l.env.Config)
	if err != nil {
		return err
	}
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	steady := newLatch(func(o client.Object) bool {
		s, ok := o.(*ecsv1alpha1.Service)
		return ok && s.Status.TaskDefinition == "web:2" && s.Status.RunningCount == int32(n) &&
			meta.IsStatusConditionTrue(s.Status.Conditions, ecsv1alpha1.ServiceConditionSteady)
	})
	if err := watchObjects(wctx, l.c, &ecsv1alpha1.ServiceList{}, &client.ListOptions{Namespace: benchNamespace}, false, steady.observe); err != nil {
		return err
	}
	rollout := newRolloutTracker(n, "web:1", "web:2")
	if err := watchObjects(wctx, l.c, &ecsv1alpha1.TaskList{}, &client.ListOptions{Namespace: benchNamespace}, true, rollout.observe); err != nil {
		return err
	}
	passesBefore := reconciles()
	m := l.startMeasurement(ctx, RollingDeploy, map[string]*child{"berth hollow": sp.hollow})
	start := time.Now()
	patch := client.MergeFrom(sp.td.DeepCopy())
	sp.td.Spec.ContainerDefinitions[0].Environment[0].Value = "2"
	if err := l.c.Patch(ctx, sp.td, patch); err != nil {
		return err
	}
	timeout := phaseTimeout(2 * n)
	err = waitSignal(ctx, steady.done, timeout, func() string { return "a steady service on web:2; " + steady.lastSeen() })
	if err == nil {
		err = waitSignal(ctx, rollout.done, timeout, rollout.progress)
	}
	sp.out.contexts = append(sp.out.contexts, m.stop(ctx)...)
	if err != nil {
		return err
	}
	end := steady.time()
	if t := rollout.time(); t.After(end) {
		end = t
	}
	elapsed := end.Sub(start)
	sp.r.logf("service: rolled %d tasks to web:2 in %s", n, elapsed.Round(10*time.Millisecond))
	passes := diff(passesBefore, reconciles())
	time.Sleep(sp.settleWrites())
	after, err := readRequestCounts(ctx, l.env.Config)
	if err != nil {
		return err
	}
	requests := after.since(before)
	timeline, err := l.taskTimeline(ctx, start, end, "web:2")
	if err != nil {
		return err
	}
	sp.out.note("RollingDeploy, new tasks: %s; old tasks (seconds after the phase began, through a watch): %s; reconciles: %s; %s",
		timeline, rollout.oldTimeline(start), describeCounts(passes), readsNote(requests, n))
	sp.out.figures = append(sp.out.figures,
		Figure{
			Metric: RollingDeploy, Name: "NewRevisionEverywhere", Unit: "s",
			Values:   map[string]float64{"Value": elapsed.Seconds()},
			Baseline: baseline,
			Note: fmt.Sprintf("time from the task definition change (revision 2) until all %d tasks run web:2 and every web:1 task is STOPPED or deleted (tasks seen through a watch) and the Service is Steady; minimumHealthyPercent 100, maximumPercent 200, stopTimeout 0. The baseline is %d creates while the rollout writes at least %d times (a create and a stop per task), so about 2 is the floor of the ratio.",
				n, n, 2*n),
		},
		writesFigure(requests, n, "RollingDeploy",
			fmt.Sprintf("apiserver mutating requests per task replaced by the rolling deployment, until %s after it finished.", sp.settleWrites()),
			Baseline{
				What: "5 writes, the bound the control plane is held to; the design minimum of a replacement is 4: the new task's create and RUNNING, the old one's stop and its agent's delete once stopped (spec.deleteWhenStopped: the service keeps 20 stopped tasks, so the rest report no STOPPED)",
				Unit: "writes/task", Values: map[string]float64{"Value": designWritesPerTask + 2},
			}))
	return nil
}

// waitService polls a Service until cond holds.
func (l *lab) waitService(ctx context.Context, name string, timeout time.Duration, cond func(*ecsv1alpha1.Service) bool) (*ecsv1alpha1.Service, error) {
	var svc ecsv1alpha1.Service
	err := l.poll(ctx, timeout, 100*time.Millisecond, "service "+name, func() (bool, string, error) {
		if err := l.c.Get(ctx, client.ObjectKey{Namespace: benchNamespace, Name: name}, &svc); err != nil {
			return false, "", err
		}
		return cond(&svc), fmt.Sprintf("status %+v", svc.Status), nil
	})
	return &svc, err
}

// latch records the first time an object seen through a watch satisfies cond.
type latch struct {
	cond func(client.Object) bool
	mu   sync.Mutex
	at   time.Time
	last string
	done chan struct{}
}

func newLatch(cond func(client.Object) bool) *latch {
	return &latch{cond: cond, done: make(chan struct{})}
}

func (l *latch) observe(obj client.Object, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.at.IsZero() {
		return
	}
	if s, ok := obj.(*ecsv1alpha1.Service); ok {
		l.last = fmt.Sprintf("last seen: generation %d observed %d, running %d pending %d, taskDefinition %s",
			s.Generation, s.Status.ObservedGeneration, s.Status.RunningCount, s.Status.PendingCount, s.Status.TaskDefinition)
	}
	if l.cond(obj) {
		l.at = at
		close(l.done)
	}
}

func (l *latch) time() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.at
}

func (l *latch) lastSeen() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

// rolloutTracker follows every task of a rollout: it is done when want tasks of the
// new revision are RUNNING (and meant to) and no task of the old revision is other
// than STOPPED.
type rolloutTracker struct {
	want           int
	oldRev, newRev string
	mu             sync.Mutex
	state          map[string]taskState
	newUp          int
	oldAlive       int
	at             time.Time
	done           chan struct{}
	// stopAsked and gone are when each old task was first seen meant to stop and
	// first seen STOPPED or deleted: the old tasks' side of the timeline, which the
	// tasks cannot tell afterwards (most are deleted).
	stopAsked, gone map[string]time.Time
}

type taskState struct{ newUp, oldAlive bool }

func newRolloutTracker(want int, oldRev, newRev string) *rolloutTracker {
	return &rolloutTracker{want: want, oldRev: oldRev, newRev: newRev, state: map[string]taskState{}, done: make(chan struct{}),
		stopAsked: map[string]time.Time{}, gone: map[string]time.Time{}}
}

func (t *rolloutTracker) observe(obj client.Object, at time.Time) {
	task, ok := obj.(*ecsv1alpha1.Task)
	if !ok {
		return
	}
	st := taskState{
		newUp: task.Spec.TaskDefinition == t.newRev && task.Spec.DesiredStatus == ecsv1alpha1.DesiredRunning &&
			task.Status.LastStatus == ecsv1alpha1.TaskRunning && task.DeletionTimestamp.IsZero(),
		// An old task is gone once STOPPED, or once deleted (its agent deletes a task
		// the service does not keep instead of reporting it STOPPED).
		oldAlive: task.Spec.TaskDefinition == t.oldRev && task.Status.LastStatus != ecsv1alpha1.TaskStopped &&
			task.DeletionTimestamp.IsZero(),
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	prev, seen := t.state[task.Name]
	t.state[task.Name] = st
	if task.Spec.TaskDefinition == t.oldRev {
		t.observeOld(task, at, seen && prev.oldAlive && !st.oldAlive)
	}
	t.newUp += b2i(st.newUp) - b2i(prev.newUp)
	t.oldAlive += b2i(st.oldAlive) - b2i(prev.oldAlive)
	if t.at.IsZero() && t.newUp >= t.want && t.oldAlive == 0 {
		t.at = at
		close(t.done)
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (t *rolloutTracker) time() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.at
}

// observeOld records when an old task was first seen asked to stop (or deleted) and
// when it went (justGone: alive when last seen, not now). t.mu is held.
func (t *rolloutTracker) observeOld(task *ecsv1alpha1.Task, at time.Time, justGone bool) {
	if _, ok := t.stopAsked[task.Name]; !ok && (task.Spec.DesiredStatus == ecsv1alpha1.DesiredStopped || !task.DeletionTimestamp.IsZero()) {
		t.stopAsked[task.Name] = at
	}
	if _, ok := t.gone[task.Name]; !ok && justGone {
		t.gone[task.Name] = at
	}
}

// oldTimeline describes, like describeTimeline, how long after start the old tasks
// were seen asked to stop and seen gone (STOPPED or deleted), as the tracker's
// watch saw them.
func (t *rolloutTracker) oldTimeline(start time.Time) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var b strings.Builder
	for _, p := range []struct {
		name string
		at   map[string]time.Time
	}{{"asked to stop", t.stopAsked}, {"gone", t.gone}} {
		if len(p.at) == 0 {
			continue
		}
		d := make([]time.Duration, 0, len(p.at))
		for _, at := range p.at {
			d = append(d, at.Sub(start))
		}
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s (%d)", p.name, len(d))
		writeQuantiles(&b, d)
	}
	if b.Len() == 0 {
		return "no old task seen stopping"
	}
	return b.String()
}

func (t *rolloutTracker) progress() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return fmt.Sprintf("%d of %d tasks of %s running, %d tasks of %s not stopped", t.newUp, t.want, t.newRev, t.oldAlive, t.oldRev)
}
