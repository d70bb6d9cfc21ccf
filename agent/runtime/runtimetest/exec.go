package runtimetest

import (
	"errors"
	"time"

	"github.com/berthdev/berth/agent/runtime"
)

func execCases() []testCase {
	return []testCase{
		{name: "exec/code-and-output", run: func(s *suite) {
			events, errc := s.events()
			spec, c, pid := s.ready(Program{Exec: ExecProgram{Line: "checked", Code: 3}})
			code, out, err := s.rt.Exec(s.ctx, spec.ID, c.Exec, patience)
			if err != nil || code != 3 || string(out) != "checked\n" {
				s.t.Errorf("Exec = %d, %q, %v; want 3, %q", code, out, err, "checked\n")
			}
			// The exec's exit is not the container's.
			if _, err := s.rt.Stop(s.ctx, spec.ID, patience); err != nil {
				s.t.Fatal(err)
			}
			ev := s.nextEvent(events, errc, spec.ID, isExit)
			if ev.Pid != pid || ev.Exit == nil || ev.Exit.Code != 0 {
				s.t.Errorf("first exit event %+v (exit %+v), want the container's process %d stopped with 0", ev, ev.Exit, pid)
			}
		}},
		{name: "exec/timeout", run: func(s *suite) {
			spec, c, _ := s.ready(Program{Exec: ExecProgram{Hang: true}})
			start := time.Now()
			code, _, err := s.rt.Exec(s.ctx, spec.ID, c.Exec, execTimeout)
			took := time.Since(start)
			s.mustErr("Exec of a command that hangs", err, runtime.ErrExecTimeout)
			if code != -1 {
				s.t.Errorf("code %d, want -1", code)
			}
			if took < execTimeout || took > execTimeout+patience/2 {
				s.t.Errorf("exec took %s, want the %s timeout and a little", took, execTimeout)
			}
			// The container still runs.
			if info, _ := s.info(spec.ID); info.Status != runtime.StatusRunning {
				s.t.Errorf("after the exec timed out the container is %+v, want running", info)
			}
		}},
		{name: "exec/not-running", run: func(s *suite) {
			spec, c := s.created(Program{})
			_, _, err := s.rt.Exec(s.ctx, spec.ID, c.Exec, patience)
			s.mustErr("Exec in a created container", err, runtime.ErrNotRunning)
			if _, err := s.rt.Start(s.ctx, spec.ID); err != nil {
				s.t.Fatal(err)
			}
			s.tg.WaitReady(s.t, spec)
			if _, err := s.rt.Stop(s.ctx, spec.ID, patience); err != nil {
				s.t.Fatal(err)
			}
			_, _, err = s.rt.Exec(s.ctx, spec.ID, c.Exec, patience)
			s.mustErr("Exec in a stopped container", err, runtime.ErrNotRunning)
			_, _, err = s.rt.Exec(s.ctx, "no-such-container", c.Exec, patience)
			s.mustErr("Exec in a missing container", err, runtime.ErrNotFound)
		}},
		{name: "exec/empty-command", run: func(s *suite) {
			spec, _, _ := s.started(Program{})
			_, _, err := s.rt.Exec(s.ctx, spec.ID, nil, patience)
			if err == nil || errors.Is(err, runtime.ErrExecTimeout) {
				s.t.Errorf("Exec of no command: %v, want an error", err)
			}
		}},
	}
}
