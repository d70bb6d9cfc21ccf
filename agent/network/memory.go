package network

import (
	"context"
	"fmt"
	"sync"

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
	tasks map[types.UID][]port
}

// NewMemory returns an empty in-memory network with the default dynamic range, on
// an instance where no other process holds a port.
func NewMemory() *Memory {
	return &Memory{
		ports: newHostPorts(DefaultPortMin, DefaultPortMax, func(string, int32) bool { return true }),
		tasks: map[types.UID][]port{},
	}
}

// Setup allocates the task's host ports; a task that has them gets the same back. The
// namespace path is empty: there is no namespace.
func (m *Memory) Setup(_ context.Context, uid types.UID, mappings []ecsv1alpha1.PortMapping) (string, []ecsv1alpha1.NetworkBinding, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ports, ok := m.tasks[uid]
	if !ok {
		var err error
		if ports, err = m.ports.allocate(uid, mappings, m.tasks); err != nil {
			return "", nil, fmt.Errorf("allocating host ports: %w", err)
		}
		m.tasks[uid] = ports
	}
	st := taskState{Ports: ports}
	return "", st.bindings(), nil
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
