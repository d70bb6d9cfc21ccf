package autoscaling_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/util/retry"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	ecsac "github.com/berthdev/berth/apis/applyconfiguration/apis/v1alpha1"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/controllers/autoscaling"
	"github.com/berthdev/berth/internal/manager"
	"github.com/berthdev/berth/test/testenv"
	"github.com/berthdev/berth/test/testobj"
)

var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Run(m, &env)) }

// clock is the injected clock of the direct reconciles.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// world is a namespace of the test apiserver and an auto scaler reconciling it on
// an injected clock, called directly: each reconcile is one decision, at a known
// time. The test plays the utilization controller.
type world struct {
	t     *testing.T
	ns    string
	clock *clock
	rec   *events.FakeRecorder
	r     *autoscaling.Reconciler
}

func newWorld(t *testing.T, g prometheus.Gatherer) *world {
	t.Helper()
	c := &clock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
	rec := events.NewFakeRecorder(100)
	return &world{t: t, ns: env.Namespace(t), clock: c, rec: rec, r: &autoscaling.Reconciler{
		Client: env.Client, Recorder: rec, Gatherer: g, Now: c.Now, EvaluationInterval: time.Minute,
	}}
}

// autoScaled is a REPLICA service of web with desiredCount (nil: left out) and the
// auto scaling given.
func autoScaled(ns, name string, desired *int32, as ecsv1alpha1.ServiceAutoScaling) *ecsv1alpha1.Service {
	svc := testobj.Service(ns, name, "web", 0).Obj()
	svc.Spec.DesiredCount = desired
	svc.Spec.AutoScaling = &as
	return svc
}

// cpuPolicy tracks the service's CPU at target, with ECS's default cooldowns
// (the CRD's defaults) unless edited.
func cpuPolicy(target int64, edits ...func(*ecsv1alpha1.TargetTrackingPolicy)) ecsv1alpha1.TargetTrackingPolicy {
	p := ecsv1alpha1.TargetTrackingPolicy{Name: "cpu", PredefinedMetric: ecsv1alpha1.MetricServiceCPU, TargetValue: *resource.NewQuantity(target, resource.DecimalSI)}
	for _, e := range edits {
		e(&p)
	}
	return p
}

func (w *world) create(svc *ecsv1alpha1.Service) {
	w.t.Helper()
	if err := env.Client.Create(context.Background(), svc); err != nil {
		w.t.Fatalf("creating service %s: %v", svc.Name, err)
	}
}

func (w *world) service(name string) *ecsv1alpha1.Service {
	w.t.Helper()
	var svc ecsv1alpha1.Service
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: w.ns, Name: name}, &svc); err != nil {
		w.t.Fatal(err)
	}
	return &svc
}

// measure writes status.utilization as the utilization controller does (server-side
// apply of that field alone, field manager berth-utilization): cpu percent of tasks
// measured ago before the clock's now.
func (w *world) measure(name string, cpu *int32, tasks int32, ago time.Duration) {
	w.t.Helper()
	u := ecsac.Utilization().WithTasks(tasks).WithMeasuredAt(metav1.NewTime(w.clock.Now().Add(-ago)))
	if cpu != nil {
		u.WithCPUUtilization(*cpu).WithCPUUsed(int64(*cpu) * 256 * int64(tasks) / 100).WithCPUReserved(256 * int64(tasks))
	}
	ac := ecsac.Service(name, w.ns).WithStatus(ecsac.ServiceStatus().WithUtilization(u))
	if err := env.Client.Status().Apply(context.Background(), ac, client.FieldOwner(ecsv1alpha1.FieldManagerUtilization), client.ForceOwnership); err != nil {
		w.t.Fatalf("applying status.utilization: %v", err)
	}
}

func (w *world) reconcile(name string) ctrl.Result {
	w.t.Helper()
	res, err := w.r.Reconcile(context.Background(), ctrl.Request{NamespacedName: types.NamespacedName{Namespace: w.ns, Name: name}})
	if err != nil {
		w.t.Fatalf("reconcile: %v", err)
	}
	return res
}

// events drains the Events recorded so far, as "<type> <reason> <message>".
func (w *world) events() []string {
	var out []string
	for len(w.rec.Events) > 0 {
		out = append(out, <-w.rec.Events)
	}
	return out
}

