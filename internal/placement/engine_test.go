package placement

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// instanceBuilder makes test instances: ACTIVE, connected, in the default cluster,
// with 4096 cpu units and 8192 MiB unless told otherwise.
type instanceBuilder struct{ Instance }

func makeInstance(name string) *instanceBuilder {
	return &instanceBuilder{Instance{
		Name:       name,
		Cluster:    ecsv1alpha1.DefaultClusterName,
		Status:     ecsv1alpha1.InstanceActive,
		Connected:  true,
		Attributes: map[string]string{},
		CPU:        4096,
		Memory:     8192,
	}}
}

func (b *instanceBuilder) zone(z string) *instanceBuilder {
	return b.attr(ecsv1alpha1.AttributeAvailabilityZone, z)
}
func (b *instanceBuilder) attr(name, value string) *instanceBuilder {
	b.Attributes[name] = value
	return b
}
func (b *instanceBuilder) resources(cpu, memory int64) *instanceBuilder {
	b.CPU, b.Memory = cpu, memory
	return b
}
func (b *instanceBuilder) status(s ecsv1alpha1.InstanceStatusValue) *instanceBuilder {
	b.Status = s
	return b
}
func (b *instanceBuilder) disconnected() *instanceBuilder {
	b.Connected = false
	return b
}
func (b *instanceBuilder) cluster(c string) *instanceBuilder {
	b.Cluster = c
	return b
}
func (b *instanceBuilder) reserveTCP(ports ...int32) *instanceBuilder {
	b.ReservedTCP = append(b.ReservedTCP, ports...)
	return b
}
func (b *instanceBuilder) reserveUDP(ports ...int32) *instanceBuilder {
	b.ReservedUDP = append(b.ReservedUDP, ports...)
	return b
}
func (b *instanceBuilder) obj() Instance { return b.Instance }

// requestBuilder makes test requests: 256 cpu units and 512 MiB unless told otherwise.
type requestBuilder struct{ Request }

func makeRequest() *requestBuilder {
	return &requestBuilder{Request{CPU: 256, Memory: 512}}
}

func (b *requestBuilder) key(k string) *requestBuilder {
	b.Key = k
	return b
}
func (b *requestBuilder) group(g string) *requestBuilder {
	b.Group = g
	return b
}
func (b *requestBuilder) resources(cpu, memory int64) *requestBuilder {
	b.CPU, b.Memory = cpu, memory
	return b
}
func (b *requestBuilder) tcp(ports ...int32) *requestBuilder {
	b.TCPPorts = append(b.TCPPorts, ports...)
	return b
}
func (b *requestBuilder) udp(ports ...int32) *requestBuilder {
	b.UDPPorts = append(b.UDPPorts, ports...)
	return b
}
func (b *requestBuilder) distinctInstance() *requestBuilder {
	b.Constraints = append(b.Constraints, Constraint{Type: ecsv1alpha1.PlacementConstraintDistinctInstance})
	return b
}

// memberOf panics on a malformed expression: test tables are built before t exists.
func (b *requestBuilder) memberOf(expression string) *requestBuilder {
	x, err := ParseExpression(expression)
	if err != nil {
		panic(err)
	}
	b.Constraints = append(b.Constraints, Constraint{Type: ecsv1alpha1.PlacementConstraintMemberOf, Expression: x})
	return b
}
func (b *requestBuilder) strategy(typ ecsv1alpha1.PlacementStrategyType, field string) *requestBuilder {
	b.Strategies = append(b.Strategies, ecsv1alpha1.PlacementStrategy{Type: typ, Field: field})
	return b
}
func (b *requestBuilder) binpack(field string) *requestBuilder {
	return b.strategy(ecsv1alpha1.PlacementStrategyBinpack, field)
}
func (b *requestBuilder) spread(field string) *requestBuilder {
	return b.strategy(ecsv1alpha1.PlacementStrategySpread, field)
}
func (b *requestBuilder) obj() Request { return b.Request }

// assumption is a task already on an instance when a case starts.
type assumption struct {
	key, instance string
	req           Request
}

func newTestEngine(instances []Instance, assumed []assumption) *Engine {
	e := NewEngine(WithSeed(1))
	for _, inst := range instances {
		e.UpsertInstance(inst)
	}
	for _, a := range assumed {
		e.Assume(a.key, a.instance, a.req)
	}
	return e
}

// placeCase places n copies of req (keys t0, t1, ...) and expects the instances in
// want, then, when wantErr is set, one more placement failing with it.
type placeCase struct {
	name      string
	instances []Instance
	assumed   []assumption
	req       Request
	want      []string
	wantErr   string
}

