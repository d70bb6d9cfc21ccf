package network

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"k8s.io/apimachinery/pkg/types"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// Memory is a task network without namespaces or CNI: it chooses each bridge task's
// host ports exactly as the Manager does (static ones as asked, dynamic ones from
// ECS's range) and holds them in memory. `berth hollow` gives one to every simulated
// instance, as kubemark's hollow kubelet gets a fake network: the task engine runs
// unchanged, and the ports a simulated task reports obey the real rules.
type Memory struct {
	mu    sync.Mutex
	ports hostPorts
	tasks map[types.UID]memoryTask
}

type memoryTask struct {
	ports []port
	ip    string
}

// memoryAddresses numbers the task addresses of every Memory network of the process
// (all the instances of one `berth hollow`), so that no two tasks share one.
var memoryAddresses atomic.Uint32

// nextMemoryAddress is a fresh address in 100.64.0.0/10 (shared address space: never
// a real host's, never skipped as loopback or link-local by the endpoints controller).
func nextMemoryAddress() string {
	n := memoryAddresses.Add(1) % (1 << 22)
	return fmt.Sprintf("100.%d.%d.%d", 64+n>>16, n>>8&0xff, n&0xff)
}

// NewMemory returns an empty in-memory network with the default dynamic range, on
// an instance where no other process holds a port.
func NewMemory() *Memory {
	return &Memory{
		ports: newHostPorts(DefaultPortMin, DefaultPortMax, noReservation),
		tasks: map[types.UID]memoryTask{},
	}
}

// Setup allocates the task's host ports and an address; a task that has them gets
// the same back. The namespace path is empty: there is no namespace.
func (m *Memory) Setup(_ context.Context, uid types.UID, mappings []ecsv1alpha1.PortMapping) (string, string, []ecsv1alpha1.NetworkBinding, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tasks[uid]
	if !ok {
		held := make(map[types.UID][]port, len(m.tasks))
		for id, other := range m.tasks {
			held[id] = other.ports
		}
		ports, _, err := m.ports.allocate(uid, mappings, held)
		if err != nil {
			return "", "", nil, fmt.Errorf("allocating host ports: %w", err)
		}
		t = memoryTask{ports: ports, ip: nextMemoryAddress()}
		m.tasks[uid] = t
	}
	st := taskState{Ports: t.ports}
	return "", t.ip, st.bindings(), nil
}

// Teardown releases the task's ports.
func (m *Memory) Teardown(_ context.Context, uid types.UID) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.tasks, uid)
	return nil
}

// Recover finds nothing: what an in-memory network held ends with its process.
func (m *Memory) Recover(context.Context) ([]types.UID, error) { return nil, nil }
