package metrics

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/berthdev/berth/agent/runtime"
	"github.com/berthdev/berth/agent/runtime/fake"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/taskrules"
)

const mib = 1 << 20

// samplerFixture is a fake runtime on a fake clock with a sampler over it, whose
// tasks reserve what reserved says and belong to the services services says.
type samplerFixture struct {
	t        *testing.T
	clk      *clocktesting.FakeClock
	rt       *fake.Runtime
	reserved map[types.UID]taskrules.Resources
	services map[types.UID]string
	s        *Sampler
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newSamplerFixture(t *testing.T, interval time.Duration) *samplerFixture {
	t.Helper()
	clk := clocktesting.NewFakeClock(t0)
	f := &samplerFixture{
		t: t, clk: clk, rt: fake.New(fake.WithClock(clk)),
		reserved: map[types.UID]taskrules.Resources{}, services: map[types.UID]string{},
	}
	if _, err := f.rt.Pull(context.Background(), image, runtime.PullDefault, nil); err != nil {
		t.Fatal(err)
	}
	f.s = NewSampler(SamplerConfig{
		Runtime: f.rt, Interval: interval, Clock: clk,
		Lookup: func(_ context.Context, _ types.NamespacedName, uid types.UID) TaskInfo {
			return TaskInfo{Service: f.services[uid]}
		},
		Reserved: func() map[types.UID]taskrules.Resources { return f.reserved },
	})
	return f
}

// set sets what the container of task uid reads from now on.
func (f *samplerFixture) set(uid, container string, cpu time.Duration, memMiB uint64) {
	f.rt.SetStats(runtime.ContainerID(uid, container), runtime.ContainerStats{CPU: cpu, MemoryUsageBytes: memMiB * mib})
}

// sampleAt moves the clock to t0+sec and samples.
func (f *samplerFixture) sampleAt(sec int) {
	f.clk.SetTime(t0.Add(time.Duration(sec) * time.Second))
	f.s.Sample(context.Background())
}

func at(sec int) metav1.Time { return metav1.NewTime(t0.Add(time.Duration(sec) * time.Second)) }

// TestSamplerWindows: the groups of a window, per namespace, service and family,
// from the containers' CPU growth and mean memory, with what the tasks reserve; the
// next window starts from the last sample; idle windows are reported once.
func TestSamplerWindows(t *testing.T) {
	f := newSamplerFixture(t, time.Minute)
	run(t, f.rt, "uid-a", "team/web-a", "app", "web:3", runtime.ContainerStats{})
	run(t, f.rt, "uid-a", "team/web-a", "sidecar", "web:3", runtime.ContainerStats{})
	run(t, f.rt, "uid-b", "team/web-b", "app", "web:4", runtime.ContainerStats{})
	run(t, f.rt, "uid-c", "team/job", "main", "batch:1", runtime.ContainerStats{})
	f.reserved["uid-a"] = taskrules.Resources{CPU: 512, Memory: 1024}
	f.reserved["uid-b"] = taskrules.Resources{CPU: 512, Memory: 1024}
	f.reserved["uid-c"] = taskrules.Resources{CPU: 256, Memory: 512}
	f.services["uid-a"], f.services["uid-b"] = "web", "web"
	// The pause container is the agent's: its CPU is not the task's.
	pause := run(t, f.rt, "uid-c", "team/job", runtime.PauseContainer, "batch:1", runtime.ContainerStats{})
	// A task the instance holds no reservation for is not counted.
	run(t, f.rt, "uid-x", "team/unknown", "main", "batch:1", runtime.ContainerStats{})
	// A stopped container is not read.
	stopped := run(t, f.rt, "uid-s", "team/done", "main", "batch:1", runtime.ContainerStats{})
	f.reserved["uid-s"] = taskrules.Resources{CPU: 1024, Memory: 1024}
	if err := f.rt.Exit(stopped, 0); err != nil {
		t.Fatal(err)
	}

	// Window 1, t0 to t0+60, sampled every 15 s.
	aMem := []uint64{100, 200, 300, 200, 100}  // mean 180 MiB
	bCPU := []time.Duration{10, 20, 5, 15, 25} // restarted after 20 s: 10+5+10+10 = 35 s
	for i, sec := range []int{0, 15, 30, 45, 60} {
		d := time.Duration(sec) * time.Second
		f.set("uid-a", "app", d/2, aMem[i]) // half a core: 512
		f.set("uid-a", "sidecar", d/4, 10)  // a quarter: 256
		f.set("uid-b", "app", bCPU[i]*time.Second, 50)
		f.set("uid-c", "main", d, 64) // a whole core: 1024
		f.set("uid-x", "main", d, 64)
		f.rt.SetStats(pause, runtime.ContainerStats{CPU: 100 * d})
		if sec == 60 {
			// A container started during the last sample has one sample: no rate yet.
			run(t, f.rt, "uid-a", "team/web-a", "late", "web:3", runtime.ContainerStats{CPU: time.Hour})
		}
		f.sampleAt(sec)
	}
	u, report := f.s.Close(context.Background())
	want := &ecsv1alpha1.InstanceUtilization{WindowStart: at(0), WindowEnd: at(60), Groups: []ecsv1alpha1.UtilizationGroup{
		{Namespace: "team", Family: "batch", Tasks: 1, CPUUsed: 1024, CPUReserved: 256, MemoryUsed: 64, MemoryReserved: 512},
		// 768 + round(35/60 x 1024) = 768 + 597; 190 + 50 MiB.
		{Namespace: "team", Service: "web", Family: "web", Tasks: 2, CPUUsed: 1365, CPUReserved: 1024, MemoryUsed: 240, MemoryReserved: 2048},
	}}
	if diff := cmp.Diff(want, u); diff != "" || !report {
		t.Errorf("window 1 (report %v) (-want +got):\n%s", report, diff)
	}

	// Window 2: the job exits; web-a's app uses a whole core from 60 to 75, then
	// nothing. Only the carried sample at 60 sees that core-second: 15 s in 60 s.
	if err := f.rt.Exit(runtime.ContainerID("uid-c", "main"), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.rt.Exit(runtime.ContainerID("uid-b", "app"), 0); err != nil {
		t.Fatal(err)
	}
	for _, sec := range []int{75, 90, 105, 120} {
		f.set("uid-a", "app", 45*time.Second, 100)
		f.set("uid-a", "sidecar", 15*time.Second, 10)
		f.sampleAt(sec)
	}
	u, report = f.s.Close(context.Background())
	want = &ecsv1alpha1.InstanceUtilization{WindowStart: at(60), WindowEnd: at(120), Groups: []ecsv1alpha1.UtilizationGroup{
		// app 256 (carried sample) and late 0, sidecar 0.
		{Namespace: "team", Service: "web", Family: "web", Tasks: 1, CPUUsed: 256, CPUReserved: 512, MemoryUsed: 100 + 10, MemoryReserved: 1024},
	}}
	if diff := cmp.Diff(want, u); diff != "" || !report {
		t.Errorf("window 2 (report %v) (-want +got):\n%s", report, diff)
	}

	// Window 3: the last task stopped. It is reported, empty, so that the manager
	// sees zero; window 4, as idle, is not.
	for _, id := range []string{runtime.ContainerID("uid-a", "app"), runtime.ContainerID("uid-a", "sidecar"), runtime.ContainerID("uid-a", "late"),
		runtime.ContainerID("uid-x", "main"), pause} {
		if err := f.rt.Exit(id, 0); err != nil {
			t.Fatal(err)
		}
	}
	f.sampleAt(180)
	u, report = f.s.Close(context.Background())
	if diff := cmp.Diff(&ecsv1alpha1.InstanceUtilization{WindowStart: at(120), WindowEnd: at(180)}, u); diff != "" || !report {
		t.Errorf("window 3 (report %v) (-want +got):\n%s", report, diff)
	}
	f.sampleAt(240)
	if u, report = f.s.Close(context.Background()); report {
		t.Errorf("an idle window after an empty one is reported: %+v", u)
	}
	if n := len(f.s.windows); n != 0 {
		t.Errorf("%d container windows kept after their containers stopped", n)
	}
}

// TestSamplerTruncates: past the schema's 1024 groups, those that reserve the most
// CPU are kept, still sorted by namespace, service and family.
func TestSamplerTruncates(t *testing.T) {
	f := newSamplerFixture(t, time.Minute)
	const n = maxGroups + 6
	for i := range n {
		uid := fmt.Sprintf("uid-%04d", i)
		run(t, f.rt, uid, "ns/t"+uid, "main", fmt.Sprintf("fam-%04d:1", i), runtime.ContainerStats{})
		// Tasks 0-5 reserve the least.
		f.reserved[types.UID(uid)] = taskrules.Resources{CPU: int64(i + 1), Memory: 1}
	}
	f.sampleAt(0)
	f.sampleAt(60)
	u, _ := f.s.Close(context.Background())
	if len(u.Groups) != maxGroups {
		t.Fatalf("%d groups, want %d", len(u.Groups), maxGroups)
	}
	for i, g := range u.Groups {
		if want := fmt.Sprintf("fam-%04d", i+6); g.Family != want || g.CPUReserved != int64(i+7) {
			t.Fatalf("group %d is %s reserving %d, want %s reserving %d", i, g.Family, g.CPUReserved, want, i+7)
		}
	}
}

// TestSamplerRun: Run samples every quarter of the interval, reports each window
// with groups and the first empty one, and nothing more while idle.
func TestSamplerRun(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	rt := fake.New(fake.WithClock(clk))
	if _, err := rt.Pull(context.Background(), image, runtime.PullDefault, nil); err != nil {
		t.Fatal(err)
	}
	id := run(t, rt, "uid-a", "team/a", "main", "app:1", runtime.ContainerStats{})
	reports := make(chan *ecsv1alpha1.InstanceUtilization, 10)
	s := NewSampler(SamplerConfig{
		Runtime: rt, Interval: 4 * time.Second, Clock: clk,
		Reserved: func() map[types.UID]taskrules.Resources {
			return map[types.UID]taskrules.Resources{"uid-a": {CPU: 1024, Memory: 512}}
		},
		Report: func(u *ecsv1alpha1.InstanceUtilization) { reports <- u },
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	defer func() { cancel(); <-done }()

	// tick moves the clock one sample on and waits until Run has read the runtime,
	// which it does only after it finished with the previous tick (and its report).
	lists := 1
	settle := func() {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !clk.HasWaiters() || rt.Count("List", "") < lists {
			if time.Now().After(deadline) {
				t.Fatalf("the sampler did not read the runtime %d times", lists)
			}
			time.Sleep(time.Millisecond)
		}
	}
	tick := func() {
		t.Helper()
		settle()
		lists++
		// Half a core from t0, read after the step.
		rt.SetStats(id, runtime.ContainerStats{CPU: (clk.Since(t0) + time.Second) / 2, MemoryUsageBytes: 32 * mib})
		clk.Step(time.Second)
	}
	for range 4 {
		tick()
	}
	select {
	case u := <-reports:
		want := &ecsv1alpha1.InstanceUtilization{WindowStart: at(0), WindowEnd: at(4), Groups: []ecsv1alpha1.UtilizationGroup{
			{Namespace: "team", Family: "app", Tasks: 1, CPUUsed: 512, CPUReserved: 1024, MemoryUsed: 26, MemoryReserved: 512}, // (0 + 4 x 32) / 5 MiB
		}}
		if diff := cmp.Diff(want, u); diff != "" {
			t.Errorf("first window (-want +got):\n%s", diff)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no report after a window")
	}
	if err := rt.Exit(id, 0); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		tick()
	}
	select {
	case u := <-reports:
		if len(u.Groups) != 0 || !u.WindowEnd.Equal(ptrTime(at(8))) {
			t.Errorf("window after the task stopped: %+v, want an empty one ending at 8 s", u)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no report of the window in which the last task stopped")
	}
	// Two idle windows, then one more sample: Run has finished with them.
	for range 9 {
		tick()
	}
	settle()
	if len(reports) != 0 {
		t.Errorf("idle windows reported: %+v", <-reports)
	}
}

func ptrTime(t metav1.Time) *metav1.Time { return &t }