func desiredCount(svc *ecsv1alpha1.Service) string {
	if svc.Spec.DesiredCount == nil {
		return "unset"
	}
	return fmt.Sprint(*svc.Spec.DesiredCount)
}

// TestTargetTrackingOnUtilization runs one service through a day of load, one
// utilization refresh at a time: scale-out, the cooldowns (nothing inside, the
// action once they end), scale-in below the tolerance, a scale-out during a scale-in
// cooldown, and one Event per action, naming the value that caused it.
func TestTargetTrackingOnUtilization(t *testing.T) {
	w := newWorld(t, prometheus.NewRegistry())
	w.create(autoScaled(w.ns, "web", ptr.To[int32](2), ecsv1alpha1.ServiceAutoScaling{MinCapacity: 1, MaxCapacity: 10,
		TargetTracking: []ecsv1alpha1.TargetTrackingPolicy{cpuPolicy(50)}}))
	event := func(reason string, from, to, cpu int) string {
		return fmt.Sprintf("Normal %s desiredCount %d → %d: policy cpu ECSServiceAverageCPUUtilization %d (target 50)", reason, from, to, cpu)
	}

	steps := []struct {
		name    string
		advance time.Duration
		// cpu is a new measurement of the running tasks, taken now; nil: none.
		cpu          *int32
		wantDesired  string
		wantCapacity int32
		wantEvents   []string
	}{
		{name: "92% of 50 on 2 tasks asks for 4", cpu: ptr.To[int32](92), wantDesired: "4", wantCapacity: 4,
			wantEvents: []string{event("ScaledOut", 2, 4, 92)}},
		{name: "the same measurement again: it predates the action", wantDesired: "4", wantCapacity: 8},
		{name: "within the scale-out cooldown", advance: 100 * time.Second, cpu: ptr.To[int32](95), wantDesired: "4", wantCapacity: 8},
		{name: "the scale-out cooldown has ended", advance: 200 * time.Second, cpu: ptr.To[int32](95), wantDesired: "8", wantCapacity: 8,
			wantEvents: []string{event("ScaledOut", 4, 8, 95)}},
		{name: "low, within the scale-in cooldown of the scale-out", advance: 60 * time.Second, cpu: ptr.To[int32](10), wantDesired: "8", wantCapacity: 2},
		{name: "just below target after the cooldown: no task to spare", advance: 300 * time.Second, cpu: ptr.To[int32](46), wantDesired: "8", wantCapacity: 8},
		{name: "below the tolerance after the cooldown: scale in", advance: 10 * time.Second, cpu: ptr.To[int32](10), wantDesired: "2", wantCapacity: 2,
			wantEvents: []string{event("ScaledIn", 8, 2, 10)}},
		{name: "a scale-out during the scale-in cooldown", advance: 10 * time.Second, cpu: ptr.To[int32](150), wantDesired: "6", wantCapacity: 6,
			wantEvents: []string{event("ScaledOut", 2, 6, 150)}},
	}
	var lastOut, lastIn time.Time
	for _, s := range steps {
		w.clock.Advance(s.advance)
		if s.cpu != nil {
			current := w.service("web").Spec.DesiredCount
			w.measure("web", s.cpu, *current, 0)
		}
		w.reconcile("web")
		svc := w.service("web")
		if got := desiredCount(svc); got != s.wantDesired {
			t.Errorf("%s: desiredCount %s, want %s", s.name, got, s.wantDesired)
		}
		if diff := cmp.Diff(s.wantEvents, w.events()); diff != "" {
			t.Errorf("%s: events (-want +got):\n%s", s.name, diff)
		}
		for _, e := range s.wantEvents {
			switch {
			case strings.Contains(e, "ScaledOut"):
				lastOut = w.clock.Now()
			case strings.Contains(e, "ScaledIn"):
				lastIn = w.clock.Now()
			}
		}
		st := svc.Status.AutoScaling
		if st == nil {
			t.Fatalf("%s: no status.autoScaling", s.name)
		}
		if got := ptr.Deref(st.DesiredCapacity, -1); got != s.wantCapacity {
			t.Errorf("%s: status desiredCapacity %d, want %d", s.name, got, s.wantCapacity)
		}
		if got := timeOf(st.LastScaleOutTime); !got.Equal(lastOut) {
			t.Errorf("%s: lastScaleOutTime %s, want %s", s.name, got, lastOut)
		}
		if got := timeOf(st.LastScaleInTime); !got.Equal(lastIn) {
			t.Errorf("%s: lastScaleInTime %s, want %s", s.name, got, lastIn)
		}
		if !meta.IsStatusConditionTrue(svc.Status.Conditions, ecsv1alpha1.ServiceConditionScalingActive) {
			t.Errorf("%s: ScalingActive not True: %+v", s.name, svc.Status.Conditions)
		}
	}

	svc := w.service("web")
	wantMetrics := []ecsv1alpha1.PolicyMetric{{Policy: "cpu", Value: ptr.To(resource.MustParse("150")), DesiredCapacity: ptr.To[int32](6)}}
	if diff := cmp.Diff(wantMetrics, svc.Status.AutoScaling.Metrics); diff != "" {
		t.Errorf("status metrics (-want +got):\n%s", diff)
	}
	// desiredCount is the auto scaler's, written through the scale subresource.
	if owner := desiredCountOwner(svc); owner != ecsv1alpha1.FieldManagerAutoScaler+"/scale" {
		t.Errorf("spec.desiredCount owned by %q, want %s/scale", owner, ecsv1alpha1.FieldManagerAutoScaler)
	}
}

