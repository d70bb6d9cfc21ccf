package network

import (
	"fmt"
	"io"
	"net"
	"strconv"

	"k8s.io/apimachinery/pkg/types"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/taskrules"
)

// portKey is a host port of one protocol.
type portKey struct {
	protocol ecsv1alpha1.TransportProtocol
	port     int32
}

// PortHeldError is Setup's error when a static host port the task asks for is held
// by another task of the instance: one that is stopping and releases it soon
// (placement never binds two tasks to one static port). It is Temporary: the engine
// waits and tries again, as ECS holds the new task until the port is free.
type PortHeldError struct {
	Port  string
	Owner types.UID
}

func (e *PortHeldError) Error() string {
	return fmt.Sprintf("host port %s is held by task %s", e.Port, e.Owner)
}

// Temporary is true: the holder releases the port when it stops.
func (e *PortHeldError) Temporary() bool { return true }

func (k portKey) String() string { return fmt.Sprintf("%d/%s", k.port, k.protocol) }

// hostPorts hands out an instance's host ports: static ones as the mappings ask,
// dynamic ones from a range. The Manager and the in-memory network (Memory) share it,
// so a simulated instance chooses ports exactly as a real one.
type hostPorts struct {
	min, max int32
	// next is where the search for a dynamic port starts: after the last one given,
	// so a port just released is not reused at once.
	next int32
	// reserve binds a port on the instance and keeps it bound until the closer is
	// closed; it fails when a process of the host (another agent among them) holds
	// the port.
	reserve func(protocol string, port int32) (io.Closer, error)
}

func newHostPorts(min, max int32, reserve func(string, int32) (io.Closer, error)) hostPorts {
	return hostPorts{min: min, max: max, next: min, reserve: reserve}
}

// allocate is the Manager's allocation against the ports its tasks hold.
func (m *Manager) allocate(uid types.UID, mappings []ecsv1alpha1.PortMapping) ([]port, []io.Closer, error) {
	held := make(map[types.UID][]port, len(m.tasks))
	for other, st := range m.tasks {
		held[other] = st.Ports
	}
	return m.ports.allocate(uid, mappings, held)
}

// allocate picks the host ports of the task's mappings: static host ports as given,
// dynamic ones (hostPort 0 or unset) from the range. A port another task holds
// (held, by task) is never given, nor one a process on the instance has bound; a
// static port that is taken is an error, as Docker's "port is already allocated" is.
// Every port given is reserved on the instance (the closers, one per port, release
// them): published by iptables DNAT alone, a port looks free to every other process,
// and a second agent on the machine would publish it again.
func (h *hostPorts) allocate(uid types.UID, mappings []ecsv1alpha1.PortMapping, held map[types.UID][]port) (_ []port, holds []io.Closer, err error) {
	defer func() {
		if err != nil {
			closeAll(holds)
			holds = nil
		}
	}()
	taken := takenPorts(uid, held)
	out := make([]port, len(mappings))
	// Static ports first, so that dynamic ones keep clear of them.
	for i, pm := range mappings {
		if out[i], err = containerPorts(pm); err != nil {
			return nil, holds, err
		}
		if pm.ContainerPortRange != "" || pm.HostPort == nil || *pm.HostPort == 0 {
			// Dynamic: a range is published on dynamic ports, as ECS's agent does in
			// bridge mode.
			continue
		}
		k := portKey{out[i].Protocol, *pm.HostPort}
		if owner, ok := taken[k]; ok {
			return nil, holds, &PortHeldError{Port: k.String(), Owner: owner}
		}
		c, err := h.reserve(string(k.protocol), k.port)
		if err != nil {
			return nil, holds, fmt.Errorf("host port %s is in use on the instance: %w", k, err)
		}
		holds = append(holds, c)
		taken[k] = uid
		out[i].HostPort = k.port
	}
	for i := range out {
		if out[i].HostPort != 0 {
			continue
		}
		p, cs, err := h.dynamicPorts(out[i].Protocol, out[i].count(), taken)
		if err != nil {
			return nil, holds, err
		}
		holds = append(holds, cs...)
		for j := range out[i].count() {
			taken[portKey{out[i].Protocol, p + j}] = uid
		}
		out[i].HostPort = p
	}
	return out, holds, nil
}

// takenPorts are the host ports the other tasks hold, by owner.
func takenPorts(uid types.UID, held map[types.UID][]port) map[portKey]types.UID {
	taken := map[portKey]types.UID{}
	for other, ports := range held {
		if other == uid {
			continue
		}
		for _, p := range ports {
			for i := range p.count() {
				taken[portKey{p.Protocol, p.HostPort + i}] = other
			}
		}
	}
	return taken
}

