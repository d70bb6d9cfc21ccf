package containerd_test

import (
	"fmt"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/berthdev/berth/agent/runtime"
	"github.com/berthdev/berth/agent/runtime/runtimetest"
	regtest "github.com/berthdev/berth/test/testenv/registry"
)

// TestContract runs the runtime contract suite against containerd; the fake runs the
// same suite (agent/runtime/fake).
func TestContract(t *testing.T) {
	runtimetest.Run(t, harness{})
}

type harness struct{}

// New gives each case a namespace of its own (newEnv checks at cleanup that it is
// left clean) and a registry.
func (harness) New(t *testing.T) runtimetest.Target {
	return &target{e: newEnv(t), reg: regtest.Start(t)}
}

// target makes containers of the test image whose command line is a script of its
// program's actions (test/testenv/registry/testdata/testimage).
type target struct {
	e   *env
	reg *regtest.Registry
	n   int
}

func (g *target) Runtime() runtime.Runtime { return g.e.rt }

func (g *target) Container(t *testing.T, p runtimetest.Program) runtimetest.Container {
	g.n++
	var opts []regtest.ImageOption
	if p.User != "" {
		opts = append(opts, regtest.WithUser(p.User))
	}
	ref, _ := g.reg.Push(t, regtest.TestImage(t, nil, opts...), fmt.Sprintf("contract/p%d", g.n), "latest")
	c := runtimetest.Container{Image: ref, LogPath: filepath.Join(t.TempDir(), fmt.Sprintf("p%d.log", g.n))}
	if p.IgnoreSIGTERM {
		c.Command = append(c.Command, "ignore-term")
	} else {
		c.Command = append(c.Command, "term-exit="+strconv.Itoa(p.TermExitCode))
	}
	c.Command = append(c.Command, "echo=ready")
	switch {
	case p.OOM:
		c.Command = append(c.Command, "alloc=512", "sleep=inf")
		c.MemoryLimitBytes = 32 << 20
	case p.ExitAfter > 0:
		c.Command = append(c.Command, "sleep="+p.ExitAfter.String(), "exit="+strconv.Itoa(p.ExitCode))
	default:
		c.Command = append(c.Command, "sleep=inf")
	}
	c.Exec = []string{regtest.TestBinaryPath}
	if p.Exec.Hang {
		c.Exec = append(c.Exec, "sleep=inf")
	} else {
		if p.Exec.Line != "" {
			c.Exec = append(c.Exec, "echo="+p.Exec.Line)
		}
		c.Exec = append(c.Exec, "exit="+strconv.Itoa(p.Exec.Code))
	}
	return c
}

func (g *target) MissingImage(*testing.T) string { return g.reg.Ref("contract/missing", "latest") }

func (g *target) SetRegistryDown(_ *testing.T, down bool) { g.reg.SetUnavailable(down) }

// Import pulls ref and drops the label that says the runtime pulled it.
func (g *target) Import(t *testing.T, ref string) {
	if _, err := g.e.rt.Pull(g.e.ctx, ref, runtime.PullAlways, nil); err != nil {
		t.Fatal(err)
	}
	g.e.dropPulledLabel(ref)
}

// FailCreate names a user the image does not have: Create fails once the snapshot is
// prepared.
func (g *target) FailCreate(_ *testing.T, spec *runtime.ContainerSpec) func() {
	spec.User = "nobody-in-this-image"
	return func() {}
}

func (g *target) WaitReady(_ *testing.T, spec runtime.ContainerSpec) { g.e.waitLog(spec, "ready") }