func timeOf(t *metav1.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.Time
}

// desiredCountOwner is "manager/subresource" of the managedFields entry that owns
// spec.desiredCount.
func desiredCountOwner(svc *ecsv1alpha1.Service) string {
	for _, mf := range svc.ManagedFields {
		if raw := mf.FieldsV1.GetRawString(); strings.Contains(raw, `"f:desiredCount"`) && strings.Contains(raw, `"f:spec"`) {
			return mf.Manager + "/" + mf.Subresource
		}
	}
	return ""
}

// TestDirectionsBlocked: disableScaleIn and suspension hold desiredCount whatever
// the metric says, and report it.
func TestDirectionsBlocked(t *testing.T) {
	tests := []struct {
		name       string
		desired    int32
		cpu        int32
		as         ecsv1alpha1.ServiceAutoScaling
		wantReason string // of ScalingActive
	}{
		{name: "disableScaleIn", desired: 4, cpu: 10, wantReason: ecsv1alpha1.ReasonMetricsAvailable,
			as: ecsv1alpha1.ServiceAutoScaling{TargetTracking: []ecsv1alpha1.TargetTrackingPolicy{
				cpuPolicy(50, func(p *ecsv1alpha1.TargetTrackingPolicy) { p.DisableScaleIn = true })}}},
		{name: "scale-out suspended", desired: 2, cpu: 92, wantReason: ecsv1alpha1.ReasonMetricsAvailable,
			as: ecsv1alpha1.ServiceAutoScaling{ScaleOutSuspended: true, TargetTracking: []ecsv1alpha1.TargetTrackingPolicy{cpuPolicy(50)}}},
		{name: "scale-in suspended", desired: 4, cpu: 10, wantReason: ecsv1alpha1.ReasonMetricsAvailable,
			as: ecsv1alpha1.ServiceAutoScaling{ScaleInSuspended: true, TargetTracking: []ecsv1alpha1.TargetTrackingPolicy{cpuPolicy(50)}}},
		{name: "both suspended", desired: 2, cpu: 92, wantReason: ecsv1alpha1.ReasonScalingSuspended,
			as: ecsv1alpha1.ServiceAutoScaling{ScaleOutSuspended: true, ScaleInSuspended: true, TargetTracking: []ecsv1alpha1.TargetTrackingPolicy{cpuPolicy(50)}}},
	}
	w := newWorld(t, prometheus.NewRegistry())
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name := fmt.Sprintf("web-%d", i)
			tc.as.MinCapacity, tc.as.MaxCapacity = 1, 10
			w.create(autoScaled(w.ns, name, &tc.desired, tc.as))
			w.measure(name, &tc.cpu, tc.desired, 0)
			w.reconcile(name)
			svc := w.service(name)
			if got := desiredCount(svc); got != fmt.Sprint(tc.desired) {
				t.Errorf("desiredCount %s, want %d", got, tc.desired)
			}
			if ev := w.events(); len(ev) != 0 {
				t.Errorf("events %q, want none", ev)
			}
			if c := meta.FindStatusCondition(svc.Status.Conditions, ecsv1alpha1.ServiceConditionScalingActive); c == nil || c.Reason != tc.wantReason {
				t.Errorf("ScalingActive %+v, want reason %s", c, tc.wantReason)
			}
		})
	}
}

