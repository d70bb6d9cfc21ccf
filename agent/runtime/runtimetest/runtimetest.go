// Package runtimetest is the contract suite of runtime.Runtime: one set of checks of
// the interface's documented semantics that runs against every implementation, the
// containerd one (agent/runtime/containerd, with a real containerd and registry) and
// the in-memory fake (agent/runtime/fake) that the engine's tests and `berth hollow`
// run on. A behaviour the engine relies on is checked here once, so the fake cannot
// drift from containerd unnoticed.
//
// An implementation's test calls Run with a Harness. The harness makes images and
// containers that behave as a Program says: for containerd, the test image with a
// command line of its program; for the fake, an image reference with a
// fake.Behavior.
package runtimetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/berthdev/berth/agent/runtime"
)

// Harness connects the suite to one runtime implementation.
type Harness interface {
	// New returns an empty runtime for one test, with its registry; the harness
	// removes both at t's cleanup (after the suite has deleted its containers) and
	// may check there that nothing was left behind.
	New(t *testing.T) Target
}

// Target is one runtime under test and the means to feed it.
type Target interface {
	// Runtime is the runtime under test.
	Runtime() runtime.Runtime
	// Container returns the parts of a container spec that make its process behave
	// as p. Its image is in the target's registry, not yet local, and its reference
	// is normalized and ends in ":latest" (the suite checks normalization with the
	// short form). Each call returns a new image.
	Container(t *testing.T, p Program) Container
	// MissingImage returns a well-formed reference that the registry does not have.
	MissingImage(t *testing.T) string
	// SetRegistryDown makes the registry answer every request with 503 Service
	// Unavailable (true), or serve again (false).
	SetRegistryDown(t *testing.T, down bool)
	// Import makes ref local as an operator's import would: present, but not
	// pulled by the runtime.
	Import(t *testing.T, ref string)
	// FailCreate changes spec so that Create fails once the runtime has begun to
	// make the container; after repair, Create of the spec as it was succeeds.
	FailCreate(t *testing.T, spec *runtime.ContainerSpec) (repair func())
	// WaitReady waits until the process of the started container has set up its
	// signal handling, as its program's "ready" line says. A SIGTERM before that
	// meets the process without its handler.
	WaitReady(t *testing.T, spec runtime.ContainerSpec)
}

// Program is how a container's process behaves.
type Program struct {
	// ExitAfter, when positive, makes the process exit by itself with ExitCode that
	// long after it starts (each time it starts); zero runs it until it is stopped.
	ExitAfter time.Duration
	ExitCode  int
	// TermExitCode is the code the process exits with when SIGTERM stops it.
	TermExitCode int
	// IgnoreSIGTERM makes the process ignore SIGTERM, so only SIGKILL ends it.
	IgnoreSIGTERM bool
	// OOM makes the process allocate past its memory limit (Container's
	// MemoryLimitBytes) as soon as it starts.
	OOM bool
	// Exec is what every command Container.Exec does in the container.
	Exec ExecProgram
	// User is the user the image's config runs the process as ("" is root).
	User string
}

// ExecProgram is what an exec'd command does.
type ExecProgram struct {
	// Line is printed, with a newline, to stdout ("" prints nothing).
	Line string
	// Code is the command's exit code.
	Code int
	// Hang makes the command run until it is killed.
	Hang bool
}

// Container is what Target.Container makes.
type Container struct {
	// Image, Command, MemoryLimitBytes and LogPath go into the container's spec.
	Image            string
	Command          []string
	MemoryLimitBytes int64
	LogPath          string
	// Exec is the command to exec in the container that behaves as Program.Exec.
	Exec []string
}

// Timing of the suite: long enough for a loaded machine, short enough for the fake
// on the real clock.
const (
	// exitAfter is how long a Program that exits by itself runs.
	exitAfter = 200 * time.Millisecond
	// killTimeout is the stop timeout given to a process that ignores SIGTERM.
	killTimeout = time.Second
	// execTimeout is the timeout of an exec that hangs.
	execTimeout = 500 * time.Millisecond
	// patience bounds every wait for something that should happen.
	patience = 60 * time.Second
)

// Parallel is implemented by a Harness whose Targets are independent of each other
// (an in-memory runtime): Run then runs the cases in parallel.
type Parallel interface {
	Parallel() bool
}

// Run runs the contract suite, each case on a new Target of h.
func Run(t *testing.T, h Harness) {
	p, ok := h.(Parallel)
	parallel := ok && p.Parallel()
	for _, c := range cases() {
		t.Run(c.name, func(t *testing.T) {
			if parallel {
				t.Parallel()
			}
			c.run(newSuite(t, h))
		})
	}
}

type testCase struct {
	name string
	run  func(s *suite)
}

func cases() []testCase {
	var all []testCase
	for _, group := range [][]testCase{pullCases(), createCases(), lifecycleCases(), stopCases(), execCases(), observeCases(), imageCases()} {
		all = append(all, group...)
	}
	return all
}

// suite is what one case works with.
type suite struct {
	t   *testing.T
	tg  Target
	rt  runtime.Runtime
	ctx context.Context
	n   int
}

