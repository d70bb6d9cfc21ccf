package runtimetest

import (
	"errors"
	"maps"
	"strings"

	"github.com/berthdev/berth/agent/runtime"
)

func createCases() []testCase {
	return []testCase{
		{name: "create/idempotent", run: func(s *suite) {
			c := s.image(Program{})
			spec := s.spec("app", c)
			first, err := s.rt.Create(s.ctx, spec)
			if err != nil {
				s.t.Fatal(err)
			}
			wantLabels := maps.Clone(spec.Labels)
			if spec.LogPath != "" {
				wantLabels[runtime.LabelLogPath] = spec.LogPath
			}
			if first.ID != spec.ID || first.Image != c.Image || first.Status != runtime.StatusCreated || first.Pid != 0 ||
				first.Exit != nil || first.CreatedAt.IsZero() || first.LogPath != spec.LogPath || !hasLabels(first.Labels, wantLabels) {
				s.t.Errorf("Create = %+v, want a created container of %s with labels %v", first, c.Image, wantLabels)
			}
			second, err := s.rt.Create(s.ctx, spec)
			if err != nil {
				s.t.Fatalf("the same create again: %v", err)
			}
			if second.ID != first.ID || !second.CreatedAt.Equal(first.CreatedAt) {
				s.t.Errorf("the same create again = %+v, want the first container %+v", second, first)
			}
			if list, _ := s.rt.List(s.ctx, nil); len(list) != 1 {
				s.t.Errorf("%d containers after two creates, want 1", len(list))
			}
		}},
		{name: "create/exists-otherwise", run: func(s *suite) {
			c := s.image(Program{})
			other := s.image(Program{})
			spec := s.spec("app", c)
			if _, err := s.rt.Create(s.ctx, spec); err != nil {
				s.t.Fatal(err)
			}
			otherImage := spec
			otherImage.Image = other.Image
			_, err := s.rt.Create(s.ctx, otherImage)
			s.mustErr("create with another image", err, runtime.ErrAlreadyExists)

			otherLabel := spec
			otherLabel.Labels = maps.Clone(spec.Labels)
			otherLabel.Labels[runtime.LabelRevision] = "contract:2"
			_, err = s.rt.Create(s.ctx, otherLabel)
			s.mustErr("create with another label value", err, runtime.ErrAlreadyExists)

			moreLabels := spec
			moreLabels.Labels = maps.Clone(spec.Labels)
			moreLabels.Labels["berth.dev/extra"] = ""
			_, err = s.rt.Create(s.ctx, moreLabels)
			s.mustErr("create with an extra label, empty", err, runtime.ErrAlreadyExists)
		}},
		{name: "create/image-not-pulled", run: func(s *suite) {
			c := s.tg.Container(s.t, Program{})
			spec := s.spec("app", c)
			_, err := s.rt.Create(s.ctx, spec)
			s.mustErr("create from an image not pulled", err, runtime.ErrNotFound)
			if _, ok := s.info(spec.ID); ok {
				s.t.Errorf("a failed create left the container")
			}
		}},
		{name: "create/failure-leaves-nothing", run: func(s *suite) {
			c := s.image(Program{})
			spec := s.spec("app", c)
			broken := spec
			repair := s.tg.FailCreate(s.t, &broken)
			if _, err := s.rt.Create(s.ctx, broken); err == nil {
				s.t.Fatal("the create the harness broke succeeded")
			}
			if _, ok := s.info(spec.ID); ok {
				s.t.Errorf("a failed create left the container")
			}
			repair()
			// Whatever it left would be in the way of the same ID.
			if _, err := s.rt.Create(s.ctx, spec); err != nil {
				s.t.Errorf("create after a failed one: %v", err)
			}
		}},
		{name: "create/invalid-spec", run: func(s *suite) {
			c := s.image(Program{})
			bad := s.spec("app", c)
			bad.ID = "not a valid id!"
			if _, err := s.rt.Create(s.ctx, bad); err == nil {
				s.t.Error("create with an invalid ID succeeded")
			}
			malformed := s.spec("app", c)
			malformed.Image = "Shop/App:1"
			var re *runtime.ReferenceError
			if _, err := s.rt.Create(s.ctx, malformed); !errors.As(err, &re) {
				s.t.Errorf("create with a malformed image reference: %v, want a *ReferenceError", err)
			}
			if list, _ := s.rt.List(s.ctx, nil); len(list) != 0 {
				s.t.Errorf("invalid creates left %d containers", len(list))
			}
		}},
		{name: "create/normalized-image", run: func(s *suite) {
			c := s.image(Program{})
			short := s.spec("app", c)
			short.Image = strings.TrimSuffix(c.Image, ":latest")
			info, err := s.rt.Create(s.ctx, short)
			if err != nil {
				s.t.Fatal(err)
			}
			if info.Image != c.Image {
				s.t.Errorf("Image = %q, want the normalized %q", info.Image, c.Image)
			}
			// The same container, however its image is spelled.
			if _, err := s.rt.Create(s.ctx, s.spec("app", c)); err != nil {
				s.t.Errorf("create with the full reference: %v", err)
			}
		}},
	}
}

// hasLabels reports whether got has every label of want. A runtime may add labels
// of its own (containerd records the image's stop signal).
func hasLabels(got, want map[string]string) bool {
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			return false
		}
	}
	return true
}