// TestKeptWithinRange: a desiredCount outside [minCapacity, maxCapacity], or left
// out of the manifest, moves into the range at once, with no metric at all; a
// manual scale out of the range (kubectl scale) is moved back.
func TestKeptWithinRange(t *testing.T) {
	tests := []struct {
		name        string
		desired     *int32
		wantDesired string
		wantEvent   string
	}{
		{name: "above maxCapacity", desired: ptr.To[int32](12), wantDesired: "5",
			wantEvent: "Normal ScaledToRange desiredCount 12 → 5, within minCapacity 2 and maxCapacity 5: policy cpu ECSServiceAverageCPUUtilization no value (no utilization measured yet) (target 50)"},
		{name: "below minCapacity", desired: ptr.To[int32](0), wantDesired: "2",
			wantEvent: "Normal ScaledToRange desiredCount 0 → 2, within minCapacity 2 and maxCapacity 5: policy cpu ECSServiceAverageCPUUtilization no value (no utilization measured yet) (target 50)"},
		{name: "left out of the manifest: starts at minCapacity", wantDesired: "2",
			wantEvent: "Normal ScaledToRange desiredCount unset → 2, within minCapacity 2 and maxCapacity 5: policy cpu ECSServiceAverageCPUUtilization no value (no utilization measured yet) (target 50)"},
	}
	w := newWorld(t, prometheus.NewRegistry())
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name := fmt.Sprintf("web-%d", i)
			w.create(autoScaled(w.ns, name, tc.desired, ecsv1alpha1.ServiceAutoScaling{MinCapacity: 2, MaxCapacity: 5,
				TargetTracking: []ecsv1alpha1.TargetTrackingPolicy{cpuPolicy(50)}}))
			w.reconcile(name)
			svc := w.service(name)
			if got := desiredCount(svc); got != tc.wantDesired {
				t.Errorf("desiredCount %s, want %s", got, tc.wantDesired)
			}
			if diff := cmp.Diff([]string{tc.wantEvent}, w.events()); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			c := meta.FindStatusCondition(svc.Status.Conditions, ecsv1alpha1.ServiceConditionScalingActive)
			if c == nil || c.Status != metav1.ConditionFalse || c.Reason != ecsv1alpha1.ReasonMissingMetrics {
				t.Errorf("ScalingActive %+v, want False MissingMetrics", c)
			}
			// A move into range starts no cooldown.
			if st := svc.Status.AutoScaling; st == nil || st.LastScaleOutTime != nil || st.LastScaleInTime != nil {
				t.Errorf("status.autoScaling %+v, want no action times", st)
			}
		})
	}

	t.Run("kubectl scale above maxCapacity", func(t *testing.T) {
		svc := w.service("web-0")
		scale(t, svc, 9)
		w.reconcile("web-0")
		if got := desiredCount(w.service("web-0")); got != "5" {
			t.Errorf("desiredCount %s, want 5", got)
		}
		if ev := w.events(); len(ev) != 1 || !strings.HasPrefix(ev[0], "Normal ScaledToRange desiredCount 9 → 5") {
			t.Errorf("events %q, want one ScaledToRange 9 → 5", ev)
		}
	})
}

// scale sets desiredCount as `kubectl scale` does.
func scale(t *testing.T, svc *ecsv1alpha1.Service, n int32) {
	t.Helper()
	patch := client.RawPatch(types.MergePatchType, fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, n))
	if err := env.Client.SubResource("scale").Patch(context.Background(), svc, patch, client.WithSubResourceBody(&autoscalingv1.Scale{})); err != nil {
		t.Fatalf("scaling %s: %v", svc.Name, err)
	}
}

