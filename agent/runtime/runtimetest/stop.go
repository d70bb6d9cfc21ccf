package runtimetest

import (
	"time"

	"github.com/berthdev/berth/agent/runtime"
)

func stopCases() []testCase {
	return []testCase{
		{name: "stop/SIGTERM-honoured", run: func(s *suite) {
			events, errc := s.events()
			spec, _, pid := s.ready(Program{TermExitCode: 3})
			start := time.Now()
			st, err := s.rt.Stop(s.ctx, spec.ID, patience)
			if err != nil {
				s.t.Fatal(err)
			}
			if st.Code != 3 || st.OOMKilled || st.ExitedAt.IsZero() {
				s.t.Errorf("Stop = %+v, want the code the process chose on SIGTERM, 3", st)
			}
			if took := time.Since(start); took > patience/2 {
				s.t.Errorf("stop took %s: the process did not end on SIGTERM", took)
			}
			ev := s.nextEvent(events, errc, spec.ID, isExit)
			if ev.Pid != pid || ev.Exit == nil || ev.Exit.Code != 3 {
				s.t.Errorf("exit event %+v (exit %+v), want pid %d with code 3", ev, ev.Exit, pid)
			}
			s.stoppedAgain(spec.ID, st)
		}},
		{name: "stop/SIGTERM-ignored", run: func(s *suite) {
			spec, _, _ := s.ready(Program{IgnoreSIGTERM: true})
			start := time.Now()
			st, err := s.rt.Stop(s.ctx, spec.ID, killTimeout)
			took := time.Since(start)
			if err != nil {
				s.t.Fatal(err)
			}
			if st.Code != 137 || st.OOMKilled {
				s.t.Errorf("Stop = %+v, want SIGKILL's 137", st)
			}
			if took < killTimeout || took > killTimeout+patience/2 {
				s.t.Errorf("stop took %s, want the %s timeout and a little", took, killTimeout)
			}
			s.stoppedAgain(spec.ID, st)
		}},
		{name: "stop/zero-timeout", run: func(s *suite) {
			spec, _, _ := s.ready(Program{IgnoreSIGTERM: true})
			st, err := s.rt.Stop(s.ctx, spec.ID, 0)
			if err != nil || st.Code != 137 {
				s.t.Errorf("Stop with no timeout = %+v, %v; want SIGKILL's 137", st, err)
			}
		}},
		{name: "stop/already-stopped", run: func(s *suite) {
			spec, _, _ := s.started(Program{ExitAfter: exitAfter, ExitCode: 7})
			es := s.wait(spec.ID)
			st, err := s.rt.Stop(s.ctx, spec.ID, patience)
			if err != nil || st.Code != 7 || !st.ExitedAt.Equal(es.ExitedAt) {
				s.t.Errorf("Stop of an exited container = %+v, %v; want its exit %+v", st, err, es)
			}
		}},
		{name: "stop/never-started", run: func(s *suite) {
			spec, _ := s.created(Program{})
			_, err := s.rt.Stop(s.ctx, spec.ID, time.Second)
			s.mustErr("Stop of a created container", err, runtime.ErrNotStarted)
			// It can still be started.
			if _, err := s.rt.Start(s.ctx, spec.ID); err != nil {
				s.t.Errorf("start after a stop of the created container: %v", err)
			}
			_, err = s.rt.Stop(s.ctx, "no-such-container", time.Second)
			s.mustErr("Stop of a missing container", err, runtime.ErrNotFound)
		}},
	}
}

// stoppedAgain checks that stopping a stopped container returns its status at once.
func (s *suite) stoppedAgain(id string, want runtime.ExitStatus) {
	s.t.Helper()
	start := time.Now()
	again, err := s.rt.Stop(s.ctx, id, patience)
	if err != nil || again.Code != want.Code || !again.ExitedAt.Equal(want.ExitedAt) {
		s.t.Errorf("second stop: %+v, %v; want %+v", again, err, want)
	}
	if took := time.Since(start); took > patience/2 {
		s.t.Errorf("second stop took %s", took)
	}
	if info, _ := s.info(id); info.Status != runtime.StatusStopped || info.Exit == nil || info.Exit.Code != want.Code {
		s.t.Errorf("listed as %+v, want stopped with code %d", info, want.Code)
	}
}
