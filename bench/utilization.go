package bench

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/manager"
	"github.com/berthdev/berth/test/testobj"
)

// utilizationResources are the status writes utilization adds: each agent's report
// per window (containerinstances/status) and the manager's sums per Service, family
// and Cluster.
var utilizationResources = []string{"containerinstances/status", "services/status", "taskdefinitions/status", "clusters/status"}

const (
	// utilizationServices and utilizationFamilies are the groups the manager sums
	// into: its writes per window follow these counts, never the tasks'.
	utilizationServices = 10
	utilizationFamilies = 2
	// utilizationGrowth is how many times phase B's tasks outnumber phase A's.
	utilizationGrowth = 4
)

// runUtilization measures UtilizationWrites: the status writes utilization costs per
// window on the same instances, services, families and cluster with T tasks (phase A)
// and with 4×T (phase B). Each instance runs T/instances tasks of every service in
// A (the default placement spreads a service over instances, so every service with
// as many tasks as there are instances has one on each), so that the same instances
// report in both phases and only the tasks grow. The agents and the manager measure
// and write every few seconds instead of every minute; writes per window are the
// writes per minute of production.
func runUtilization(ctx context.Context, r *runner, l *lab) (*outcome, error) {
	u := &utilizationRun{r: r, l: l, out: &outcome{}, cluster: "util",
		instances: r.size.n(100, 5),
		// The hollow and the manager refuse windows under a second; 2 s keeps the
		// quick run short while every instance still reports once per window.
		window:  r.size.d(5*time.Second, 2*time.Second),
		windows: r.size.n(6, 3),
	}
	if err := l.startManager(ctx, func(o *manager.Options) { o.Controllers.UtilizationInterval = u.window }); err != nil {
		return nil, err
	}
	hollow, err := l.startHollow(hollowConfig{cluster: u.cluster, prefix: "u", instances: u.instances,
		extra: []string{"--utilization-interval", u.window.String()}})
	if err != nil {
		return nil, err
	}
	u.hollow = hollow
	if err := u.setup(ctx); err != nil {
		return nil, err
	}
	perService := u.instances
	a, err := u.phase(ctx, "A", perService)
	if err != nil {
		return u.out, err
	}
	b, err := u.phase(ctx, "B", utilizationGrowth*perService)
	if err != nil {
		return u.out, err
	}
	u.out.figures = append(u.out.figures, u.figures(a, b)...)
	return u.out, nil
}

type utilizationRun struct {
	r       *runner
	l       *lab
	out     *outcome
	cluster string
	hollow  *child
	// instances each run tasks of every service.
	instances int
	// window is the agents' and the manager's --utilization-interval; windows how
	// many of them a phase counts writes over.
	window  time.Duration
	windows int
	// services and families are the names of the Services and TaskDefinitions.
	services, families []string
}

// setup registers the families and creates the services with no tasks, once the
// instances are connected.
func (u *utilizationRun) setup(ctx context.Context) error {
	l := u.l
	for i := range utilizationFamilies {
		u.families = append(u.families, fmt.Sprintf("util%c", 'a'+i))
	}
	if err := l.setupCluster(ctx, u.cluster, smallTaskDefinition(benchNamespace, u.families[0], "bench/"+u.families[0]+":1")); err != nil {
		return err
	}
	for _, f := range u.families[1:] {
		td := smallTaskDefinition(benchNamespace, f, "bench/"+f+":1")
		if err := l.c.Create(ctx, td); err != nil {
			return fmt.Errorf("creating task definition %s: %w", f, err)
		}
		if err := l.waitRevision(ctx, td, 1); err != nil {
			return err
		}
	}
	if err := l.waitInstances(ctx, u.cluster, u.instances, 2*time.Minute+time.Duration(u.instances)*20*time.Millisecond, u.hollow); err != nil {
		return err
	}
	for i := range utilizationServices {
		family := u.families[i%len(u.families)]
		name := fmt.Sprintf("%s-%d", family, i/len(u.families))
		if err := l.c.Create(ctx, testobj.Service(benchNamespace, name, family, 0).Cluster(u.cluster).Obj()); err != nil {
			return fmt.Errorf("creating service %s: %w", name, err)
		}
		u.services = append(u.services, name)
	}
	return nil
}