// TestMissingMetricsHoldTheCount: without a current measurement the policy neither
// scales out nor in, and ScalingActive says why.
func TestMissingMetricsHoldTheCount(t *testing.T) {
	tests := []struct {
		name    string
		cpu     *int32
		tasks   int32
		ago     time.Duration
		wantMsg string
	}{
		{name: "stale", cpu: ptr.To[int32](95), tasks: 4, ago: 4 * time.Minute,
			wantMsg: "policy cpu (ECSServiceAverageCPUUtilization): utilization measured at 2025-06-01T11:56:00Z, more than 3m0s ago"},
		{name: "no running task", tasks: 0, wantMsg: "policy cpu (ECSServiceAverageCPUUtilization): no running task to measure"},
		{name: "no CPU reserved", tasks: 4, wantMsg: "policy cpu (ECSServiceAverageCPUUtilization): no cpuUtilization: the tasks reserve no CPU units"},
	}
	w := newWorld(t, prometheus.NewRegistry())
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name := fmt.Sprintf("web-%d", i)
			w.create(autoScaled(w.ns, name, ptr.To[int32](4), ecsv1alpha1.ServiceAutoScaling{MinCapacity: 1, MaxCapacity: 10,
				TargetTracking: []ecsv1alpha1.TargetTrackingPolicy{cpuPolicy(50)}}))
			w.measure(name, tc.cpu, tc.tasks, tc.ago)
			res := w.reconcile(name)
			svc := w.service(name)
			if got := desiredCount(svc); got != "4" {
				t.Errorf("desiredCount %s, want 4", got)
			}
			if ev := w.events(); len(ev) != 0 {
				t.Errorf("events %q, want none", ev)
			}
			c := meta.FindStatusCondition(svc.Status.Conditions, ecsv1alpha1.ServiceConditionScalingActive)
			if c == nil || c.Status != metav1.ConditionFalse || c.Reason != ecsv1alpha1.ReasonMissingMetrics || c.Message != tc.wantMsg {
				t.Errorf("ScalingActive %+v, want False MissingMetrics %q", c, tc.wantMsg)
			}
			if res.RequeueAfter != 0 {
				t.Errorf("RequeueAfter %s, want none: only a new measurement changes the reading", res.RequeueAfter)
			}
		})
	}
}

// TestCustomizedMetrics: a gauge of the manager's registry is used as it is; a
// counter as its rate between two evaluations an interval apart, and the
// reconciler asks to be called again at the next evaluation.
func TestCustomizedMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	depth := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "test_queue_depth", Help: "h"}, []string{"queue"})
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "test_requests_total", Help: "h"}, []string{"service"})
	reg.MustRegister(depth, requests)
	w := newWorld(t, reg)
	policy := func(name, metric string, labels map[string]string, target int64) ecsv1alpha1.TargetTrackingPolicy {
		return ecsv1alpha1.TargetTrackingPolicy{Name: name, TargetValue: *resource.NewQuantity(target, resource.DecimalSI),
			CustomizedMetric: &ecsv1alpha1.CustomizedMetric{MetricName: metric, Labels: labels}}
	}

	t.Run("gauge", func(t *testing.T) {
		depth.WithLabelValues("jobs").Set(30)
		depth.WithLabelValues("mail").Set(500)
		w.create(autoScaled(w.ns, "worker", ptr.To[int32](1), ecsv1alpha1.ServiceAutoScaling{MinCapacity: 1, MaxCapacity: 10,
			TargetTracking: []ecsv1alpha1.TargetTrackingPolicy{policy("queue", "test_queue_depth", map[string]string{"queue": "jobs"}, 10)}}))
		res := w.reconcile("worker")
		if got := desiredCount(w.service("worker")); got != "3" {
			t.Errorf("desiredCount %s, want 3", got)
		}
		want := []string{`Normal ScaledOut desiredCount 1 → 3: policy queue test_queue_depth{queue="jobs"} 30 (target 10)`}
		if diff := cmp.Diff(want, w.events()); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		if res.RequeueAfter != time.Minute {
			t.Errorf("RequeueAfter %s, want the evaluation interval", res.RequeueAfter)
		}
	})

	t.Run("counter rate", func(t *testing.T) {
		requests.WithLabelValues("api").Add(1000)
		w.create(autoScaled(w.ns, "api", ptr.To[int32](1), ecsv1alpha1.ServiceAutoScaling{MinCapacity: 1, MaxCapacity: 10,
			TargetTracking: []ecsv1alpha1.TargetTrackingPolicy{policy("rps", "test_requests_total", map[string]string{"service": "api"}, 5)}}))
		res := w.reconcile("api")
		c := meta.FindStatusCondition(w.service("api").Status.Conditions, ecsv1alpha1.ServiceConditionScalingActive)
		if c == nil || c.Reason != ecsv1alpha1.ReasonMissingMetrics || !strings.Contains(c.Message, "its rate needs a second reading") {
			t.Errorf("after one reading: ScalingActive %+v, want MissingMetrics for the rate", c)
		}
		if res.RequeueAfter != time.Minute {
			t.Errorf("RequeueAfter %s, want the evaluation interval", res.RequeueAfter)
		}
		w.clock.Advance(time.Minute)
		requests.WithLabelValues("api").Add(1200) // 20 per second
		w.reconcile("api")
		svc := w.service("api")
		if got := desiredCount(svc); got != "4" {
			t.Errorf("desiredCount %s, want 4", got)
		}
		want := []string{`Normal ScaledOut desiredCount 1 → 4: policy rps test_requests_total{service="api"} 20 (target 5)`}
		if diff := cmp.Diff(want, w.events()); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]ecsv1alpha1.PolicyMetric{{Policy: "rps", Value: ptr.To(resource.MustParse("20")), DesiredCapacity: ptr.To[int32](4)}},
			svc.Status.AutoScaling.Metrics); diff != "" {
			t.Errorf("status metrics (-want +got):\n%s", diff)
		}
	})
}

