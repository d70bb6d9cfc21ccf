package hollow

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/testobj"
)

func TestConfigValidation(t *testing.T) {
	valid := Config{Cluster: "bench", Instances: 3}
	tests := []struct {
		name       string
		edit       func(*Config)
		wantOption string
	}{
		{"defaults", func(*Config) {}, ""},
		{"everything set", func(c *Config) {
			c.NamePrefix, c.CPU, c.Memory = "node", 2048, 4096
			c.Zones = []string{"eu-1a", "eu-1b"}
			c.Attributes = map[string]string{"stack": "prod", AttributeInstanceType: "m5.large"}
			c.RunningDelay, c.LeaseInterval = time.Second, 5*time.Second
			c.FailImages, c.UnhealthyImages = []string{"crash"}, []string{"sick"}
		}, ""},
		{"no cluster", func(c *Config) { c.Cluster = "" }, "Cluster"},
		{"bad cluster", func(c *Config) { c.Cluster = "Prod_1" }, "Cluster"},
		{"no instances", func(c *Config) { c.Instances = 0 }, "Instances"},
		{"bad prefix", func(c *Config) { c.NamePrefix = "Hollow" }, "NamePrefix"},
		{"prefix too long", func(c *Config) { c.NamePrefix = strings.Repeat("a", 250) }, "NamePrefix"},
		{"negative cpu", func(c *Config) { c.CPU = -1 }, "CPU"},
		{"negative memory", func(c *Config) { c.Memory = -1 }, "Memory"},
		{"empty zone", func(c *Config) { c.Zones = []string{"a", ""} }, "Zones"},
		{"bad zone", func(c *Config) { c.Zones = []string{"a,b"} }, "Zones"},
		{"zone attribute", func(c *Config) { c.Attributes = map[string]string{AttributeZone: "x"} }, "Attributes"},
		{"bad attribute name", func(c *Config) { c.Attributes = map[string]string{"-x": "1"} }, "Attributes"},
		{"bad attribute value", func(c *Config) { c.Attributes = map[string]string{"x": "a=b"} }, "Attributes"},
		{"negative running delay", func(c *Config) { c.RunningDelay = -time.Second }, "RunningDelay"},
		{"lease interval beyond duration", func(c *Config) { c.LeaseInterval = time.Minute }, "LeaseInterval"},
		{"empty fail image", func(c *Config) { c.FailImages = []string{""} }, "FailImages"},
		{"empty unhealthy image", func(c *Config) { c.UnhealthyImages = []string{""} }, "UnhealthyImages"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := valid
			tc.edit(&cfg)
			err := cfg.Validate()
			var ce *ConfigError
			switch {
			case tc.wantOption == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tc.wantOption == "":
			case !errors.As(err, &ce):
				t.Fatalf("Validate() = %v, want a *ConfigError for %s", err, tc.wantOption)
			case ce.Option != tc.wantOption || !strings.HasPrefix(err.Error(), tc.wantOption+" "):
				t.Fatalf("Validate() = %q (option %s), want option %s named", err, ce.Option, tc.wantOption)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	got := Config{Cluster: "c", Instances: 1}.withDefaults()
	want := Config{
		Cluster: "c", Instances: 1, NamePrefix: "hollow", CPU: 4096, Memory: 8192,
		Zones: []string{"zone-a"}, Attributes: map[string]string{},
		RunningDelay: 100 * time.Millisecond, LeaseInterval: 10 * time.Second,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	if name := instanceName(got.NamePrefix, 7); name != "hollow-0007" {
		t.Errorf("instance 7 is %q, want hollow-0007", name)
	}
}

func TestNextStep(t *testing.T) {
	now := time.Now()
	delay := time.Second
	task := func(last ecsv1alpha1.TaskStatusValue, desired ecsv1alpha1.DesiredStatus) *ecsv1alpha1.Task {
		return &ecsv1alpha1.Task{
			Spec:   ecsv1alpha1.TaskSpec{DesiredStatus: desired},
			Status: ecsv1alpha1.TaskStatus{LastStatus: last},
		}
	}
	local := func(p taskPhase, seen time.Duration) *simTask { return &simTask{phase: p, seenAt: now.Add(-seen)} }
	tests := []struct {
		name     string
		task     *ecsv1alpha1.Task
		local    *simTask
		wantAct  action
		wantWait time.Duration
	}{
		{"new task", task("", ecsv1alpha1.DesiredRunning), nil, actAccept, delay},
		{"placed by the manager", task(ecsv1alpha1.TaskProvisioning, ecsv1alpha1.DesiredRunning), nil, actAccept, delay},
		{"waiting", task("", ecsv1alpha1.DesiredRunning), local(phaseAccepted, 300*time.Millisecond), actWait, 700 * time.Millisecond},
		{"delay passed", task("", ecsv1alpha1.DesiredRunning), local(phaseAccepted, 2*time.Second), actStart, 0},
		{"reported running, cache behind", task("", ecsv1alpha1.DesiredRunning), local(phaseRunning, 0), actNone, 0},
		{"running", task(ecsv1alpha1.TaskRunning, ecsv1alpha1.DesiredRunning), local(phaseRunning, 0), actNone, 0},
		{"running before a restart", task(ecsv1alpha1.TaskRunning, ecsv1alpha1.DesiredRunning), nil, actAdopt, 0},
		{"stop requested", task(ecsv1alpha1.TaskRunning, ecsv1alpha1.DesiredStopped), local(phaseRunning, 0), actStop, 0},
		{"stop requested before a restart", task(ecsv1alpha1.TaskRunning, ecsv1alpha1.DesiredStopped), nil, actStop, 0},
		{"stopped before start", task("", ecsv1alpha1.DesiredStopped), nil, actStop, 0},
		{"stop requested while waiting", task("", ecsv1alpha1.DesiredStopped), local(phaseAccepted, 0), actStop, 0},
		{"reported stopped, cache behind", task(ecsv1alpha1.TaskRunning, ecsv1alpha1.DesiredStopped), local(phaseStopped, 0), actNone, 0},
		{"failed, cache behind", task("", ecsv1alpha1.DesiredRunning), local(phaseStopped, 0), actNone, 0},
		{"stopped", task(ecsv1alpha1.TaskStopped, ecsv1alpha1.DesiredStopped), local(phaseStopped, 0), actForget, 0},
		{"stopped by the manager while running here", task(ecsv1alpha1.TaskStopped, ecsv1alpha1.DesiredStopped), local(phaseRunning, 0), actForget, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gotAct, gotWait := nextStep(tc.task, tc.local, now, delay)
			if gotAct != tc.wantAct || gotWait != tc.wantWait {
				t.Errorf("nextStep = (%v, %v), want (%v, %v)", gotAct, gotWait, tc.wantAct, tc.wantWait)
			}
		})
	}
}

func TestTaskResources(t *testing.T) {
	td := func() *testobj.TaskDefinitionBuilder {
		return testobj.TaskDefinition("ns", "td").
			Container("a", "a:1"). // 256 cpu, 128 MiB
			Container("b", "b:1").Last(func(c *ecsv1alpha1.ContainerDefinition) {
			c.Cpu, c.Memory, c.MemoryReservation = 100, nil, ptr.To[int32](64)
		})
	}
	tests := []struct {
		name       string
		spec       *ecsv1alpha1.TaskDefinitionSpec
		overrides  *ecsv1alpha1.TaskOverrides
		wantCPU    int64
		wantMemory int64
	}{
		{"container sums, memoryReservation without memory", &td().Obj().Spec, nil, 356, 192},
		{"task level", func() *ecsv1alpha1.TaskDefinitionSpec {
			s := td().Obj().Spec
			s.Cpu, s.Memory = ptr.To[int32](1024), ptr.To[int32](2048)
			return &s
		}(), nil, 1024, 2048},
		{"container overrides", &td().Obj().Spec, &ecsv1alpha1.TaskOverrides{ContainerOverrides: []ecsv1alpha1.ContainerOverride{
			{Name: "a", Cpu: ptr.To[int32](512), Memory: ptr.To[int32](256)},
		}}, 612, 320},
		{"task overrides", &td().Obj().Spec, &ecsv1alpha1.TaskOverrides{Cpu: ptr.To[int32](2048), Memory: ptr.To[int32](512)}, 2048, 512},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cpu, memory := taskResources(tc.spec, tc.overrides)
			if cpu != tc.wantCPU || memory != tc.wantMemory {
				t.Errorf("taskResources = (%d, %d), want (%d, %d)", cpu, memory, tc.wantCPU, tc.wantMemory)
			}
		})
	}
}

func TestPortTable(t *testing.T) {
	task := func(n string) types.NamespacedName { return types.NamespacedName{Namespace: "ns", Name: n} }
	dynamic := testobj.TaskDefinition("ns", "d").Container("app", "app:1").Port(80, 0).Port(81, 0).Obj()
	static := testobj.TaskDefinition("ns", "s").Container("app", "app:1").Port(80, 8080).Obj()
	reserved := testobj.TaskDefinition("ns", "r").Container("app", "app:1").Port(22, 22).Obj()
	host := testobj.TaskDefinition("ns", "h").Container("app", "app:1").Port(9000, 9000).Network(ecsv1alpha1.NetworkModeHost).Obj()

	pt := newPortTable()
	seen := map[int32]bool{}
	for i := range 3 {
		got, err := pt.allocate(task(string(rune('a'+i))), &dynamic.Spec)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range got {
			if b.static || b.binding.HostPort < dynamicPortFirst || b.binding.HostPort > dynamicPortLast || seen[b.binding.HostPort] {
				t.Fatalf("dynamic binding %+v: not a fresh port of the dynamic range", b)
			}
			seen[b.binding.HostPort] = true
		}
	}
	got, err := pt.allocate(task("s1"), &static.Spec)
	if err != nil || len(got) != 1 || got[0].binding.HostPort != 8080 || !got[0].static {
		t.Fatalf("static allocation = %+v, %v", got, err)
	}
	if _, err := pt.allocate(task("s2"), &static.Spec); err == nil || !strings.Contains(err.Error(), "8080/tcp is already in use by task ns/s1") {
		t.Errorf("second static allocation: %v, want port in use", err)
	}
	if _, err := pt.allocate(task("r"), &reserved.Spec); err == nil || !strings.Contains(err.Error(), "22/tcp is reserved") {
		t.Errorf("reserved port: %v, want reserved", err)
	}
	if got, err := pt.allocate(task("h"), &host.Spec); err != nil || got[0].binding.HostPort != 9000 {
		t.Errorf("host mode = %+v, %v, want host port 9000", got, err)
	}
	pt.release(task("s1"), []plannedBinding{{binding: ecsv1alpha1.NetworkBinding{HostPort: 8080, Protocol: ecsv1alpha1.ProtocolTCP}}})
	if _, err := pt.allocate(task("s2"), &static.Spec); err != nil {
		t.Errorf("static port after release: %v", err)
	}
}

func TestPlanStart(t *testing.T) {
	cfg := &Config{FailImages: []string{"crash"}, UnhealthyImages: []string{"sick"}}
	uid := types.UID("u1")
	tests := []struct {
		name       string
		td         *ecsv1alpha1.TaskDefinition
		wantHealth ecsv1alpha1.HealthStatus
		wantFailed bool
		wantStates map[string]string
	}{
		{"no health check", testobj.TaskDefinition("ns", "a").Container("app", "web:1").Obj(),
			ecsv1alpha1.HealthUnknown, false, map[string]string{"app": "RUNNING/UNKNOWN"}},
		{"health check", testobj.TaskDefinition("ns", "a").Container("app", "web:1").HealthCheck("true").Container("side", "p:1").Obj(),
			ecsv1alpha1.HealthHealthy, false, map[string]string{"app": "RUNNING/HEALTHY", "side": "RUNNING/UNKNOWN"}},
		{"unhealthy image", testobj.TaskDefinition("ns", "a").Container("app", "sick:1").Obj(),
			ecsv1alpha1.HealthUnhealthy, false, map[string]string{"app": "RUNNING/UNHEALTHY"}},
		{"essential fails", testobj.TaskDefinition("ns", "a").Container("app", "crash:1").Container("side", "p:1").Obj(),
			ecsv1alpha1.HealthUnknown, true, map[string]string{"app": "STOPPED/UNKNOWN/1", "side": "RUNNING/UNKNOWN"}},
		{"non-essential fails", testobj.TaskDefinition("ns", "a").Container("app", "web:1").Container("side", "crash:1").
			Last(func(c *ecsv1alpha1.ContainerDefinition) { c.Essential = ptr.To(false) }).Obj(),
			ecsv1alpha1.HealthUnknown, false, map[string]string{"app": "RUNNING/UNKNOWN", "side": "STOPPED/UNKNOWN/1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := planStart(cfg, uid, &tc.td.Spec, nil)
			got := map[string]string{}
			for _, c := range p.containers {
				s := string(c.LastStatus) + "/" + string(c.HealthStatus)
				if c.ExitCode != nil {
					s += "/" + string(rune('0'+*c.ExitCode))
				}
				got[c.Name] = s
				if c.RuntimeID != "hollow://u1/"+c.Name {
					t.Errorf("runtimeId of %s = %q", c.Name, c.RuntimeID)
				}
			}
			if diff := cmp.Diff(tc.wantStates, got); diff != "" {
				t.Errorf("containers (-want +got):\n%s", diff)
			}
			if p.health != tc.wantHealth || p.failed != tc.wantFailed {
				t.Errorf("health, failed = %s, %v, want %s, %v", p.health, p.failed, tc.wantHealth, tc.wantFailed)
			}
		})
	}
}

func TestStoppedStatusKeepsTransitionTimes(t *testing.T) {
	earlier := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	now := metav1.NewTime(earlier.Add(time.Hour))
	task := &ecsv1alpha1.Task{Status: ecsv1alpha1.TaskStatus{Conditions: []metav1.Condition{
		{Type: ecsv1alpha1.TaskConditionRunning, Status: metav1.ConditionFalse, LastTransitionTime: earlier},
		{Type: ecsv1alpha1.TaskConditionStopped, Status: metav1.ConditionFalse, LastTransitionTime: earlier},
	}}}
	st := stoppedStatus(task, stopOutcome{code: ecsv1alpha1.StopUserInitiated, at: now})
	got := map[string]metav1.Time{}
	for _, c := range st.Conditions {
		got[*c.Type] = *c.LastTransitionTime
	}
	want := map[string]metav1.Time{ecsv1alpha1.TaskConditionRunning: earlier, ecsv1alpha1.TaskConditionStopped: now}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("lastTransitionTime (-want +got):\n%s", diff)
	}
}
