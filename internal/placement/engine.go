package placement

import (
	"cmp"
	"errors"
	"fmt"
	"iter"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// Instance is a container instance as placement sees it.
type Instance struct {
	// Name is the ContainerInstance's name, which memberOf expressions call instanceId.
	Name string
	// Cluster is the instance's cluster; empty means ecsv1alpha1.DefaultClusterName.
	Cluster string
	// Status and Connected decide whether the instance takes new tasks: only ACTIVE,
	// connected instances do. An empty Status counts as REGISTERING.
	Status    ecsv1alpha1.InstanceStatusValue
	Connected bool
	// Attributes are the instance's attributes, the operator's overriding the agent's.
	Attributes map[string]string
	// CPU units and Memory MiB registered by the agent, its own reservation already
	// taken off.
	CPU, Memory int64
	// ReservedTCP and ReservedUDP are host ports no task may bind.
	ReservedTCP, ReservedUDP []int32
	// GPUs are the IDs of the instance's GPUs; each is given to one task at a time.
	GPUs []string
}

// Decision is where a task was placed.
type Decision struct {
	// Instance is the chosen instance's name.
	Instance string
	// Feasible is how many instances could have run the task, for Events and metrics.
	// It is 0 when the task was already assumed and Place returned its instance.
	Feasible int
	// GPUs are the IDs of the instance's GPUs given to the task, as many as its
	// Request.GPUs, in the instance's order; the caller records them on the task.
	GPUs []string
}

// Result is the outcome of one request of PlaceBatch: a Decision, or Err (often an
// *UnplaceableError).
type Result struct {
	Decision
	Err error
}

// ReasonCount is how many instances a reason excluded.
type ReasonCount struct {
	// Kind is the reason's bounded category, for metric labels.
	Kind ReasonKind
	// Reason is what a user reads: "insufficient memory", "port 80/tcp in use",
	// "DRAINING".
	Reason string
	Count  int
}

// UnplaceableError says why no instance of the cluster can run a task. Every instance
// of the cluster is counted once, under the first reason that excludes it.
type UnplaceableError struct {
	Cluster string
	// Instances is how many instances the cluster has, in any state.
	Instances int
	// Reasons are sorted by count, largest first, then by reason.
	Reasons []ReasonCount
}

func (e *UnplaceableError) Error() string {
	if e.Instances == 0 {
		return fmt.Sprintf("cluster %q has no registered container instances", e.Cluster)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "no container instance in cluster %q can run the task: ", e.Cluster)
	for i, r := range e.Reasons {
		switch {
		case i > 0:
			fmt.Fprintf(&b, "; %d: ", r.Count)
		case r.Count == 1:
			b.WriteString("1 instance: ")
		default:
			fmt.Fprintf(&b, "%d instances: ", r.Count)
		}
		b.WriteString(r.Reason)
	}
	return b.String()
}

// ErrNotTried is the outcome of a request a caller did not place because an identical
// one before it found no room (see scheduler.PlaceNew): it waits for room as that one.
var ErrNotTried = errors.New("not tried: an identical task before it found no room")

// Engine places tasks on container instances. It holds every instance and every task
// assumed on one, and is safe for concurrent use. See the package documentation.
type Engine struct {
	mu  sync.RWMutex
	rnd *rand.Rand

	nodes    map[string]*node
	clusters map[string][]*node // registered nodes of each cluster, sorted by name
	tasks    map[string]*assumedTask
	groups   map[string]*groupState
	// slots index nodes in groupState.counts; freed slots are reused so the counts stay
	// as long as the largest number of instances ever known at once.
	freeSlots []int
	nextSlot  int

	// attributeIndexes serve spread over attributes, by attribute name.
	attributeIndexes map[string]*attributeIndex

	// Scratch space for Place, used under mu, so that a placement allocates nothing per
	// instance.
	cur, best     []int64
	spreadIndexes []*attributeIndex
}

// Option configures an Engine.
type Option func(*Engine)

// WithRand makes the random strategy draw from r, for reproducible tests. The engine
// uses r only under its lock; the caller must not use r concurrently.
func WithRand(r *rand.Rand) Option {
	return func(e *Engine) { e.rnd = r }
}

// WithSeed seeds the random strategy.
func WithSeed(seed uint64) Option {
	return WithRand(rand.New(rand.NewPCG(seed, seed)))
}

// NewEngine returns an engine with no instances and no tasks.
func NewEngine(opts ...Option) *Engine {
	e := &Engine{
		nodes:    map[string]*node{},
		clusters: map[string][]*node{},
		tasks:    map[string]*assumedTask{},
		groups:   map[string]*groupState{},

		attributeIndexes: map[string]*attributeIndex{},
	}
	for _, opt := range opts {
		opt(e)
	}
	if e.rnd == nil {
		e.rnd = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	return e
}

// node is an instance and the tasks assumed on it. A node outlives its instance while
// tasks are assumed on it: an instance that re-registers (or whose object the
// informer delivers after its tasks) finds its load already counted.
type node struct {
	// The fields every placement reads for every instance come first, so that the
	// placement loop touches one cache line per instance in the common case.
	connected           bool
	status              ecsv1alpha1.InstanceStatusValue
	cpu, memory         int64
	usedCPU, usedMemory int64
	slot                int
	tasks               int

	name       string
	registered bool
	cluster    string
	attributes map[string]string

	reservedTCP, reservedUDP []int32 // sorted
	gpus                     gpuSet
	usedTCP, usedUDP         map[int32]int  // port -> tasks binding it
	groups                   map[string]int // group -> tasks; only non-empty groups, only counts > 0
}

// node implements Target for memberOf expressions.

func (n *node) InstanceID() string { return n.name }

func (n *node) Attribute(name string) (string, bool) {
	v, ok := n.attributes[name]
	return v, ok
}

func (n *node) HasTaskGroup(group string) bool { return n.groups[group] > 0 }

func (n *node) TaskGroups() iter.Seq[string] { return maps.Keys(n.groups) }

func (n *node) portInUse(port int32, udp bool) bool {
	reserved, used := n.reservedTCP, n.usedTCP
	if udp {
		reserved, used = n.reservedUDP, n.usedUDP
	}
	if _, found := slices.BinarySearch(reserved, port); found {
		return true
	}
	return used[port] > 0
}

// groupState counts a group's tasks per node slot: the hot placement loop reads
// counts[slot] instead of hashing the group name for every instance.
type groupState struct {
	counts []int32
	total  int
}

func (g *groupState) count(slot int) int32 {
	if g == nil || slot >= len(g.counts) {
		return 0
	}
	return g.counts[slot]
}

// assumedTask is what a task holds on its node, copied from its Request.
type assumedTask struct {
	node        *node
	group       string
	cpu, memory int64
	tcp, udp    []int32
	gpus        gpuHold
}

func clusterOrDefault(cluster string) string {
	if cluster == "" {
		return ecsv1alpha1.DefaultClusterName
	}
	return cluster
}

// UpsertInstance adds an instance or replaces what the engine knows of it. Tasks
// already assumed on it stay assumed.
func (e *Engine) UpsertInstance(inst Instance) {
	// Copy outside the lock: the caller keeps its maps and slices.
	attributes := maps.Clone(inst.Attributes)
	reservedTCP := sortedPorts(slices.Clone(inst.ReservedTCP))
	reservedUDP := sortedPorts(slices.Clone(inst.ReservedUDP))
	cluster := clusterOrDefault(inst.Cluster)

	e.mu.Lock()
	defer e.mu.Unlock()
	n := e.nodeLocked(inst.Name)
	if n.registered && n.cluster != cluster {
		e.unlistLocked(n)
	}
	n.cluster, n.status, n.connected = cluster, inst.Status, inst.Connected
	n.attributes, n.cpu, n.memory = attributes, inst.CPU, inst.Memory
	n.reservedTCP, n.reservedUDP = reservedTCP, reservedUDP
	n.gpus.register(inst.GPUs)
	if !n.registered {
		e.listLocked(n)
	}
	for _, ix := range e.attributeIndexes {
		ix.set(n)
	}
}

// RemoveInstance forgets an instance. Tasks assumed on it stay assumed until they are
// forgotten, so that they count again if the instance comes back.
func (e *Engine) RemoveInstance(name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	n, ok := e.nodes[name]
	if !ok || !n.registered {
		return
	}
	e.unlistLocked(n)
	e.releaseIfUnusedLocked(n)
}

// Assume records that the task key runs on the instance, whether the scheduler bound it
// or the task was found already bound (StartTask, a manager restart). Assuming the
// same key again replaces the earlier record, so repeating it is harmless. The
// instance need not be known yet. Assume checks nothing: the task is there.
func (e *Engine) Assume(key, instance string, req Request) {
	t := newAssumedTask(&req)
	e.mu.Lock()
	defer e.mu.Unlock()
	if old, ok := e.tasks[key]; ok {
		e.unassumeLocked(key, old)
	}
	e.assumeLocked(key, e.nodeLocked(instance), t)
}

// Forget releases what the task key holds: it stopped, was deleted, or its binding
// failed. Forgetting an unknown key does nothing.
func (e *Engine) Forget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if t, ok := e.tasks[key]; ok {
		e.unassumeLocked(key, t)
	}
}

// Place chooses an instance for the request and assumes the task on it, atomically:
// concurrent calls never overcommit an instance. If the key is already assumed, Place
// returns its instance without choosing again; to place a task afresh after a failed
// binding, Forget it first. When no instance fits, the error is an
// *UnplaceableError; other errors are invalid requests (*FieldError for strategies).
func (e *Engine) Place(req Request) (Decision, error) {
	p, err := newPlan(&req)
	if err != nil {
		return Decision{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.placeLocked(&p)
}

// PlaceBatch places the requests in order under one acquisition of the lock, each
// seeing the placements before it. Results are in the order of reqs.
func (e *Engine) PlaceBatch(reqs []Request) []Result {
	results := make([]Result, len(reqs))
	plans := make([]plan, len(reqs))
	for i := range reqs {
		plans[i], results[i].Err = newPlan(&reqs[i])
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := range plans {
		if results[i].Err == nil {
			results[i].Decision, results[i].Err = e.placeLocked(&plans[i])
		}
	}
	return results
}

// Remaining is the cpu and memory the instance has left after its assumed tasks; ok
// is false for an instance the engine does not know.
func (e *Engine) Remaining(instance string) (cpu, memory int64, ok bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	n, found := e.nodes[instance]
	if !found || !n.registered {
		return 0, 0, false
	}
	return n.cpu - n.usedCPU, n.memory - n.usedMemory, true
}

// TasksOn is how many tasks are assumed on the instance.
func (e *Engine) TasksOn(instance string) int {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if n, ok := e.nodes[instance]; ok {
		return n.tasks
	}
	return 0
}

// Assumed returns the instance the task key is assumed on.
func (e *Engine) Assumed(key string) (instance string, ok bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if t, found := e.tasks[key]; found {
		return t.node.name, true
	}
	return "", false
}

// plan is a request checked and compiled outside the lock.
type plan struct {
	req        Request
	strategies []strategy
}

func newPlan(req *Request) (plan, error) {
	if req.Key == "" {
		return plan{}, errors.New("placement request has no task key")
	}
	strategies, err := compileStrategies(req.Strategies)
	if err != nil {
		return plan{}, err
	}
	p := plan{req: *req, strategies: strategies}
	p.req.Cluster = clusterOrDefault(req.Cluster)
	return p, nil
}

func (e *Engine) placeLocked(p *plan) (Decision, error) {
	if t, ok := e.tasks[p.req.Key]; ok {
		return Decision{Instance: t.node.name, GPUs: slices.Clone(t.gpus.ids)}, nil
	}
	req := &p.req
	nodes := e.clusters[req.Cluster]
	gs := e.groups[req.Group]
	e.countAttributeValues(p.strategies, nodes, req.Group, gs)

	k := len(p.strategies)
	if cap(e.cur) < k {
		e.cur, e.best = make([]int64, k), make([]int64, k)
	}
	cur, best := e.cur[:k], e.best[:k]
	var chosen *node
	feasible := 0
	// nodes are sorted by name and only a strictly better score replaces the choice,
	// so equal scores go to the first name: decisions are deterministic.
	for _, n := range nodes {
		if exclude(n, req, gs).kind != "" {
			continue
		}
		feasible++
		for j := range p.strategies {
			cur[j] = e.score(&p.strategies[j], n, req.Group, gs)
		}
		if chosen == nil || less(cur, best) {
			chosen = n
			cur, best = best, cur
		}
	}
	if chosen == nil {
		return Decision{}, unplaceable(req, nodes, gs)
	}
	t := newAssumedTask(req)
	// The GPUs are chosen on the one instance picked, not scored: any free GPU of it
	// is as good as another (ECS does not weigh them either).
	t.gpus = gpuHold{ids: chosen.gpus.pick(req.GPUs)}
	e.assumeLocked(req.Key, chosen, t)
	return Decision{Instance: chosen.name, Feasible: feasible, GPUs: slices.Clone(t.gpus.ids)}, nil
}

// unplaceable explains an empty choice. It runs the checks again with their details,
// which the placement loop skips to stay fast.
func unplaceable(req *Request, nodes []*node, gs *groupState) error {
	counts := map[string]*ReasonCount{}
	for _, n := range nodes {
		x := exclude(n, req, gs)
		reason := x.reason(n, req)
		if rc, ok := counts[reason]; ok {
			rc.Count++
		} else {
			counts[reason] = &ReasonCount{Kind: x.kind, Reason: reason, Count: 1}
		}
	}
	var reasons []ReasonCount
	for _, rc := range counts {
		reasons = append(reasons, *rc)
	}
	slices.SortFunc(reasons, func(a, b ReasonCount) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return strings.Compare(a.Reason, b.Reason)
	})
	return &UnplaceableError{Cluster: req.Cluster, Instances: len(nodes), Reasons: reasons}
}

func newAssumedTask(req *Request) *assumedTask {
	return &assumedTask{
		group:  req.Group,
		cpu:    req.CPU,
		memory: req.Memory,
		tcp:    slices.Clone(req.TCPPorts),
		udp:    slices.Clone(req.UDPPorts),
		gpus:   assumedGPUs(req),
	}
}

func (e *Engine) assumeLocked(key string, n *node, t *assumedTask) {
	t.node = n
	e.tasks[key] = t
	n.usedCPU += t.cpu
	n.usedMemory += t.memory
	n.tasks++
	n.gpus.hold(t.gpus)
	for _, p := range t.tcp {
		if n.usedTCP == nil {
			n.usedTCP = map[int32]int{}
		}
		n.usedTCP[p]++
	}
	for _, p := range t.udp {
		if n.usedUDP == nil {
			n.usedUDP = map[int32]int{}
		}
		n.usedUDP[p]++
	}
	if t.group == "" {
		return
	}
	if n.groups == nil {
		n.groups = map[string]int{}
	}
	n.groups[t.group]++
	gs := e.groups[t.group]
	if gs == nil {
		gs = &groupState{}
		e.groups[t.group] = gs
	}
	if n.slot >= len(gs.counts) {
		gs.counts = append(gs.counts, make([]int32, n.slot+1-len(gs.counts))...)
	}
	gs.counts[n.slot]++
	gs.total++
}

func (e *Engine) unassumeLocked(key string, t *assumedTask) {
	delete(e.tasks, key)
	n := t.node
	n.usedCPU -= t.cpu
	n.usedMemory -= t.memory
	n.tasks--
	n.gpus.release(t.gpus)
	for _, p := range t.tcp {
		decrement(n.usedTCP, p)
	}
	for _, p := range t.udp {
		decrement(n.usedUDP, p)
	}
	if t.group != "" {
		decrement(n.groups, t.group)
		gs := e.groups[t.group]
		gs.counts[n.slot]--
		if gs.total--; gs.total == 0 {
			delete(e.groups, t.group)
		}
	}
	e.releaseIfUnusedLocked(n)
}

// decrement lowers a count and deletes it at zero, so that maps hold only live entries
// (TaskGroups relies on it).
func decrement[K comparable](m map[K]int, k K) {
	if m[k] <= 1 {
		delete(m, k)
		return
	}
	m[k]--
}

// nodeLocked returns the node of an instance, creating an unregistered one.
func (e *Engine) nodeLocked(name string) *node {
	if n, ok := e.nodes[name]; ok {
		return n
	}
	n := &node{name: name}
	if k := len(e.freeSlots); k > 0 {
		n.slot = e.freeSlots[k-1]
		e.freeSlots = e.freeSlots[:k-1]
	} else {
		n.slot = e.nextSlot
		e.nextSlot++
	}
	e.nodes[name] = n
	return n
}

// releaseIfUnusedLocked drops a node that is neither registered nor holding tasks. Its
// slot is zero in every group, since it holds no task, and can be reused.
func (e *Engine) releaseIfUnusedLocked(n *node) {
	if n.registered || n.tasks > 0 {
		return
	}
	delete(e.nodes, n.name)
	e.freeSlots = append(e.freeSlots, n.slot)
}

func (e *Engine) listLocked(n *node) {
	nodes := e.clusters[n.cluster]
	i, _ := slices.BinarySearchFunc(nodes, n.name, func(m *node, name string) int { return strings.Compare(m.name, name) })
	e.clusters[n.cluster] = slices.Insert(nodes, i, n)
	n.registered = true
}

func (e *Engine) unlistLocked(n *node) {
	nodes := e.clusters[n.cluster]
	if i, found := slices.BinarySearchFunc(nodes, n.name, func(m *node, name string) int { return strings.Compare(m.name, name) }); found {
		nodes = slices.Delete(nodes, i, i+1)
	}
	if len(nodes) == 0 {
		delete(e.clusters, n.cluster)
	} else {
		e.clusters[n.cluster] = nodes
	}
	n.registered = false
}

// sortedPorts sorts ports and drops duplicates, in place.
func sortedPorts(ports []int32) []int32 {
	slices.Sort(ports)
	return slices.Compact(ports)
}