// TestDecisionOnAStaleCopyIsNotWritten: the scale write carries the resourceVersion
// the decision was made on, so a change made meanwhile (here a manual scale) fails
// it rather than being overwritten, and no Event claims an action.
func TestDecisionOnAStaleCopyIsNotWritten(t *testing.T) {
	w := newWorld(t, prometheus.NewRegistry())
	w.create(autoScaled(w.ns, "web", ptr.To[int32](12), ecsv1alpha1.ServiceAutoScaling{MinCapacity: 1, MaxCapacity: 10}))
	stale := w.service("web")
	scale(t, stale, 3)
	live, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	w.r.Client = interceptor.NewClient(live, interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			stale.DeepCopyInto(obj.(*ecsv1alpha1.Service))
			return nil
		},
	})
	if _, err := w.r.Reconcile(context.Background(), ctrl.Request{NamespacedName: types.NamespacedName{Namespace: w.ns, Name: "web"}}); err == nil {
		t.Fatal("a decision on a stale copy was written")
	}
	if got := desiredCount(w.service("web")); got != "3" {
		t.Errorf("desiredCount %s, want the manual 3", got)
	}
	if ev := w.events(); len(ev) != 0 {
		t.Errorf("events %q, want none", ev)
	}
}

// TestRemovedAutoScalingClearsStatus: a service no longer auto scaled loses the
// auto scaler's status and condition, and keeps its desiredCount.
func TestRemovedAutoScalingClearsStatus(t *testing.T) {
	w := newWorld(t, prometheus.NewRegistry())
	w.create(autoScaled(w.ns, "web", ptr.To[int32](12), ecsv1alpha1.ServiceAutoScaling{MinCapacity: 1, MaxCapacity: 10}))
	w.reconcile("web")
	svc := w.service("web")
	if svc.Status.AutoScaling == nil {
		t.Fatal("no status.autoScaling")
	}
	svc.Spec.AutoScaling = nil
	if err := env.Client.Update(context.Background(), svc); err != nil {
		t.Fatal(err)
	}
	w.reconcile("web")
	svc = w.service("web")
	if svc.Status.AutoScaling != nil || meta.FindStatusCondition(svc.Status.Conditions, ecsv1alpha1.ServiceConditionScalingActive) != nil {
		t.Errorf("status.autoScaling %+v, conditions %+v: want neither", svc.Status.AutoScaling, svc.Status.Conditions)
	}
	if got := desiredCount(svc); got != "10" {
		t.Errorf("desiredCount %s, want 10", got)
	}
}

