package runtimetest

import (
	"context"
	"time"

	"github.com/berthdev/berth/agent/runtime"
)

func lifecycleCases() []testCase {
	return []testCase{
		{name: "start/running-left-alone", run: func(s *suite) {
			spec, _, pid := s.started(Program{})
			if pid == 0 {
				s.t.Fatal("Start returned pid 0")
			}
			again, err := s.rt.Start(s.ctx, spec.ID)
			if err != nil || again != pid {
				s.t.Errorf("Start of a running container: pid %d, %v; want %d", again, err, pid)
			}
			if info, _ := s.info(spec.ID); info.Status != runtime.StatusRunning || info.Pid != pid || info.Exit != nil {
				s.t.Errorf("listed as %+v, want running with pid %d", info, pid)
			}
		}},
		{name: "start/stopped-started-again", run: func(s *suite) {
			spec, _, pid := s.started(Program{ExitAfter: exitAfter, ExitCode: 7})
			if es := s.wait(spec.ID); es.Code != 7 {
				s.t.Fatalf("first run exited %+v, want 7", es)
			}
			pid2, err := s.rt.Start(s.ctx, spec.ID)
			if err != nil || pid2 == 0 || pid2 == pid {
				s.t.Fatalf("restart: pid %d, %v; want a new process", pid2, err)
			}
			// The new process runs its program again, to the end.
			if es := s.wait(spec.ID); es.Code != 7 {
				s.t.Errorf("second run exited %+v, want 7", es)
			}
		}},
		{name: "start/missing", run: func(s *suite) {
			_, err := s.rt.Start(s.ctx, "no-such-container")
			s.mustErr("Start of a missing container", err, runtime.ErrNotFound)
		}},
		{name: "wait/exit-code", run: func(s *suite) {
			before := time.Now()
			spec, _, _ := s.started(Program{ExitAfter: exitAfter, ExitCode: 7})
			es := s.wait(spec.ID)
			if es.Code != 7 || es.OOMKilled || es.ExitedAt.IsZero() {
				s.t.Errorf("exit %+v, want code 7 with a time", es)
			}
			if es.ExitedAt.Before(before.Add(-time.Minute)) {
				s.t.Errorf("ExitedAt %s, want about now", es.ExitedAt)
			}
			// After the exit: at once, the same status.
			if again := s.wait(spec.ID); again.Code != 7 || !again.ExitedAt.Equal(es.ExitedAt) {
				s.t.Errorf("wait after the exit: %+v, want %+v", again, es)
			}
			info, _ := s.info(spec.ID)
			if info.Status != runtime.StatusStopped || info.Pid != 0 || info.Exit == nil || info.Exit.Code != 7 || !info.Exit.ExitedAt.Equal(es.ExitedAt) {
				s.t.Errorf("listed as %+v, want stopped with exit %+v", info, es)
			}
		}},
		{name: "wait/context-ends-first", run: func(s *suite) {
			spec, _, _ := s.started(Program{})
			ctx, cancel := context.WithCancel(s.ctx)
			ch, err := s.rt.Wait(ctx, spec.ID)
			if err != nil {
				s.t.Fatal(err)
			}
			cancel()
			select {
			case es, ok := <-ch:
				if ok {
					s.t.Errorf("got %+v from a wait whose context ended, want the channel closed", es)
				}
			case <-time.After(patience):
				s.t.Fatal("the wait channel stayed open after its context ended")
			}
		}},
		{name: "wait/not-started", run: func(s *suite) {
			spec, _ := s.created(Program{})
			_, err := s.rt.Wait(s.ctx, spec.ID)
			s.mustErr("Wait on a created container", err, runtime.ErrNotStarted)
			_, err = s.rt.Wait(s.ctx, "no-such-container")
			s.mustErr("Wait on a missing container", err, runtime.ErrNotFound)
		}},
		{name: "oom", run: func(s *suite) {
			events, errc := s.events()
			spec, _, pid := s.started(Program{OOM: true})
			es := s.wait(spec.ID)
			if es.Code != 137 || !es.OOMKilled {
				s.t.Errorf("exit %+v, want 137 and OOMKilled", es)
			}
			s.nextEvent(events, errc, spec.ID, func(ev runtime.Event) bool { return ev.Type == runtime.EventOOM })
			ev := s.nextEvent(events, errc, spec.ID, isExit)
			if ev.Pid != pid || ev.Exit == nil || ev.Exit.Code != 137 || !ev.Exit.OOMKilled {
				s.t.Errorf("exit event %+v (exit %+v), want pid %d, 137 and OOMKilled", ev, ev.Exit, pid)
			}
			if info, _ := s.info(spec.ID); info.Exit == nil || !info.Exit.OOMKilled || info.Exit.Code != 137 {
				s.t.Errorf("listed as %+v, want the OOM kill", info)
			}
			if st, err := s.rt.Stop(s.ctx, spec.ID, time.Second); err != nil || st.Code != 137 || !st.OOMKilled {
				s.t.Errorf("Stop after the OOM kill: %+v, %v; want its exit status", st, err)
			}
		}},
		{name: "events/exit", run: func(s *suite) {
			events, errc := s.events()
			spec, _, pid := s.started(Program{ExitAfter: exitAfter, ExitCode: 7})
			ev := s.nextEvent(events, errc, spec.ID, func(runtime.Event) bool { return true })
			if ev.Type != runtime.EventExit || ev.Pid != pid || ev.Exit == nil || ev.Exit.Code != 7 || ev.Exit.OOMKilled || ev.Time.IsZero() {
				s.t.Errorf("first event %+v (exit %+v), want the exit of pid %d with code 7", ev, ev.Exit, pid)
			}
		}},
		{name: "events/end-with-context", run: func(s *suite) {
			ctx, cancel := context.WithCancel(s.ctx)
			events, errc := s.rt.Events(ctx)
			cancel()
			deadline := time.After(patience)
			for events != nil || errc != nil {
				select {
				case _, ok := <-events:
					if !ok {
						events = nil
					}
				case err, ok := <-errc:
					if !ok {
						errc = nil
					} else if err != nil {
						s.t.Errorf("the stream failed with %v when its context ended, want it closed", err)
					}
				case <-deadline:
					s.t.Fatal("the event channels stayed open after the context ended")
				}
			}
		}},
		{name: "delete", run: func(s *suite) {
			events, errc := s.events()
			spec, _, pid := s.started(Program{IgnoreSIGTERM: true})
			if err := s.rt.Delete(s.ctx, spec.ID); err != nil {
				s.t.Fatal(err)
			}
			if _, ok := s.info(spec.ID); ok {
				s.t.Error("the deleted container is still listed")
			}
			ev := s.nextEvent(events, errc, spec.ID, isExit)
			if ev.Pid != pid || ev.Exit == nil || ev.Exit.Code != 137 {
				s.t.Errorf("exit event of the deleted container %+v (exit %+v), want pid %d killed (137)", ev, ev.Exit, pid)
			}
			if err := s.rt.Delete(s.ctx, spec.ID); err != nil {
				s.t.Errorf("deleting again: %v", err)
			}
			if err := s.rt.Delete(s.ctx, "no-such-container"); err != nil {
				s.t.Errorf("deleting a missing container: %v", err)
			}
			_, err := s.rt.Stop(s.ctx, spec.ID, time.Second)
			s.mustErr("Stop of a deleted container", err, runtime.ErrNotFound)
			// The ID is free again.
			if _, err := s.rt.Create(s.ctx, spec); err != nil {
				s.t.Errorf("create after delete: %v", err)
			}
			created, _ := s.created(Program{})
			if err := s.rt.Delete(s.ctx, created.ID); err != nil {
				s.t.Errorf("deleting a created container: %v", err)
			}
			if _, ok := s.info(created.ID); ok {
				s.t.Error("the deleted container is still listed")
			}
		}},
	}
}