func runPlaceCases(t *testing.T, testCases []placeCase) {
	t.Helper()
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEngine(tc.instances, tc.assumed)
			n := len(tc.want)
			if tc.wantErr != "" {
				n++
			}
			var got []string
			var gotErr string
			for i := range n {
				req := tc.req
				req.Key = fmt.Sprintf("t%d", i)
				d, err := e.Place(req)
				if err != nil {
					gotErr = err.Error()
					break
				}
				got = append(got, d.Instance)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("placements (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantErr, gotErr); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPlaceFit(t *testing.T) {
	runPlaceCases(t, []placeCase{
		{
			name:      "cpu",
			instances: []Instance{makeInstance("i1").resources(256, 8192).obj(), makeInstance("i2").obj()},
			req:       makeRequest().resources(512, 512).obj(),
			want:      []string{"i2"},
		},
		{
			name:      "memory",
			instances: []Instance{makeInstance("i1").resources(4096, 256).obj(), makeInstance("i2").obj()},
			req:       makeRequest().resources(256, 512).obj(),
			want:      []string{"i2"},
		},
		{
			name:      "exact fit, then full",
			instances: []Instance{makeInstance("i1").resources(512, 1024).obj()},
			req:       makeRequest().resources(256, 512).obj(),
			want:      []string{"i1", "i1"},
			wantErr:   `no container instance in cluster "default" can run the task: 1 instance: insufficient cpu`,
		},
		{
			name:      "assumed tasks use capacity",
			instances: []Instance{makeInstance("i1").obj(), makeInstance("i2").obj()},
			assumed:   []assumption{{key: "old", instance: "i1", req: makeRequest().resources(4000, 512).obj()}},
			req:       makeRequest().resources(256, 512).obj(),
			want:      []string{"i2"},
		},
		{
			name:      "a task without cpu fits an instance whose cpu is taken",
			instances: []Instance{makeInstance("i1").obj()},
			assumed:   []assumption{{key: "old", instance: "i1", req: makeRequest().resources(4096, 512).obj()}},
			req:       makeRequest().resources(0, 512).obj(),
			want:      []string{"i1"},
		},
		{
			name:      "port reserved by the instance",
			instances: []Instance{makeInstance("i1").reserveTCP(22, 80).obj(), makeInstance("i2").obj()},
			req:       makeRequest().tcp(80).obj(),
			want:      []string{"i2"},
		},
		{
			name:      "port bound by an assumed task",
			instances: []Instance{makeInstance("i1").obj(), makeInstance("i2").obj()},
			assumed:   []assumption{{key: "old", instance: "i1", req: makeRequest().tcp(443, 80).obj()}},
			req:       makeRequest().tcp(80).obj(),
			want:      []string{"i2"},
		},
		{
			name:      "each task takes its static port",
			instances: []Instance{makeInstance("i1").obj(), makeInstance("i2").obj()},
			req:       makeRequest().tcp(80).binpack("memory").obj(),
			want:      []string{"i1", "i2"},
			wantErr:   `no container instance in cluster "default" can run the task: 2 instances: port 80/tcp in use`,
		},
		{
			name:      "udp ports do not collide with tcp ports",
			instances: []Instance{makeInstance("i1").reserveTCP(53).obj()},
			assumed:   []assumption{{key: "old", instance: "i1", req: makeRequest().tcp(5353).obj()}},
			req:       makeRequest().udp(53, 5353).obj(),
			want:      []string{"i1"},
		},
		{
			name:      "tcp ports do not collide with udp ports",
			instances: []Instance{makeInstance("i1").reserveUDP(80).obj()},
			assumed:   []assumption{{key: "old", instance: "i1", req: makeRequest().udp(443).obj()}},
			req:       makeRequest().tcp(80, 443).obj(),
			want:      []string{"i1"},
		},
		{
			name:      "udp port in use",
			instances: []Instance{makeInstance("i1").reserveUDP(53).obj()},
			req:       makeRequest().tcp(53).udp(53).obj(),
			wantErr:   `no container instance in cluster "default" can run the task: 1 instance: port 53/udp in use`,
		},
	})
}

func TestPlaceStrategies(t *testing.T) {
	threeZones := []Instance{
		makeInstance("a1").zone("a").obj(),
		makeInstance("a2").zone("a").obj(),
		makeInstance("a3").zone("a").obj(),
		makeInstance("b1").zone("b").obj(),
		makeInstance("c1").zone("c").obj(),
		makeInstance("c2").zone("c").obj(),
	}
	runPlaceCases(t, []placeCase{
		{
			name: "binpack memory fills the fullest instance first",
			instances: []Instance{
				makeInstance("i1").resources(8192, 4096).obj(),
				makeInstance("i2").resources(8192, 2048).obj(),
				makeInstance("i3").resources(8192, 8192).obj(),
			},
			req:  makeRequest().resources(256, 1024).binpack("memory").obj(),
			want: []string{"i2", "i2", "i1", "i1", "i1", "i1", "i3"},
		},
		{
			name: "binpack cpu",
			instances: []Instance{
				makeInstance("i1").resources(1024, 8192).obj(),
				makeInstance("i2").resources(512, 8192).obj(),
			},
			req:  makeRequest().resources(512, 256).binpack("cpu").obj(),
			want: []string{"i2", "i1", "i1"},
		},
		{
			name:      "spread instanceId takes turns",
			instances: []Instance{makeInstance("i1").obj(), makeInstance("i2").obj(), makeInstance("i3").obj()},
			req:       makeRequest().group("service:web").spread("instanceId").obj(),
			want:      []string{"i1", "i2", "i3", "i1", "i2", "i3"},
		},
		{
			name:      "spread host is spread instanceId",
			instances: []Instance{makeInstance("i1").obj(), makeInstance("i2").obj()},
			req:       makeRequest().group("service:web").spread("host").obj(),
			want:      []string{"i1", "i2", "i1"},
		},
		{
			name:      "spread counts only the task's group",
			instances: []Instance{makeInstance("i1").obj(), makeInstance("i2").obj(), makeInstance("i3").obj()},
			assumed: []assumption{
				{key: "other-1", instance: "i1", req: makeRequest().group("service:other").obj()},
				{key: "other-2", instance: "i1", req: makeRequest().group("service:other").obj()},
				{key: "web-1", instance: "i2", req: makeRequest().group("service:web").obj()},
			},
			req:  makeRequest().group("service:web").spread("instanceId").obj(),
			want: []string{"i1", "i3", "i1"},
		},
		{
			name:      "spread without a group counts every task",
			instances: []Instance{makeInstance("i1").obj(), makeInstance("i2").obj(), makeInstance("i3").obj()},
			assumed: []assumption{
				{key: "other-1", instance: "i1", req: makeRequest().group("service:other").obj()},
				{key: "loose", instance: "i2", req: makeRequest().obj()},
			},
			req:  makeRequest().spread("instanceId").obj(),
			want: []string{"i3", "i1", "i2", "i3"},
		},
		{
			name:      "spread over three uneven zones, then over instances",
			instances: threeZones,
			req:       makeRequest().group("service:web").spread("attribute:ecs.availability-zone").spread("instanceId").obj(),
			// Zones take turns whatever their size; within a zone, the emptiest
			// instance.
			want: []string{"a1", "b1", "c1", "a2", "c2", "b1", "a3", "c1", "b1"},
		},
		{
			name:      "default strategies spread over zones, then instances",
			instances: threeZones,
			req:       makeRequest().group("service:web").obj(),
			want:      []string{"a1", "b1", "c1", "a2", "c2", "b1", "a3", "c1", "b1"},
		},
		{
			name: "spread by attribute counts tasks on instances that are not eligible",
			instances: []Instance{
				makeInstance("a1").zone("a").status(ecsv1alpha1.InstanceDraining).obj(),
				makeInstance("a2").zone("a").obj(),
				makeInstance("b1").zone("b").obj(),
			},
			assumed: []assumption{
				{key: "web-1", instance: "a1", req: makeRequest().group("service:web").obj()},
				{key: "web-2", instance: "a1", req: makeRequest().group("service:web").obj()},
			},
			req:  makeRequest().group("service:web").spread("attribute:ecs.availability-zone").obj(),
			want: []string{"b1", "b1", "a2", "b1", "a2"},
		},
		{
			name: "instances without the attribute share one value",
			instances: []Instance{
				makeInstance("i1").attr("rack", "r1").obj(),
				makeInstance("i2").obj(),
				makeInstance("i3").obj(),
			},
			req:  makeRequest().group("service:web").spread("attribute:rack").obj(),
			want: []string{"i1", "i2", "i1", "i2"},
		},
		{
			name: "binpack then spread: spread breaks binpack's ties",
			instances: []Instance{
				makeInstance("i1").resources(4096, 2048).obj(),
				makeInstance("i2").resources(4096, 2048).obj(),
				makeInstance("i3").resources(4096, 4096).obj(),
			},
			assumed: []assumption{
				{key: "web-1", instance: "i1", req: makeRequest().group("service:web").obj()},
				{key: "other-1", instance: "i2", req: makeRequest().group("service:other").obj()},
			},
			req: makeRequest().group("service:web").binpack("memory").spread("instanceId").obj(),
			// i1 and i2 have the same memory left; i2 has no web task yet. After that,
			// binpack alone decides.
			want: []string{"i2", "i2", "i2", "i1", "i1", "i1", "i3"},
		},
		{
			name: "spread then binpack: binpack breaks spread's ties",
			instances: []Instance{
				makeInstance("i1").resources(4096, 2048).obj(),
				makeInstance("i2").resources(4096, 4096).obj(),
				makeInstance("i3").resources(4096, 1024).obj(),
			},
			req:  makeRequest().group("service:web").spread("instanceId").binpack("memory").obj(),
			want: []string{"i3", "i1", "i2", "i3", "i1", "i2"},
		},
	})
}

// TestSpreadFollowsInstanceChanges checks that spreading over an attribute sees
// instances that register, and attributes that change, after it first ran.
func TestSpreadFollowsInstanceChanges(t *testing.T) {
	e := newTestEngine([]Instance{makeInstance("a1").zone("a").obj(), makeInstance("b1").zone("b").obj()}, nil)
	req := makeRequest().group("service:web").spread("attribute:ecs.availability-zone")
	var got []string
	place := func() {
		r := req.obj()
		r.Key = fmt.Sprintf("t%d", len(got))
		d, err := e.Place(r)
		if err != nil {
			t.Fatalf("Place: %v", err)
		}
		got = append(got, d.Instance)
	}
	place()
	e.UpsertInstance(makeInstance("c1").zone("c").obj())
	e.UpsertInstance(makeInstance("b1").zone("a").obj())
	place()
	place()
	// b1 moved to zone a, which already has a task: the new zone c goes first.
	if diff := cmp.Diff([]string{"a1", "c1", "a1"}, got); diff != "" {
		t.Errorf("placements (-want +got):\n%s", diff)
	}
}

func TestPlaceRandom(t *testing.T) {
	var instances []Instance
	for i := range 5 {
		instances = append(instances, makeInstance(fmt.Sprintf("i%d", i)).obj())
	}
	place := func(seed uint64) []string {
		e := NewEngine(WithSeed(seed))
		for _, inst := range instances {
			e.UpsertInstance(inst)
		}
		var got []string
		for i := range 30 {
			d, err := e.Place(makeRequest().key(fmt.Sprintf("t%d", i)).resources(1, 1).strategy(ecsv1alpha1.PlacementStrategyRandom, "").obj())
			if err != nil {
				t.Fatalf("Place: %v", err)
			}
			got = append(got, d.Instance)
		}
		return got
	}
	first := place(42)
	if diff := cmp.Diff(first, place(42)); diff != "" {
		t.Errorf("the same seed placed differently (-first +second):\n%s", diff)
	}
	used := map[string]bool{}
	for _, name := range first {
		used[name] = true
	}
	if len(used) < 3 {
		t.Errorf("30 random placements used only %v of 5 instances", used)
	}
}

func TestPlaceConstraints(t *testing.T) {
	runPlaceCases(t, []placeCase{
		{
			name:      "distinctInstance puts each task of the group on its own instance",
			instances: []Instance{makeInstance("i1").obj(), makeInstance("i2").obj(), makeInstance("i3").obj()},
			req:       makeRequest().group("service:web").distinctInstance().binpack("memory").obj(),
			want:      []string{"i1", "i2", "i3"},
			wantErr:   `no container instance in cluster "default" can run the task: 3 instances: distinctInstance`,
		},
		{
			name:      "distinctInstance ignores other groups",
			instances: []Instance{makeInstance("i1").obj(), makeInstance("i2").obj()},
			assumed:   []assumption{{key: "other", instance: "i1", req: makeRequest().group("service:other").obj()}},
			req:       makeRequest().group("service:web").distinctInstance().binpack("memory").obj(),
			want:      []string{"i1", "i2"},
		},
		{
			name:      "distinctInstance without a group constrains nothing",
			instances: []Instance{makeInstance("i1").obj(), makeInstance("i2").obj()},
			req:       makeRequest().distinctInstance().binpack("memory").obj(),
			want:      []string{"i1", "i1", "i1"},
		},
		{
			name: "memberOf an attribute value",
			instances: []Instance{
				makeInstance("i1").attr("stack", "dev").obj(),
				makeInstance("i2").attr("stack", "prod").obj(),
				makeInstance("i3").obj(),
			},
			req:     makeRequest().memberOf("attribute:stack == prod").obj(),
			want:    []string{"i2"},
			wantErr: "",
		},
		{
			name: "memberOf zones and instance types",
			instances: []Instance{
				makeInstance("i1").zone("zone-a").attr("ecs.instance-type", "m5.large").obj(),
				makeInstance("i2").zone("zone-c").attr("ecs.instance-type", "t2.micro").obj(),
				makeInstance("i3").zone("zone-b").attr("ecs.instance-type", "t2.small").obj(),
			},
			req:  makeRequest().memberOf("attribute:ecs.availability-zone in [zone-a, zone-b] and attribute:ecs.instance-type =~ t2.*").obj(),
			want: []string{"i3", "i3"},
		},
		{
			name:      "memberOf task:group places next to another service",
			instances: []Instance{makeInstance("i1").obj(), makeInstance("i2").obj(), makeInstance("i3").obj()},
			assumed:   []assumption{{key: "cache", instance: "i2", req: makeRequest().group("service:cache").obj()}},
			req:       makeRequest().group("service:web").memberOf("task:group == service:cache").obj(),
			want:      []string{"i2", "i2"},
		},
		{
			name:      "memberOf instanceId",
			instances: []Instance{makeInstance("i1").obj(), makeInstance("i2").obj(), makeInstance("i3").obj()},
			req:       makeRequest().memberOf("instanceId != i1 and not ec2InstanceId == i2").obj(),
			want:      []string{"i3"},
		},
		{
			name: "memberOf with nothing matching",
			instances: []Instance{
				makeInstance("i1").attr("stack", "dev").obj(),
				makeInstance("i2").obj(),
			},
			req:     makeRequest().memberOf("attribute:stack == prod").obj(),
			wantErr: `no container instance in cluster "default" can run the task: 2 instances: memberOf constraint (attribute:stack == prod)`,
		},
		{
			name:      "every constraint must hold",
			instances: []Instance{makeInstance("i1").zone("a").obj(), makeInstance("i2").zone("b").obj(), makeInstance("i3").zone("a").obj()},
			req:       makeRequest().group("service:web").distinctInstance().memberOf("attribute:ecs.availability-zone == a").obj(),
			want:      []string{"i1", "i3"},
			wantErr:   `no container instance in cluster "default" can run the task: 2 instances: distinctInstance; 1: memberOf constraint (attribute:ecs.availability-zone == a)`,
		},
	})
}

func TestPlaceEligibility(t *testing.T) {
	// Every instance but "z-ok" is bigger and sorts first, so only eligibility keeps
	// the engine from choosing it.
	instances := []Instance{
		makeInstance("a-draining").status(ecsv1alpha1.InstanceDraining).obj(),
		makeInstance("b-inactive").status(ecsv1alpha1.InstanceInactive).obj(),
		makeInstance("c-registering").status(ecsv1alpha1.InstanceRegistering).obj(),
		makeInstance("d-no-status").status("").obj(),
		makeInstance("e-disconnected").disconnected().obj(),
		makeInstance("f-other-cluster").cluster("batch").obj(),
		makeInstance("z-ok").resources(512, 1024).obj(),
	}
	for _, strategies := range [][]ecsv1alpha1.PlacementStrategy{
		nil,
		{{Type: ecsv1alpha1.PlacementStrategyBinpack, Field: "memory"}},
		{{Type: ecsv1alpha1.PlacementStrategySpread, Field: "instanceId"}},
		{{Type: ecsv1alpha1.PlacementStrategyRandom}},
	} {
		t.Run(fmt.Sprint(strategies), func(t *testing.T) {
			req := makeRequest().obj()
			req.Strategies = strategies
			runPlaceCases(t, []placeCase{{
				instances: instances,
				req:       req,
				want:      []string{"z-ok", "z-ok"},
				wantErr:   `no container instance in cluster "default" can run the task: 2 instances: REGISTERING; 1: DRAINING; 1: INACTIVE; 1: insufficient cpu; 1: not connected`,
			}})
		})
	}
}

func TestUnplaceableError(t *testing.T) {
	instances := []Instance{
		// Reasons apply in order: a disconnected DRAINING instance is disconnected, a
		// DRAINING instance without memory is DRAINING.
		makeInstance("disconnected").disconnected().status(ecsv1alpha1.InstanceDraining).obj(),
		makeInstance("draining").status(ecsv1alpha1.InstanceDraining).resources(0, 0).obj(),
		makeInstance("inactive").status(ecsv1alpha1.InstanceInactive).obj(),
		makeInstance("small-cpu").resources(100, 100).obj(),
		makeInstance("small-mem-1").resources(4096, 100).obj(),
		makeInstance("small-mem-2").resources(4096, 100).obj(),
		makeInstance("small-mem-3").resources(4096, 100).obj(),
		makeInstance("port-1").reserveTCP(80).obj(),
		makeInstance("port-2").reserveTCP(80).obj(),
		makeInstance("distinct").attr("stack", "prod").obj(),
		makeInstance("dev").attr("stack", "dev").obj(),
		makeInstance("other-cluster").cluster("batch").resources(0, 0).obj(),
	}
	assumed := []assumption{{key: "web-0", instance: "distinct", req: makeRequest().group("service:web").obj()}}
	e := newTestEngine(instances, assumed)
	_, err := e.Place(makeRequest().key("web-1").group("service:web").tcp(80).distinctInstance().memberOf("attribute:stack == prod").obj())

	var got *UnplaceableError
	if !errors.As(err, &got) {
		t.Fatalf("Place error %v is %T, want *UnplaceableError", err, err)
	}
	want := &UnplaceableError{
		Cluster:   "default",
		Instances: 11,
		Reasons: []ReasonCount{
			{Kind: ReasonInsufficientMemory, Reason: "insufficient memory", Count: 3},
			{Kind: ReasonPortInUse, Reason: "port 80/tcp in use", Count: 2},
			{Kind: ReasonNotActive, Reason: "DRAINING", Count: 1},
			{Kind: ReasonNotActive, Reason: "INACTIVE", Count: 1},
			{Kind: ReasonDistinctInstance, Reason: "distinctInstance", Count: 1},
			{Kind: ReasonInsufficientCPU, Reason: "insufficient cpu", Count: 1},
			{Kind: ReasonMemberOf, Reason: "memberOf constraint (attribute:stack == prod)", Count: 1},
			{Kind: ReasonNotConnected, Reason: "not connected", Count: 1},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("UnplaceableError (-want +got):\n%s", diff)
	}
	wantMsg := `no container instance in cluster "default" can run the task: 3 instances: insufficient memory; 2: port 80/tcp in use; 1: DRAINING; 1: INACTIVE; 1: distinctInstance; 1: insufficient cpu; 1: memberOf constraint (attribute:stack == prod); 1: not connected`
	if diff := cmp.Diff(wantMsg, err.Error()); diff != "" {
		t.Errorf("message (-want +got):\n%s", diff)
	}
	if n := e.TasksOn("distinct"); n != 1 {
		t.Errorf("a failed placement left %d tasks on an instance, want 1", n)
	}
}

func TestUnplaceableErrorEmptyCluster(t *testing.T) {
	e := newTestEngine([]Instance{makeInstance("i1").cluster("batch").obj()}, nil)
	_, err := e.Place(makeRequest().key("t").obj())
	want := &UnplaceableError{Cluster: "default"}
	var got *UnplaceableError
	if !errors.As(err, &got) {
		t.Fatalf("Place error %v is %T, want *UnplaceableError", err, err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("UnplaceableError (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(`cluster "default" has no registered container instances`, err.Error()); diff != "" {
		t.Errorf("message (-want +got):\n%s", diff)
	}
}

func TestPlaceInvalidRequest(t *testing.T) {
	e := newTestEngine([]Instance{makeInstance("i1").obj()}, nil)
	testCases := []struct {
		name    string
		req     Request
		wantErr string
	}{
		{name: "no key", req: makeRequest().obj(), wantErr: "placement request has no task key"},
		{name: "bad strategy", req: makeRequest().key("t").binpack("disk").obj(), wantErr: `placementStrategy[0].field: binpack needs field cpu or memory, not "disk"`},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.Place(tc.req)
			if err == nil {
				t.Fatalf("Place succeeded, want %q", tc.wantErr)
			}
			if diff := cmp.Diff(tc.wantErr, err.Error()); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}
	if n := e.TasksOn("i1"); n != 0 {
		t.Errorf("invalid requests assumed %d tasks", n)
	}
}

// usage is what the read helpers report for an instance.
type usage struct {
	CPU, Memory int64
	Known       bool
	Tasks       int
}

func usageOf(e *Engine, names ...string) map[string]usage {
	out := map[string]usage{}
	for _, name := range names {
		cpu, memory, ok := e.Remaining(name)
		out[name] = usage{CPU: cpu, Memory: memory, Known: ok, Tasks: e.TasksOn(name)}
	}
	return out
}

func TestAssumeForget(t *testing.T) {
	web := makeRequest().group("service:web").resources(1000, 2000).tcp(80).obj()
	testCases := []struct {
		name string
		ops  func(t *testing.T, e *Engine)
		want map[string]usage
	}{
		{
			name: "assuming twice counts once",
			ops: func(t *testing.T, e *Engine) {
				e.Assume("t1", "i1", web)
				e.Assume("t1", "i1", web)
			},
			want: map[string]usage{"i1": {CPU: 3096, Memory: 6192, Known: true, Tasks: 1}, "i2": {CPU: 4096, Memory: 8192, Known: true}},
		},
		{
			name: "assuming on another instance moves the task",
			ops: func(t *testing.T, e *Engine) {
				e.Assume("t1", "i1", web)
				e.Assume("t1", "i2", web)
			},
			want: map[string]usage{"i1": {CPU: 4096, Memory: 8192, Known: true}, "i2": {CPU: 3096, Memory: 6192, Known: true, Tasks: 1}},
		},
		{
			name: "forgetting twice, and forgetting the unknown, are harmless",
			ops: func(t *testing.T, e *Engine) {
				e.Assume("t1", "i1", web)
				e.Assume("t2", "i1", web)
				e.Forget("t1")
				e.Forget("t1")
				e.Forget("never-assumed")
			},
			want: map[string]usage{"i1": {CPU: 3096, Memory: 6192, Known: true, Tasks: 1}, "i2": {CPU: 4096, Memory: 8192, Known: true}},
		},
		{
			name: "a task assumed before its instance registers counts once it does",
			ops: func(t *testing.T, e *Engine) {
				e.Assume("t1", "i3", web)
				if _, _, ok := e.Remaining("i3"); ok {
					t.Error("Remaining knows an instance that never registered")
				}
				e.UpsertInstance(makeInstance("i3").obj())
			},
			want: map[string]usage{"i3": {CPU: 3096, Memory: 6192, Known: true, Tasks: 1}},
		},
		{
			name: "tasks survive the instance leaving and coming back",
			ops: func(t *testing.T, e *Engine) {
				e.Assume("t1", "i1", web)
				e.RemoveInstance("i1")
				e.RemoveInstance("i1")
				if got := usageOf(e, "i1")["i1"]; got != (usage{Tasks: 1}) {
					t.Errorf("removed instance: %+v, want unknown with 1 task", got)
				}
				e.UpsertInstance(makeInstance("i1").obj())
			},
			want: map[string]usage{"i1": {CPU: 3096, Memory: 6192, Known: true, Tasks: 1}},
		},
		{
			name: "an update of the instance keeps its tasks",
			ops: func(t *testing.T, e *Engine) {
				e.Assume("t1", "i1", web)
				e.UpsertInstance(makeInstance("i1").resources(8192, 16384).status(ecsv1alpha1.InstanceDraining).obj())
			},
			want: map[string]usage{"i1": {CPU: 7192, Memory: 14384, Known: true, Tasks: 1}},
		},
		{
			name: "placing an assumed key returns its instance without counting again",
			ops: func(t *testing.T, e *Engine) {
				e.Assume("t1", "i2", web)
				req := web
				req.Key = "t1"
				d, err := e.Place(req)
				if err != nil || d.Instance != "i2" {
					t.Errorf("Place(assumed t1) = %+v, %v; want i2", d, err)
				}
			},
			want: map[string]usage{"i1": {CPU: 4096, Memory: 8192, Known: true}, "i2": {CPU: 3096, Memory: 6192, Known: true, Tasks: 1}},
		},
		{
			name: "forgetting frees ports and the group",
			ops: func(t *testing.T, e *Engine) {
				e.RemoveInstance("i2")
				e.Assume("t1", "i1", web)
				e.Forget("t1")
				req := web
				req.Key = "t2"
				req.Constraints = []Constraint{{Type: ecsv1alpha1.PlacementConstraintDistinctInstance}}
				if _, err := e.Place(req); err != nil {
					t.Errorf("Place after Forget: %v", err)
				}
			},
			want: map[string]usage{"i1": {CPU: 3096, Memory: 6192, Known: true, Tasks: 1}},
		},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEngine([]Instance{makeInstance("i1").obj(), makeInstance("i2").obj()}, nil)
			tc.ops(t, e)
			var names []string
			for name := range tc.want {
				names = append(names, name)
			}
			if diff := cmp.Diff(tc.want, usageOf(e, names...)); diff != "" {
				t.Errorf("usage (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRemovedInstanceIsNotChosen(t *testing.T) {
	e := newTestEngine([]Instance{makeInstance("i1").obj(), makeInstance("i2").obj()}, nil)
	e.RemoveInstance("i1")
	d, err := e.Place(makeRequest().key("t").obj())
	if err != nil || d.Instance != "i2" {
		t.Errorf("Place = %+v, %v; want i2", d, err)
	}
}

func TestPlaceBatch(t *testing.T) {
	e := newTestEngine([]Instance{makeInstance("i1").resources(4096, 1024).obj(), makeInstance("i2").resources(4096, 512).obj()}, nil)
	reqs := []Request{
		makeRequest().key("t1").binpack("memory").obj(),
		makeRequest().key("t2").binpack("memory").obj(),
		makeRequest().key("bad").binpack("disk").obj(),
		makeRequest().key("t3").binpack("memory").obj(),
		makeRequest().key("t4").binpack("memory").obj(),
	}
	var got []string
	for _, r := range e.PlaceBatch(reqs) {
		if r.Err != nil {
			got = append(got, "error: "+r.Err.Error())
			continue
		}
		got = append(got, r.Instance)
	}
	want := []string{
		"i2", // binpack: the smaller instance first
		"i1", // each placement sees the ones before it
		`error: placementStrategy[0].field: binpack needs field cpu or memory, not "disk"`,
		"i1",
		`error: no container instance in cluster "default" can run the task: 2 instances: insufficient memory`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("PlaceBatch (-want +got):\n%s", diff)
	}
}

// TestPlaceConcurrent races many schedulers for capacity that fits exactly
// capacity tasks: no instance may be overcommitted, and no capacity may be lost.
func TestPlaceConcurrent(t *testing.T) {
	const (
		instances   = 10
		perInstance = 4
		capacity    = instances * perInstance
		workers     = 16
		perWorker   = 10
	)
	e := NewEngine(WithSeed(1))
	for i := range instances {
		e.UpsertInstance(makeInstance(fmt.Sprintf("i%02d", i)).zone(fmt.Sprintf("z%d", i%3)).resources(4096, perInstance*256).obj())
	}
	var (
		mu          sync.Mutex
		placed      = map[string]int{}
		unplaceable int
		wg          sync.WaitGroup
	)
	record := func(d Decision, err error) {
		mu.Lock()
		defer mu.Unlock()
		var ue *UnplaceableError
		switch {
		case err == nil:
			placed[d.Instance]++
		case errors.As(err, &ue):
			unplaceable++
		default:
			t.Errorf("Place: %v", err)
		}
	}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := makeRequest().group(fmt.Sprintf("service:s%d", w%3)).resources(1, 256)
			if w%4 == 1 {
				req.binpack("memory")
			}
			if w%2 == 0 {
				// Half the workers place in batches.
				var batch []Request
				for i := range perWorker {
					r := req.obj()
					r.Key = fmt.Sprintf("w%d-t%d", w, i)
					batch = append(batch, r)
				}
				for _, r := range e.PlaceBatch(batch) {
					record(r.Decision, r.Err)
				}
				return
			}
			for i := range perWorker {
				r := req.obj()
				r.Key = fmt.Sprintf("w%d-t%d", w, i)
				record(e.Place(r))
				// Readers run alongside the writers.
				e.Remaining("i00")
				e.TasksOn("i01")
			}
		}()
	}
	// Instance updates and tasks coming and going elsewhere run alongside: they take
	// the same lock and must change nothing in the default cluster's capacity.
	done := make(chan struct{})
	var churn sync.WaitGroup
	churn.Add(1)
	go func() {
		defer churn.Done()
		e.UpsertInstance(makeInstance("batch-1").cluster("batch").obj())
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			e.UpsertInstance(makeInstance("i00").zone("z0").resources(4096, perInstance*256).obj())
			e.Assume("batch-task", "batch-1", makeRequest().group("service:s0").obj())
			if i%2 == 0 {
				e.Forget("batch-task")
			}
		}
	}()
	wg.Wait()
	close(done)
	churn.Wait()

	total := 0
	for _, n := range placed {
		total += n
	}
	if total != capacity || unplaceable != workers*perWorker-capacity {
		t.Errorf("placed %d and could not place %d, want %d and %d", total, unplaceable, capacity, workers*perWorker-capacity)
	}
	for i := range instances {
		name := fmt.Sprintf("i%02d", i)
		_, memory, _ := e.Remaining(name)
		if got := (usage{Memory: memory, Tasks: e.TasksOn(name)}); got != (usage{Memory: 0, Tasks: perInstance}) || placed[name] != perInstance {
			t.Errorf("%s: %+v and %d placements, want no memory left and %d tasks", name, got, placed[name], perInstance)
		}
	}
}

// benchInstances registers n instances over 3 zones, each with room for 32 of the
// benchmark's tasks.
func benchEngine(n int) *Engine {
	e := NewEngine(WithSeed(1))
	for i := range n {
		e.UpsertInstance(makeInstance(fmt.Sprintf("i-%04d", i)).zone(fmt.Sprintf("zone-%d", i%3)).resources(8192, 16384).reserveTCP(22).obj())
	}
	return e
}

// benchRequests makes n tasks of 50 services, a tenth of them with a static port.
func benchRequests(n int, strategies ...ecsv1alpha1.PlacementStrategy) []Request {
	reqs := make([]Request, n)
	for i := range reqs {
		b := makeRequest().key(fmt.Sprintf("ns/t-%d", i)).group(fmt.Sprintf("service:svc-%d", i%50)).resources(256, 512)
		if i%10 == 0 {
			b.tcp(8000 + int32(i%50))
		}
		b.Strategies = strategies
		reqs[i] = b.obj()
	}
	return reqs
}

const benchInstances, benchTasks = 1000, 10000

func benchmarkPlace(b *testing.B, reqs []Request) {
	for range b.N {
		b.StopTimer()
		e := benchEngine(benchInstances)
		b.StartTimer()
		for _, r := range reqs {
			if _, err := e.Place(r); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(reqs)), "ns/task")
}

// BenchmarkPlace1000Instances places 10,000 tasks on 1,000 instances, binpacking on
// memory with spread over instances to break ties.
func BenchmarkPlace1000Instances(b *testing.B) {
	benchmarkPlace(b, benchRequests(benchTasks,
		ecsv1alpha1.PlacementStrategy{Type: ecsv1alpha1.PlacementStrategyBinpack, Field: "memory"},
		ecsv1alpha1.PlacementStrategy{Type: ecsv1alpha1.PlacementStrategySpread, Field: "instanceId"},
	))
}

// BenchmarkPlace1000InstancesDefaultStrategies is the same load with ECS's default
// zone-then-instance spread, which counts tasks per zone on every placement.
func BenchmarkPlace1000InstancesDefaultStrategies(b *testing.B) {
	benchmarkPlace(b, benchRequests(benchTasks))
}

// BenchmarkPlaceBatch1000Instances places the binpack+spread load in batches of 100.
func BenchmarkPlaceBatch1000Instances(b *testing.B) {
	reqs := benchRequests(benchTasks,
		ecsv1alpha1.PlacementStrategy{Type: ecsv1alpha1.PlacementStrategyBinpack, Field: "memory"},
		ecsv1alpha1.PlacementStrategy{Type: ecsv1alpha1.PlacementStrategySpread, Field: "instanceId"},
	)
	for range b.N {
		b.StopTimer()
		e := benchEngine(benchInstances)
		b.StartTimer()
		for i := 0; i < len(reqs); i += 100 {
			for _, r := range e.PlaceBatch(reqs[i : i+100]) {
				if r.Err != nil {
					b.Fatal(r.Err)
				}
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(reqs)), "ns/task")
}