// TestWatchesThroughTheManager runs the auto scaler in a manager on the real clock:
// a new utilization measurement, a manual desiredCount and a changed autoScaling
// each cause a decision without any timer, and the Event reaches the apiserver.
func TestWatchesThroughTheManager(t *testing.T) {
	ns := env.Namespace(t)
	env.StartManager(t, ctrl.Options{Cache: manager.CacheOptions()}, func(_ context.Context, mgr ctrl.Manager) error {
		return (&autoscaling.Reconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: mgr.GetEventRecorder("berth-autoscaler"),
			Gatherer: prometheus.NewRegistry()}).SetupWithManager(mgr)
	})
	noCooldown := func(p *ecsv1alpha1.TargetTrackingPolicy) {
		p.ScaleOutCooldownSeconds, p.ScaleInCooldownSeconds = ptr.To[int32](0), ptr.To[int32](0)
	}
	w := &world{t: t, ns: ns, clock: &clock{t: time.Now()}}
	w.create(autoScaled(ns, "web", nil, ecsv1alpha1.ServiceAutoScaling{MinCapacity: 1, MaxCapacity: 5,
		TargetTracking: []ecsv1alpha1.TargetTrackingPolicy{cpuPolicy(50, noCooldown)}}))
	waitDesired := func(what, want string) {
		t.Helper()
		testenv.Eventually(t, what, func() error {
			if got := desiredCount(w.service("web")); got != want {
				return fmt.Errorf("desiredCount %s, want %s", got, want)
			}
			return nil
		})
	}
	waitDesired("the unset desiredCount set to minCapacity", "1")

	w.clock.t = time.Now()
	w.measure("web", ptr.To[int32](100), 1, 0)
	waitDesired("a scale-out on the new measurement", "2")
	testenv.Eventually(t, "the ScaledOut Event", func() error {
		var list eventsv1.EventList
		if err := env.Client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
			return err
		}
		for _, e := range list.Items {
			if e.Regarding.Name == "web" && e.Reason == ecsv1alpha1.ReasonScaledOut &&
				e.Note == "desiredCount 1 → 2: policy cpu ECSServiceAverageCPUUtilization 100 (target 50)" {
				return nil
			}
		}
		return fmt.Errorf("no ScaledOut Event among %d", len(list.Items))
	})

	scale(t, w.service("web"), 9)
	waitDesired("a manual desiredCount above maxCapacity moved back", "5")

	// The auto scaler writes the Service too (its status after each action): a
	// user's read-modify-write retries on a conflict, as kubectl edit would.
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		svc := w.service("web")
		svc.Spec.AutoScaling.MaxCapacity = 3
		return env.Client.Update(context.Background(), svc)
	}); err != nil {
		t.Fatal(err)
	}
	waitDesired("a lowered maxCapacity applied", "3")
}

// TestTargetValueForms: the schema's rule that targetValue is positive reads it as
// a YAML integer or a quantity string alike (it is an int-or-string).
func TestTargetValueForms(t *testing.T) {
	ns := env.Namespace(t)
	tests := []struct {
		value   any
		wantErr bool
	}{
		{value: int64(50)}, {value: "50"}, {value: "0.5"}, {value: "500m"}, {value: "1e3"},
		{value: int64(0), wantErr: true}, {value: "-1", wantErr: true}, {value: "0m", wantErr: true},
	}
	for i, tc := range tests {
		t.Run(fmt.Sprintf("%T %v", tc.value, tc.value), func(t *testing.T) {
			u := &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": ecsv1alpha1.GroupVersion.String(), "kind": "Service",
				"metadata": map[string]any{"namespace": ns, "name": fmt.Sprintf("web-%d", i)},
				"spec": map[string]any{"taskDefinition": "web", "autoScaling": map[string]any{
					"minCapacity": int64(1), "maxCapacity": int64(2),
					"targetTracking": []any{map[string]any{"name": "cpu", "predefinedMetric": "ECSServiceAverageCPUUtilization", "targetValue": tc.value}},
				}},
			}}
			err := env.Client.Create(context.Background(), u)
			switch {
			case tc.wantErr && (err == nil || !strings.Contains(err.Error(), "targetValue must be positive")):
				t.Errorf("targetValue %v: error %v, want targetValue must be positive", tc.value, err)
			case !tc.wantErr && err != nil:
				t.Errorf("targetValue %v refused: %v", tc.value, err)
			}
		})
	}
}