// utilizationPhase is what one phase counted.
type utilizationPhase struct {
	name  string
	tasks int
	// perWindow are the mutating requests per window by resource; other resources
	// (Lease renewals, ...) are kept apart and not counted in total.
	perWindow, other map[string]float64
	total            float64
}

// phase scales every service to perService tasks, waits until they run and the
// manager's sums count them all, then counts the writes of u.windows windows.
func (u *utilizationRun) phase(ctx context.Context, name string, perService int) (*utilizationPhase, error) {
	l, tasks := u.l, perService*len(u.services)
	start := time.Now()
	if err := u.scale(ctx, perService); err != nil {
		return nil, err
	}
	u.r.logf("utilization: phase %s: %d tasks running in %s", name, tasks, time.Since(start).Round(100*time.Millisecond))
	// Settled: the agents have reported a window with every task and the manager
	// has written the sums; the writes of the scale-out itself are over by then.
	if err := u.waitMeasured(ctx, int32(perService)); err != nil {
		return nil, err
	}
	stamps, err := u.measuredAt(ctx)
	if err != nil {
		return nil, err
	}
	changes := newChangeCounter()
	wctx, stopWatches := context.WithCancel(ctx)
	defer stopWatches()
	if err := changes.watch(wctx, l.c); err != nil {
		return nil, err
	}
	before, err := mutatingRequests(ctx, l.env.Config)
	if err != nil {
		return nil, err
	}
	m := l.startMeasurement(ctx, UtilizationWrites, map[string]*child{"berth hollow": u.hollow})
	span := time.Duration(u.windows) * u.window
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(span):
	}
	after, err := mutatingRequests(ctx, l.env.Config)
	if err != nil {
		return nil, err
	}
	stopWatches()
	watched := changes.describe()
	for _, c := range m.stop(ctx) {
		c.Name = "phase " + name + ": " + c.Name
		u.out.contexts = append(u.out.contexts, c)
	}
	if err := u.checkAdvanced(ctx, stamps, span); err != nil {
		return nil, err
	}
	p := newUtilizationPhase(name, tasks, diff(before, after), float64(u.windows))
	u.r.logf("utilization: phase %s: %.1f writes per window (%s); others %s; watched changes: %s", name, p.total,
		describeCounts(p.perWindow), describeCounts(p.other), watched)
	u.out.note("phase %s (%d tasks on %d instances, %d per instance): changes seen through watches over the %s counted: %s.",
		name, tasks, u.instances, tasks/u.instances, span, watched)
	if n := changes.others(); n > 0 {
		u.out.note("phase %s: the writes counted include %d changes of fields other than status.utilization: the phase was not settled.", name, n)
	}
	return p, nil
}

// scale sets every service's desiredCount and waits until each runs that many tasks.
func (u *utilizationRun) scale(ctx context.Context, perService int) error {
	l := u.l
	for _, name := range u.services {
		svc := &ecsv1alpha1.Service{}
		svc.Namespace, svc.Name = benchNamespace, name
		patch := client.RawPatch(client.Merge.Type(), fmt.Appendf(nil, `{"spec":{"desiredCount":%d}}`, perService))
		if err := l.c.Patch(ctx, svc, patch); err != nil {
			return fmt.Errorf("scaling service %s: %w", name, err)
		}
	}
	n := int32(perService)
	return l.poll(ctx, phaseTimeout(perService*len(u.services)), 200*time.Millisecond, fmt.Sprintf("%d running tasks per service", n),
		func() (bool, string, error) {
			svcs, err := u.list(ctx)
			if err != nil {
				return false, "", err
			}
			running := 0
			for _, s := range svcs {
				if s.Status.ObservedGeneration == s.Generation && s.Status.RunningCount == n && ptr.Deref(s.Spec.DesiredCount, 0) == n {
					running++
				}
			}
			return running == len(u.services), fmt.Sprintf("%d of %d services at %d", running, len(u.services), n), nil
		})
}