// containerPorts is the container side of a mapping, its host port not chosen yet.
func containerPorts(pm ecsv1alpha1.PortMapping) (port, error) {
	p := port{ContainerPort: pm.ContainerPort, Protocol: protocol(pm.Protocol)}
	if pm.ContainerPortRange != "" {
		first, last, err := taskrules.PortRange(pm.ContainerPortRange)
		if err != nil {
			return port{}, err
		}
		p.ContainerPort, p.Count = first, last-first+1
	}
	return p, nil
}

// dynamicPorts is n consecutive free ports of the range, the first from where the
// last search ended, reserved: one for a containerPort, a block as long as the range
// for a containerPortRange, whose binding reports it as hostPortRange.
func (h *hostPorts) dynamicPorts(proto ecsv1alpha1.TransportProtocol, n int32, taken map[portKey]types.UID) (int32, []io.Closer, error) {
	if n == 1 {
		p, c, err := h.dynamicPort(proto, taken)
		if err != nil {
			return 0, nil, err
		}
		return p, []io.Closer{c}, nil
	}
	lo, hi := h.min, h.max-n+1
	if hi < lo {
		return 0, nil, fmt.Errorf("a range of %d %s ports is longer than the dynamic range %d-%d", n, proto, h.min, h.max)
	}
	start := h.next
	if start < lo || start > hi {
		start = lo
	}
	for tries := hi - lo + 1; tries > 0; tries-- {
		cand := start
		if start++; start > hi {
			start = lo
		}
		if cs, ok := h.reserveBlock(proto, cand, n, taken); ok {
			h.next = cand + n
			return cand, cs, nil
		}
	}
	return 0, nil, fmt.Errorf("no %d consecutive free %s host ports in the dynamic range %d-%d", n, proto, h.min, h.max)
}

// reserveBlock reserves ports first to first+n-1, or none of them.
func (h *hostPorts) reserveBlock(proto ecsv1alpha1.TransportProtocol, first, n int32, taken map[portKey]types.UID) ([]io.Closer, bool) {
	cs := make([]io.Closer, 0, n)
	for p := first; p < first+n; p++ {
		if _, ok := taken[portKey{proto, p}]; ok {
			closeAll(cs)
			return nil, false
		}
		c, err := h.reserve(string(proto), p)
		if err != nil {
			closeAll(cs)
			return nil, false
		}
		cs = append(cs, c)
	}
	return cs, true
}

// dynamicPort is the first free port of the range from where the last search ended,
// reserved.
func (h *hostPorts) dynamicPort(proto ecsv1alpha1.TransportProtocol, taken map[portKey]types.UID) (int32, io.Closer, error) {
	lo, hi := h.min, h.max
	p := h.next
	if p < lo || p > hi {
		p = lo
	}
	for n := hi - lo + 1; n > 0; n-- {
		cand := p
		p++
		if p > hi {
			p = lo
		}
		if _, ok := taken[portKey{proto, cand}]; ok {
			continue
		}
		c, err := h.reserve(string(proto), cand)
		if err != nil {
			continue
		}
		h.next = p
		return cand, c, nil
	}
	return 0, nil, fmt.Errorf("no free %s host port in the dynamic range %d-%d", proto, lo, hi)
}

func protocol(p ecsv1alpha1.TransportProtocol) ecsv1alpha1.TransportProtocol {
	if p == "" {
		return ecsv1alpha1.ProtocolTCP
	}
	return p
}

// reservePort binds the port on the instance's IPv4 addresses and keeps it bound, as
// the kubelet's host port manager did: traffic to a published port is DNATed to the
// task before it reaches the socket, so the socket only keeps other processes (and
// other agents) off the port. Only IPv4: ports are published for IPv4 alone.
func reservePort(proto string, port int32) (io.Closer, error) {
	addr := "0.0.0.0:" + strconv.Itoa(int(port))
	if proto == string(ecsv1alpha1.ProtocolUDP) {
		return net.ListenPacket("udp4", addr)
	}
	return net.Listen("tcp4", addr)
}

// noReservation is the in-memory network's reserve: no process shares its ports.
func noReservation(string, int32) (io.Closer, error) { return nopCloser{}, nil }

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

// closeAll releases reserved ports.
func closeAll(holds []io.Closer) {
	for _, c := range holds {
		_ = c.Close()
	}
}
