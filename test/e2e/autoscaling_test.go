package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/testenv"
	"github.com/berthdev/berth/test/testobj"
)

// Auto scaling timings, short so that the test takes about three minutes: the agent
// measures over 3 s windows, the manager writes utilization as often.
const (
	utilizationInterval = 3 * time.Second
	scaleOutCooldown    = 10 // seconds
	scaleInCooldown     = 20 // seconds
)

// scaleSample is one reading of the service during the test, for its timeline.
type scaleSample struct {
	at               time.Duration
	desired, running int32
	cpu              string
}

// timeline polls a Service every second until stop, recording every change.
type timeline struct {
	mu      sync.Mutex
	start   time.Time
	samples []scaleSample
}

func (tl *timeline) record(ctx context.Context, ns, name string) {
	for ctx.Err() == nil {
		var svc ecsv1alpha1.Service
		if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &svc); err == nil {
			s := scaleSample{at: time.Since(tl.start).Round(100 * time.Millisecond), desired: ptr.Deref(svc.Spec.DesiredCount, -1), running: svc.Status.RunningCount, cpu: "-"}
			if u := svc.Status.Utilization; u != nil && u.CPUUtilization != nil {
				s.cpu = fmt.Sprintf("%d%% (%d tasks)", *u.CPUUtilization, u.Tasks)
			}
			tl.mu.Lock()
			if n := len(tl.samples); n == 0 || tl.samples[n-1].desired != s.desired || tl.samples[n-1].running != s.running || tl.samples[n-1].cpu != s.cpu {
				tl.samples = append(tl.samples, s)
			}
			tl.mu.Unlock()
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (tl *timeline) String() string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	var b strings.Builder
	for _, s := range tl.samples {
		fmt.Fprintf(&b, "  t=%6.1fs desiredCount=%d running=%d CPUUtilization=%s\n", s.at.Seconds(), s.desired, s.running, s.cpu)
	}
	return b.String()
}

// maxDesired is the largest desiredCount seen.
func (tl *timeline) maxDesired() int32 {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	var m int32
	for _, s := range tl.samples {
		m = max(m, s.desired)
	}
	return m
}

// TestServiceAutoScalingOnRealCPU: a service whose tasks burn CPU grows to its
// maximum, honouring the scale-out cooldown, and shrinks to its minimum once they
// go quiet, after the scale-in cooldown; every action is an Event naming the metric.
// The tasks run on containerd with a task-level cpu of 256 units, a hard limit of a
// quarter core, so a burning task runs at 100% of its reservation.
func TestServiceAutoScalingOnRealCPU(t *testing.T) {
	o := managerOptions
	o.UtilizationInterval = utilizationInterval
	s := newStackWith(t, o)
	s.withPolicy(t, ecsv1alpha1.ContainerPolicyPrivileged) // the control file is a host path volume
	ao := s.agentOptions(t, "node-"+s.ns)
	ao.UtilizationInterval = utilizationInterval
	s.startAgentWith(t, ao)
	ctx := context.Background()

	ctl := t.TempDir()
	burn := filepath.Join(ctl, "burn")
	if err := os.WriteFile(burn, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	td := testobj.TaskDefinition(s.ns, "burner").Container("app", s.image).Network(ecsv1alpha1.NetworkModeNone).
		Last(func(c *ecsv1alpha1.ContainerDefinition) {
			c.Command = []string{"echo=ready", "burnwhile=/ctl/burn", "echo=quiet", "sleep=inf"}
			c.MountPoints = []ecsv1alpha1.MountPoint{{SourceVolume: "ctl", ContainerPath: "/ctl", ReadOnly: true}}
		}).Obj()
	td.Spec.Cpu = ptr.To(intstr.FromString("256"))
	td.Spec.Memory = ptr.To(intstr.FromString("128")) // testobj's container asks for 128 MiB
	td.Spec.Volumes = []ecsv1alpha1.Volume{{Name: "ctl", Host: &ecsv1alpha1.HostVolume{SourcePath: ctl}}}
	if err := env.Client.Create(ctx, td); err != nil {
		t.Fatal(err)
	}
	svc := testobj.Service(s.ns, "burner", "burner", 0).Cluster(s.cluster).Obj()
	svc.Spec.DesiredCount = nil // the auto scaler owns it; the service starts at minCapacity
	svc.Spec.AutoScaling = &ecsv1alpha1.ServiceAutoScaling{MinCapacity: 1, MaxCapacity: 3, TargetTracking: []ecsv1alpha1.TargetTrackingPolicy{{
		Name: "cpu", PredefinedMetric: ecsv1alpha1.MetricServiceCPU, TargetValue: resource.MustParse("50"),
		ScaleOutCooldownSeconds: ptr.To[int32](scaleOutCooldown), ScaleInCooldownSeconds: ptr.To[int32](scaleInCooldown),
	}}}

	tl := &timeline{start: time.Now()}
	rctx, stopRecording := context.WithCancel(ctx)
	defer stopRecording()
	go tl.record(rctx, s.ns, svc.Name)
	defer func() { t.Logf("timeline (from the Service's creation):\n%s", tl) }()
	if err := env.Client.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}

	// Burning: 1 task at ~100% of a 50% target asks for 2, then 2 for 4, capped at 3.
	testenv.EventuallyWithin(t, 3*time.Minute, "the service scaled out to its maximum of 3 and runs 3 tasks", func() error {
		cur := getSvc(t, s.ns, svc.Name)
		if d := ptr.Deref(cur.Spec.DesiredCount, 0); d != 3 || cur.Status.RunningCount != 3 {
			return fmt.Errorf("desiredCount %d, running %d, conditions %+v\n%s", d, cur.Status.RunningCount, cur.Status.Conditions, tasksOf(t, s.ns, svc.Name))
		}
		return nil
	})
	outs := scalingEvents(t, s.ns, svc.Name, ecsv1alpha1.ReasonScaledOut)
	if len(outs) == 0 {
		t.Fatal("no ScaledOut event")
	}
	for _, e := range outs {
		if !strings.Contains(e.Message, "ECSServiceAverageCPUUtilization") || !strings.Contains(e.Message, "target 50") {
			t.Errorf("ScaledOut event does not name the metric and its target: %q", e.Message)
		}
	}
	checkGaps(t, outs, scaleOutCooldown, "scale-outs")
	lastOut := outs[len(outs)-1].time()

	// Quiet: the tasks stop burning; the service shrinks to its minimum, not before
	// the scale-in cooldown after the last scale-out.
	if err := os.Remove(burn); err != nil {
		t.Fatal(err)
	}
	quietAt := time.Now()
	testenv.EventuallyWithin(t, 3*time.Minute, "the service scaled in to its minimum of 1", func() error {
		cur := getSvc(t, s.ns, svc.Name)
		if d := ptr.Deref(cur.Spec.DesiredCount, 0); d != 1 || cur.Status.RunningCount != 1 {
			return fmt.Errorf("desiredCount %d, running %d", d, cur.Status.RunningCount)
		}
		return nil
	})
	ins := scalingEvents(t, s.ns, svc.Name, ecsv1alpha1.ReasonScaledIn)
	if len(ins) == 0 {
		t.Fatal("no ScaledIn event")
	}
	if first := ins[0].time(); first.Sub(lastOut) < scaleInCooldown*time.Second {
		t.Errorf("scaled in %s after the last scale-out, inside the %ds scale-in cooldown", first.Sub(lastOut), scaleInCooldown)
	}
	checkGaps(t, ins, scaleInCooldown, "scale-ins")
	if m := tl.maxDesired(); m > 3 {
		t.Errorf("desiredCount reached %d, above maxCapacity 3", m)
	}
	t.Logf("scaled out to 3 by %.0fs; quiet from %.0fs; back to 1 %.0fs after going quiet",
		lastOut.Sub(tl.start).Seconds(), quietAt.Sub(tl.start).Seconds(), time.Since(quietAt).Seconds())
}

func getSvc(t *testing.T, ns, name string) *ecsv1alpha1.Service {
	t.Helper()
	var svc ecsv1alpha1.Service
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, &svc); err != nil {
		t.Fatal(err)
	}
	return &svc
}