// list reads the scenario's services from the watch cache: these polls must not load
// the apiserver they measure.
func (u *utilizationRun) list(ctx context.Context) ([]ecsv1alpha1.Service, error) {
	var list ecsv1alpha1.ServiceList
	if err := u.l.c.List(ctx, &list, &client.ListOptions{Namespace: benchNamespace, Raw: &metav1.ListOptions{ResourceVersion: "0"}}); err != nil {
		return nil, err
	}
	return list.Items, nil
}

// waitMeasured waits until every service's status.utilization counts n tasks: the
// agents measured every task for a whole window and the manager summed it.
func (u *utilizationRun) waitMeasured(ctx context.Context, n int32) error {
	timeout := time.Minute + 10*u.window
	return u.l.poll(ctx, timeout, 200*time.Millisecond, fmt.Sprintf("status.utilization.tasks %d on every service", n), func() (bool, string, error) {
		svcs, err := u.list(ctx)
		if err != nil {
			return false, "", err
		}
		var behind []string
		for _, s := range svcs {
			if s.Status.Utilization == nil {
				behind = append(behind, s.Name+" has no status.utilization")
			} else if s.Status.Utilization.Tasks != n {
				behind = append(behind, fmt.Sprintf("%s counts %d", s.Name, s.Status.Utilization.Tasks))
			}
		}
		return len(behind) == 0, strings.Join(behind, ", "), nil
	})
}

// measuredAt reads status.utilization.measuredAt of every object the manager sums
// into, by kind/name; an object without it is an error.
func (u *utilizationRun) measuredAt(ctx context.Context) (map[string]time.Time, error) {
	l, out := u.l, map[string]time.Time{}
	var missing []string
	put := func(key string, ut *ecsv1alpha1.Utilization) {
		if ut == nil || ut.MeasuredAt == nil {
			missing = append(missing, key)
			return
		}
		out[key] = ut.MeasuredAt.Time
	}
	for _, name := range u.services {
		var s ecsv1alpha1.Service
		if err := l.c.Get(ctx, client.ObjectKey{Namespace: benchNamespace, Name: name}, &s); err != nil {
			return nil, err
		}
		put("Service "+name, s.Status.Utilization)
	}
	for _, name := range u.families {
		var td ecsv1alpha1.TaskDefinition
		if err := l.c.Get(ctx, client.ObjectKey{Namespace: benchNamespace, Name: name}, &td); err != nil {
			return nil, err
		}
		put("TaskDefinition "+name, td.Status.Utilization)
	}
	var c ecsv1alpha1.Cluster
	if err := l.c.Get(ctx, client.ObjectKey{Name: u.cluster}, &c); err != nil {
		return nil, err
	}
	var cu *ecsv1alpha1.Utilization
	if c.Status.Utilization != nil {
		cu = &c.Status.Utilization.Utilization
	}
	put("Cluster "+u.cluster, cu)
	if len(missing) > 0 {
		return nil, fmt.Errorf("status.utilization.measuredAt is missing on %s", strings.Join(missing, ", "))
	}
	return out, nil
}

// checkAdvanced fails unless every object's measuredAt moved on during the
// measurement: otherwise the writes counted were not (all) utilization's.
func (u *utilizationRun) checkAdvanced(ctx context.Context, before map[string]time.Time, span time.Duration) error {
	after, err := u.measuredAt(ctx)
	if err != nil {
		return err
	}
	var stale []string
	for _, key := range slices.Sorted(maps.Keys(before)) {
		if !after[key].After(before[key]) {
			stale = append(stale, fmt.Sprintf("%s (%s)", key, before[key].Format(time.RFC3339)))
		}
	}
	if len(stale) > 0 {
		return fmt.Errorf("status.utilization.measuredAt did not advance during the %s measured, with --utilization-interval %s: %s",
			span, u.window, strings.Join(stale, ", "))
	}
	return nil
}