func newSuite(t *testing.T, h Harness) *suite {
	tg := h.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	s := &suite{t: t, tg: tg, rt: tg.Runtime(), ctx: ctx}
	// Registered after the harness's cleanup, so it runs before it.
	t.Cleanup(s.deleteAll)
	return s
}

// deleteAll deletes every container of the runtime.
func (s *suite) deleteAll() {
	ctx := context.Background()
	infos, err := s.rt.List(ctx, nil)
	if err != nil {
		s.t.Errorf("listing containers to delete: %v", err)
		return
	}
	for _, i := range infos {
		if err := s.rt.Delete(ctx, i.ID); err != nil {
			s.t.Errorf("deleting %s: %v", i.ID, err)
		}
	}
}

const taskUID = "0b7a3c1e-5d2f-4a8b-9c6d-000000000001"

// image makes an image for p and pulls it; it returns the container parts.
func (s *suite) image(p Program) Container {
	s.t.Helper()
	c := s.tg.Container(s.t, p)
	if _, err := s.rt.Pull(s.ctx, c.Image, runtime.PullDefault, nil); err != nil {
		s.t.Fatalf("pulling %s: %v", c.Image, err)
	}
	return c
}

// spec returns the spec of a container named name, of task taskUID, made of c.
func (s *suite) spec(name string, c Container) runtime.ContainerSpec {
	return runtime.ContainerSpec{
		ID:    runtime.ContainerID(taskUID, name),
		Image: c.Image,
		Labels: map[string]string{
			runtime.LabelTaskUID:   taskUID,
			runtime.LabelTask:      "default/contract",
			runtime.LabelContainer: name,
			runtime.LabelRevision:  "contract:1",
		},
		Command:          c.Command,
		MemoryLimitBytes: c.MemoryLimitBytes,
		LogPath:          c.LogPath,
	}
}

// created pulls an image for p and creates a container of it.
func (s *suite) created(p Program) (runtime.ContainerSpec, Container) {
	s.t.Helper()
	c := s.image(p)
	s.n++
	spec := s.spec(fmt.Sprintf("c%d", s.n), c)
	if _, err := s.rt.Create(s.ctx, spec); err != nil {
		s.t.Fatalf("create: %v", err)
	}
	return spec, c
}

// started creates and starts a container running p and returns its pid.
func (s *suite) started(p Program) (runtime.ContainerSpec, Container, uint32) {
	s.t.Helper()
	spec, c := s.created(p)
	pid, err := s.rt.Start(s.ctx, spec.ID)
	if err != nil {
		s.t.Fatalf("start: %v", err)
	}
	return spec, c, pid
}

// ready starts a container running p and waits until its process is ready.
func (s *suite) ready(p Program) (runtime.ContainerSpec, Container, uint32) {
	s.t.Helper()
	spec, c, pid := s.started(p)
	s.tg.WaitReady(s.t, spec)
	return spec, c, pid
}

// wait waits for the exit of the container's current process.
func (s *suite) wait(id string) runtime.ExitStatus {
	s.t.Helper()
	ch, err := s.rt.Wait(s.ctx, id)
	if err != nil {
		s.t.Fatalf("wait: %v", err)
	}
	select {
	case es, ok := <-ch:
		if !ok {
			s.t.Fatal("the wait channel closed without an exit status")
		}
		return es
	case <-time.After(patience):
		s.t.Fatalf("container %s did not exit within %s", id, patience)
	}
	return runtime.ExitStatus{}
}

// info returns the container as List shows it, and false when it is not listed.
func (s *suite) info(id string) (runtime.ContainerInfo, bool) {
	s.t.Helper()
	list, err := s.rt.List(s.ctx, nil)
	if err != nil {
		s.t.Fatalf("list: %v", err)
	}
	for _, i := range list {
		if i.ID == id {
			return i, true
		}
	}
	return runtime.ContainerInfo{}, false
}

// events subscribes to events until the case ends.
func (s *suite) events() (<-chan runtime.Event, <-chan error) {
	ctx, cancel := context.WithCancel(s.ctx)
	s.t.Cleanup(cancel)
	return s.rt.Events(ctx)
}

// nextEvent returns the next event of container id that match accepts.
func (s *suite) nextEvent(events <-chan runtime.Event, errc <-chan error, id string, match func(runtime.Event) bool) runtime.Event {
	s.t.Helper()
	timeout := time.After(patience)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				s.t.Fatal("the event stream ended")
			}
			if ev.ContainerID == id && match(ev) {
				return ev
			}
		case err := <-errc:
			s.t.Fatalf("event stream: %v", err)
		case <-timeout:
			s.t.Fatalf("no matching event for %s within %s", id, patience)
		}
	}
}

func isExit(ev runtime.Event) bool { return ev.Type == runtime.EventExit }

func (s *suite) mustErr(what string, err error, want error) {
	s.t.Helper()
	if !errors.Is(err, want) {
		s.t.Errorf("%s: %v, want an error wrapping %q", what, err, want)
	}
}