type scalingEvent struct{ corev1.Event }

func (e scalingEvent) time() time.Time {
	for _, t := range []time.Time{e.EventTime.Time, e.LastTimestamp.Time, e.FirstTimestamp.Time, e.CreationTimestamp.Time} {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}

// scalingEvents lists the Service's Events of reason, oldest first.
func scalingEvents(t *testing.T, ns, name, reason string) []scalingEvent {
	t.Helper()
	var list corev1.EventList
	if err := env.Client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var out []scalingEvent
	for _, e := range list.Items {
		if e.InvolvedObject.Kind == "Service" && e.InvolvedObject.Name == name && e.Reason == reason {
			out = append(out, scalingEvent{e})
		}
	}
	slices.SortFunc(out, func(a, b scalingEvent) int { return a.time().Compare(b.time()) })
	for _, e := range out {
		t.Logf("%s at %s: %s", e.Reason, e.time().Format(time.RFC3339Nano), e.Message)
	}
	return out
}

// checkGaps: consecutive actions of one direction are at least cooldown apart.
func checkGaps(t *testing.T, es []scalingEvent, cooldown int, what string) {
	t.Helper()
	for i := 1; i < len(es); i++ {
		// Event times have a second's resolution when the event series' timestamps are
		// used; allow that much.
		if gap := es[i].time().Sub(es[i-1].time()); gap < time.Duration(cooldown)*time.Second-time.Second {
			t.Errorf("%s %s apart, inside the %ds cooldown", what, gap, cooldown)
		}
	}
}