func newUtilizationPhase(name string, tasks int, writes map[string]float64, windows float64) *utilizationPhase {
	p := &utilizationPhase{name: name, tasks: tasks, perWindow: map[string]float64{}, other: map[string]float64{}}
	for _, res := range utilizationResources {
		p.perWindow[res] = writes[res] / windows
		p.total += p.perWindow[res]
	}
	for res, v := range writes {
		if !slices.Contains(utilizationResources, res) {
			p.other[res] = v / windows
		}
	}
	return p
}

// values are the phase's writes per window scaled by f: the utilization resources,
// their total as "Value", and the others marked as not counted.
func (p *utilizationPhase) values(f float64) map[string]float64 {
	out := map[string]float64{"Value": p.total * f}
	for res, v := range p.perWindow {
		out[res] = v * f
	}
	for res, v := range p.other {
		out[res+" (not counted)"] = v * f
	}
	return out
}

// figures are the writes per window and per window and 1,000 tasks of both phases.
// Phase A is compared with the design (one report per instance, one write per
// service, family and cluster per window), phase B with phase A.
func (u *utilizationRun) figures(a, b *utilizationPhase) []Figure {
	design := map[string]float64{
		"containerinstances/status": float64(u.instances), "services/status": utilizationServices,
		"taskdefinitions/status": utilizationFamilies, "clusters/status": 1,
	}
	var designTotal float64
	for _, v := range design {
		designTotal += v
	}
	design["Value"] = designTotal
	per1000 := func(m map[string]float64, tasks int) map[string]float64 {
		out := map[string]float64{}
		for k, v := range m {
			out[k] = v * 1000 / float64(tasks)
		}
		return out
	}
	setting := fmt.Sprintf("%d services of %d families on %d hollow instances, agents' and manager's --utilization-interval %s (production: 1m) so that a window here is a minute in production; writes counted by the apiserver (apiserver_request_total) over %d windows",
		utilizationServices, utilizationFamilies, u.instances, u.window, u.windows)
	designWhat := fmt.Sprintf("the design: one report per instance with tasks, one write per service, family and cluster per window (%.0f)", designTotal)
	aValues, bValues := a.values(1), b.values(1)
	return []Figure{
		{
			Metric: UtilizationWrites, Name: "PerMinuteA", Unit: "writes/min", Values: aValues,
			Baseline: Baseline{What: designWhat, Unit: "writes/min", Values: design},
			Note:     fmt.Sprintf("phase A, %d tasks (%d per instance): %s.", a.tasks, a.tasks/u.instances, setting),
		},
		{
			Metric: UtilizationWrites, Name: "PerMinuteB", Unit: "writes/min", Values: bValues,
			Baseline: Baseline{What: fmt.Sprintf("phase A (%d tasks) measured in the same run", a.tasks), Unit: "writes/min", Values: aValues},
			Note: fmt.Sprintf("phase B, the same services scaled to %d tasks (%dx, %d per instance) on the same instances; flat writes give a ratio of 1.",
				b.tasks, utilizationGrowth, b.tasks/u.instances),
		},
		{
			Metric: UtilizationWrites, Name: "Per1000TasksA", Unit: "writes/min per 1,000 tasks", Values: a.values(1000 / float64(a.tasks)),
			Baseline: Baseline{What: designWhat + ", per 1,000 tasks", Unit: "writes/min per 1,000 tasks", Values: per1000(design, a.tasks)},
			Note:     fmt.Sprintf("PerMinuteA per 1,000 of its %d tasks.", a.tasks),
		},
		{
			Metric: UtilizationWrites, Name: "Per1000TasksB", Unit: "writes/min per 1,000 tasks", Values: b.values(1000 / float64(b.tasks)),
			Baseline: Baseline{What: fmt.Sprintf("phase A (%d tasks) measured in the same run, per 1,000 tasks", a.tasks),
				Unit: "writes/min per 1,000 tasks", Values: per1000(aValues, a.tasks)},
			Note: fmt.Sprintf("PerMinuteB per 1,000 of its %d tasks: writes that stay flat while tasks grow %dx give a ratio of 1/%d = %.2f.",
				b.tasks, utilizationGrowth, utilizationGrowth, 1/float64(utilizationGrowth)),
		},
	}
}

