package network

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	gocni "github.com/containerd/go-cni"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/taskrules"
)

// stateVersion is the format of the state files.
const stateVersion = 1

// tmpSuffix ends the names of files being written.
const tmpSuffix = ".tmp"

// taskState is what one task's network holds, as written to its state file.
type taskState struct {
	Version int    `json:"version"`
	NetNS   string `json:"netns"`
	IP      string `json:"ip,omitempty"`
	// Ports are the task's published ports, one per port mapping, in order.
	Ports []port `json:"ports,omitempty"`

	// holds keep the published host ports reserved on the instance while the task
	// has them (reservePort); not written: an agent that restarts reserves them again.
	holds []io.Closer
}

// release closes the task's port reservations.
func (s *taskState) release() {
	closeAll(s.holds)
	s.holds = nil
}

// port is one published port, or Count consecutive ones from ContainerPort and
// HostPort (a containerPortRange).
type port struct {
	ContainerPort int32                         `json:"containerPort"`
	HostPort      int32                         `json:"hostPort"`
	Protocol      ecsv1alpha1.TransportProtocol `json:"protocol"`
	Count         int32                         `json:"count,omitempty"`
}

// count is how many ports the entry publishes (state written before ranges has no
// Count: one).
func (p port) count() int32 { return max(1, p.Count) }

// binding is the port as the API reports it: a containerPortRange with its
// hostPortRange, else the single ports.
func (p port) binding() ecsv1alpha1.NetworkBinding {
	b := ecsv1alpha1.NetworkBinding{BindIP: "0.0.0.0", Protocol: p.Protocol}
	if p.Count > 1 {
		b.ContainerPortRange = taskrules.FormatPortRange(p.ContainerPort, p.ContainerPort+p.Count-1)
		b.HostPortRange = taskrules.FormatPortRange(p.HostPort, p.HostPort+p.Count-1)
		return b
	}
	b.ContainerPort, b.HostPort = p.ContainerPort, p.HostPort
	return b
}

// bindings are the task's ports as the API reports them: on every address of the
// instance.
func (s *taskState) bindings() []ecsv1alpha1.NetworkBinding {
	out := make([]ecsv1alpha1.NetworkBinding, 0, len(s.Ports))
	for _, p := range s.Ports {
		out = append(out, p.binding())
	}
	return out
}

// portMaps are ports as the portmap plugin's capability argument.
func portMaps(ports []port) []gocni.PortMapping {
	out := make([]gocni.PortMapping, 0, len(ports))
	for _, p := range ports {
		for i := range p.count() {
			out = append(out, gocni.PortMapping{HostPort: p.HostPort + i, ContainerPort: p.ContainerPort + i, Protocol: string(p.Protocol)})
		}
	}
	return out
}

func writeState(path string, st *taskState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(path, append(b, '\n')); err != nil {
		return fmt.Errorf("writing the network state of the task: %w", err)
	}
	return nil
}

func readState(path string) (*taskState, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var st taskState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", path, err)
	}
	if st.Version != stateVersion || st.NetNS == "" {
		return nil, fmt.Errorf("%s: unknown format (version %d)", path, st.Version)
	}
	return &st, nil
}

// writeFileAtomic replaces path with data so that a crash leaves the old content or
// the new one, never a part: a synced temporary file renamed over it, then the
// directory synced.
func writeFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, filepath.Base(path)+".*"+tmpSuffix)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer func() { _ = d.Close() }()
	return d.Sync()
}
