package fake_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/berthdev/berth/agent/runtime"
	"github.com/berthdev/berth/agent/runtime/fake"
	"github.com/berthdev/berth/agent/runtime/runtimetest"
)

// TestContract runs the runtime contract suite against the fake, on the real clock;
// agent/runtime/containerd runs the same suite against containerd.
func TestContract(t *testing.T) {
	runtimetest.Run(t, harness{})
}

type harness struct{}

func (harness) New(*testing.T) runtimetest.Target { return &target{rt: fake.New()} }

// Parallel: each case has a runtime of its own.
func (harness) Parallel() bool { return true }

// target plays the registry with FailPull: every image it hands out pulls, unless the
// registry is down; the missing one is not found.
type target struct {
	rt   *fake.Runtime
	n    int
	refs []string
	down bool
}

var errUnavailable = &runtime.ImageError{Kind: runtime.ImageUnavailable, Reason: "503 Service Unavailable", Err: errors.New("503")}

func (g *target) Runtime() runtime.Runtime { return g.rt }

func (g *target) Container(_ *testing.T, p runtimetest.Program) runtimetest.Container {
	g.n++
	repo := fmt.Sprintf("registry.test/contract/p%d", g.n)
	ref := repo + ":latest"
	b := fake.Behavior{IgnoreSIGTERM: p.IgnoreSIGTERM, TermExitCode: &p.TermExitCode, User: p.User,
		Exec: &fake.ExecResult{Code: p.Exec.Code, Hang: p.Exec.Hang}}
	if p.Exec.Line != "" {
		b.Exec.Output = p.Exec.Line + "\n"
	}
	if p.ExitAfter > 0 {
		b.ExitAfter, b.ExitCode = p.ExitAfter, p.ExitCode
	}
	c := runtimetest.Container{Image: ref, LogPath: "/var/log/contract/" + fmt.Sprint(g.n) + ".log", Exec: []string{"/bin/check"}}
	if p.OOM {
		b.OOMAfter, c.MemoryLimitBytes = 20*time.Millisecond, 32<<20
	}
	g.rt.SetBehavior(repo+":", b)
	g.refs = append(g.refs, ref)
	if g.down {
		g.rt.FailPull(ref, errUnavailable)
	}
	return c
}

func (g *target) MissingImage(*testing.T) string {
	ref := "registry.test/contract/missing:latest"
	g.rt.FailPull(ref, &runtime.ImageError{Ref: ref, Kind: runtime.ImageNotFound, Reason: "404 Not Found: manifest unknown"})
	return ref
}

func (g *target) SetRegistryDown(_ *testing.T, down bool) {
	g.down = down
	for _, ref := range g.refs {
		if down {
			g.rt.FailPull(ref, errUnavailable)
		} else {
			g.rt.FailPull(ref, nil)
		}
	}
}

func (g *target) Import(_ *testing.T, ref string) { g.rt.AddImage(ref) }

func (g *target) FailCreate(_ *testing.T, spec *runtime.ContainerSpec) func() {
	g.rt.FailCreate(spec.ID, errors.New("injected create failure"))
	return func() { g.rt.FailCreate(spec.ID, nil) }
}

func (g *target) WaitReady(*testing.T, runtime.ContainerSpec) {}
