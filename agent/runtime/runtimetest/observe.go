package runtimetest

import (
	"errors"
	"slices"
	"time"

	"github.com/berthdev/berth/agent/runtime"
)

func observeCases() []testCase {
	return []testCase{
		{name: "list/by-labels", run: func(s *suite) {
			c := s.image(Program{})
			exits := s.image(Program{ExitAfter: exitAfter, ExitCode: 7})
			type ctr struct {
				task, name string
				c          Container
			}
			all := []ctr{{"task-a", "web", c}, {"task-a", "sidecar", exits}, {"task-b", "web", c}}
			ids := make([]string, len(all))
			for i, x := range all {
				spec := s.spec(x.name, x.c)
				uid := "uid-" + x.task
				spec.ID = runtime.ContainerID(uid, x.name)
				spec.Labels[runtime.LabelTaskUID] = uid
				spec.Labels[runtime.LabelTask] = "team/" + x.task
				if _, err := s.rt.Create(s.ctx, spec); err != nil {
					s.t.Fatal(err)
				}
				ids[i] = spec.ID
			}
			running, stopped, idle := ids[0], ids[1], ids[2]
			pid, err := s.rt.Start(s.ctx, running)
			if err != nil {
				s.t.Fatal(err)
			}
			if _, err := s.rt.Start(s.ctx, stopped); err != nil {
				s.t.Fatal(err)
			}
			es := s.wait(stopped)

			tests := []struct {
				labels map[string]string
				want   []string
			}{
				{labels: map[string]string{runtime.LabelTaskUID: "uid-task-a"}, want: []string{stopped, running}},
				{labels: map[string]string{runtime.LabelTask: "team/task-b"}, want: []string{idle}},
				{labels: map[string]string{runtime.LabelTaskUID: "uid-task-a", runtime.LabelContainer: "web"}, want: []string{running}},
				{labels: map[string]string{runtime.LabelTaskUID: "uid-task-c"}, want: nil},
				{labels: nil, want: []string{stopped, running, idle}},
			}
			for _, tc := range tests {
				list, err := s.rt.List(s.ctx, tc.labels)
				if err != nil {
					s.t.Fatal(err)
				}
				var got []string
				for _, i := range list {
					got = append(got, i.ID)
				}
				want := slices.Clone(tc.want)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					s.t.Errorf("List(%v) = %v, want %v, sorted by ID", tc.labels, got, want)
				}
				for _, i := range list {
					switch i.ID {
					case running:
						if i.Status != runtime.StatusRunning || i.Pid != pid || i.Exit != nil {
							s.t.Errorf("running container listed as %+v", i)
						}
					case stopped:
						if i.Status != runtime.StatusStopped || i.Pid != 0 || i.Exit == nil || i.Exit.Code != 7 || !i.Exit.ExitedAt.Equal(es.ExitedAt) {
							s.t.Errorf("stopped container listed as %+v", i)
						}
					case idle:
						if i.Status != runtime.StatusCreated || i.Pid != 0 || i.Exit != nil {
							s.t.Errorf("created container listed as %+v", i)
						}
					}
					if i.Labels[runtime.LabelTaskUID] == "" || i.CreatedAt.IsZero() {
						s.t.Errorf("container listed without its labels or creation time: %+v", i)
					}
				}
			}
		}},
		{name: "stats", run: func(s *suite) {
			spec, _ := s.created(Program{})
			_, err := s.rt.Stats(s.ctx, spec.ID)
			s.mustErr("Stats of a created container", err, runtime.ErrNotRunning)
			if _, err := s.rt.Start(s.ctx, spec.ID); err != nil {
				s.t.Fatal(err)
			}
			s.tg.WaitReady(s.t, spec)
			st, err := s.rt.Stats(s.ctx, spec.ID)
			if err != nil {
				s.t.Fatalf("Stats of a running container: %v", err)
			}
			if st.Time.IsZero() {
				s.t.Errorf("stats %+v have no time", st)
			}
			if _, err := s.rt.Stop(s.ctx, spec.ID, patience); err != nil {
				s.t.Fatal(err)
			}
			_, err = s.rt.Stats(s.ctx, spec.ID)
			s.mustErr("Stats of a stopped container", err, runtime.ErrNotRunning)
			_, err = s.rt.Stats(s.ctx, "no-such-container")
			s.mustErr("Stats of a missing container", err, runtime.ErrNotFound)
		}},
		{name: "version", run: func(s *suite) {
			if v, err := s.rt.Version(s.ctx); err != nil || v == "" {
				s.t.Errorf("Version = %q, %v", v, err)
			}
		}},
	}
}

func imageCases() []testCase {
	return []testCase{
		{name: "images/list-and-remove", run: func(s *suite) {
			before := time.Now().Add(-time.Minute)
			ref := s.image(Program{}).Image
			other := s.tg.Container(s.t, Program{}).Image
			s.tg.Import(s.t, other)
			imgs, err := s.rt.Images(s.ctx)
			if err != nil {
				s.t.Fatal(err)
			}
			byRef := map[string]runtime.ImageInfo{}
			for _, i := range imgs {
				byRef[i.Ref] = i
			}
			if i, ok := byRef[ref]; !ok || i.PulledAt.Before(before) || i.Digest == "" {
				s.t.Errorf("pulled image listed as %+v (listed: %v), want it with its pull time", i, ok)
			}
			if i, ok := byRef[other]; !ok || !i.PulledAt.IsZero() {
				s.t.Errorf("imported image listed as %+v (listed: %v), want it without a pull time", i, ok)
			}
			for _, r := range []string{ref, ref} { // the second time, it is gone
				if err := s.rt.RemoveImage(s.ctx, r); err != nil {
					s.t.Errorf("RemoveImage(%s): %v", r, err)
				}
			}
			imgs, _ = s.rt.Images(s.ctx)
			for _, i := range imgs {
				if i.Ref == ref {
					s.t.Errorf("removed image still listed: %+v", i)
				}
			}
			_, err = s.rt.Create(s.ctx, s.spec("app", Container{Image: ref}))
			s.mustErr("create from a removed image", err, runtime.ErrNotFound)
			_, err = s.rt.ImageUser(s.ctx, ref)
			s.mustErr("ImageUser of a removed image", err, runtime.ErrNotFound)
		}},
		{name: "image-user", run: func(s *suite) {
			for _, want := range []string{"", "1000:1000", "nobody"} {
				ref := s.image(Program{User: want}).Image
				if got, err := s.rt.ImageUser(s.ctx, ref); err != nil || got != want {
					s.t.Errorf("ImageUser of an image whose config says %q: %q, %v", want, got, err)
				}
			}
			short := s.image(Program{User: "1000"}).Image
			short = short[:len(short)-len(":latest")]
			if got, err := s.rt.ImageUser(s.ctx, short); err != nil || got != "1000" {
				s.t.Errorf("ImageUser(%s), the short form: %q, %v; want 1000", short, got, err)
			}
			_, err := s.rt.ImageUser(s.ctx, s.tg.Container(s.t, Program{User: "1000"}).Image)
			s.mustErr("ImageUser of an image not pulled", err, runtime.ErrNotFound)
			var re *runtime.ReferenceError
			if _, err := s.rt.ImageUser(s.ctx, "Shop/App:1"); !errors.As(err, &re) {
				s.t.Errorf("ImageUser of a malformed reference: %v, want a *ReferenceError", err)
			}
		}},
	}
}