// changeCounter counts, through watches, the changes of the objects utilization
// writes to, split into those that changed status.utilization only and all others:
// the apiserver's counters cannot tell an agent's utilization report from its other
// status writes, nor the manager's sums from its counts.
type changeCounter struct {
	mu      sync.Mutex
	seeding bool
	// last is the latest object seen of each kind/namespace/name, without its
	// utilization and its bookkeeping metadata.
	last              map[string]client.Object
	utilization, rest map[string]int
}

func newChangeCounter() *changeCounter {
	return &changeCounter{last: map[string]client.Object{}, utilization: map[string]int{}, rest: map[string]int{}}
}

// watch starts the watches; it lists the objects first, so that every event after
// compares with a known state.
func (c *changeCounter) watch(ctx context.Context, cl client.WithWatch) error {
	c.mu.Lock()
	c.seeding = true
	c.mu.Unlock()
	var errs []error
	for _, list := range []client.ObjectList{&ecsv1alpha1.ContainerInstanceList{}, &ecsv1alpha1.ServiceList{}, &ecsv1alpha1.TaskDefinitionList{}, &ecsv1alpha1.ClusterList{}} {
		errs = append(errs, watchObjects(ctx, cl, list, &client.ListOptions{}, true, c.observe))
	}
	c.mu.Lock()
	c.seeding = false
	c.mu.Unlock()
	return errors.Join(errs...)
}

func (c *changeCounter) observe(obj client.Object, _ time.Time) {
	kind, stripped, ut := withoutUtilization(obj)
	if kind == "" {
		return
	}
	key := kind + "/" + obj.GetNamespace() + "/" + obj.GetName()
	c.mu.Lock()
	defer c.mu.Unlock()
	prev, seen := c.last[key]
	c.last[key] = stripped
	if c.seeding || !seen {
		return
	}
	switch {
	case !equality.Semantic.DeepEqual(prev, stripped):
		c.rest[kind]++
	case ut:
		c.utilization[kind]++
	}
}

// withoutUtilization returns obj's kind, a copy of it without status.utilization,
// resourceVersion, managed fields and type meta, and whether it has a utilization.
func withoutUtilization(obj client.Object) (kind string, stripped client.Object, hasUtilization bool) {
	switch o := obj.(type) {
	case *ecsv1alpha1.ContainerInstance:
		c := o.DeepCopy()
		kind, stripped, hasUtilization = "ContainerInstance", c, c.Status.Utilization != nil
		c.Status.Utilization = nil
	case *ecsv1alpha1.Service:
		c := o.DeepCopy()
		kind, stripped, hasUtilization = "Service", c, c.Status.Utilization != nil
		c.Status.Utilization = nil
	case *ecsv1alpha1.TaskDefinition:
		c := o.DeepCopy()
		kind, stripped, hasUtilization = "TaskDefinition", c, c.Status.Utilization != nil
		c.Status.Utilization = nil
	case *ecsv1alpha1.Cluster:
		c := o.DeepCopy()
		kind, stripped, hasUtilization = "Cluster", c, c.Status.Utilization != nil
		c.Status.Utilization = nil
	default:
		return "", nil, false
	}
	stripped.SetResourceVersion("")
	stripped.SetManagedFields(nil)
	// Listed items come without apiVersion and kind, watched ones with.
	stripped.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{})
	return kind, stripped, hasUtilization
}

// describe lists the changes per kind: "Service 60 utilization only, 0 other; ...".
func (c *changeCounter) describe() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var parts []string
	for _, kind := range []string{"ContainerInstance", "Service", "TaskDefinition", "Cluster"} {
		parts = append(parts, fmt.Sprintf("%s %d utilization only, %d other", kind, c.utilization[kind], c.rest[kind]))
	}
	return strings.Join(parts, "; ")
}

// others counts the changes that were not utilization's only.
func (c *changeCounter) others() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.rest {
		n += v
	}
	return n
}
