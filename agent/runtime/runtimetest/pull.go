package runtimetest

import (
	"errors"
	"strings"

	"github.com/berthdev/berth/agent/runtime"
)

// local is what a runtime has of an image before a pull.
type local int

const (
	absent   local = iota // nothing
	pulled                // pulled by the runtime earlier
	imported              // present, not pulled by the runtime (an operator's import)
)

func (l local) String() string { return [...]string{"absent", "pulled", "imported"}[l] }

// pullOutcome is what a pull gives.
type pullOutcome int

const (
	fresh         pullOutcome = iota // pulled from the registry
	cached                           // the local copy, registry not needed
	cachedOnError                    // the local copy after the registry failed (PullError set)
	unavailable                      // an *ImageError of kind Unavailable
)

func pullCases() []testCase {
	tests := []struct {
		policy runtime.PullPolicy
		local  local
		down   bool
		want   pullOutcome
	}{
		{policy: runtime.PullDefault, local: absent, want: fresh},
		{policy: runtime.PullDefault, local: pulled, want: fresh},
		{policy: runtime.PullDefault, local: pulled, down: true, want: cachedOnError},
		{policy: runtime.PullDefault, local: imported, down: true, want: cachedOnError},
		{policy: runtime.PullDefault, local: absent, down: true, want: unavailable},
		{policy: "", local: pulled, down: true, want: cachedOnError},
		{policy: runtime.PullAlways, local: pulled, want: fresh},
		{policy: runtime.PullAlways, local: pulled, down: true, want: unavailable},
		{policy: runtime.PullOnce, local: absent, want: fresh},
		{policy: runtime.PullOnce, local: pulled, down: true, want: cached},
		{policy: runtime.PullOnce, local: imported, want: fresh},
		{policy: runtime.PullOnce, local: imported, down: true, want: unavailable},
		{policy: runtime.PullPreferCached, local: absent, want: fresh},
		{policy: runtime.PullPreferCached, local: absent, down: true, want: unavailable},
		{policy: runtime.PullPreferCached, local: pulled, down: true, want: cached},
		{policy: runtime.PullPreferCached, local: imported, down: true, want: cached},
	}
	var out []testCase
	for _, tc := range tests {
		name := "pull/" + string(tc.policy) + "-" + tc.local.String()
		if tc.policy == "" {
			name = "pull/unset-" + tc.local.String()
		}
		if tc.down {
			name += "-registry-down"
		}
		out = append(out, testCase{name: name, run: func(s *suite) {
			ref := s.tg.Container(s.t, Program{}).Image
			switch tc.local {
			case pulled:
				if _, err := s.rt.Pull(s.ctx, ref, runtime.PullAlways, nil); err != nil {
					s.t.Fatal(err)
				}
			case imported:
				s.tg.Import(s.t, ref)
			}
			s.tg.SetRegistryDown(s.t, tc.down)
			img, err := s.rt.Pull(s.ctx, ref, tc.policy, nil)
			s.tg.SetRegistryDown(s.t, false)
			s.checkPull(ref, tc.want, img, err)
		}})
	}
	return append(out,
		testCase{name: "pull/malformed-reference", run: func(s *suite) {
			for _, ref := range []string{"Shop/App:1", "app:1:2", ""} {
				var re *runtime.ReferenceError
				if _, err := s.rt.Pull(s.ctx, ref, runtime.PullDefault, nil); !errors.As(err, &re) {
					s.t.Errorf("Pull(%q): %v, want a *ReferenceError", ref, err)
				}
			}
		}},
		testCase{name: "pull/missing-image", run: func(s *suite) {
			ref := s.tg.MissingImage(s.t)
			for _, policy := range []runtime.PullPolicy{runtime.PullDefault, runtime.PullAlways, runtime.PullOnce, runtime.PullPreferCached} {
				var ie *runtime.ImageError
				if _, err := s.rt.Pull(s.ctx, ref, policy, nil); !errors.As(err, &ie) || ie.Kind != runtime.ImageNotFound || ie.Retryable() {
					s.t.Errorf("Pull %s of a missing image: %v, want an *ImageError of kind NotFound", policy, err)
				}
			}
		}},
		testCase{name: "pull/unknown-policy", run: func(s *suite) {
			ref := s.tg.Container(s.t, Program{}).Image
			if _, err := s.rt.Pull(s.ctx, ref, "sometimes", nil); err == nil {
				s.t.Error("a pull with an unknown policy succeeded")
			}
		}},
		testCase{name: "pull/normalized-reference", run: func(s *suite) {
			ref := s.tg.Container(s.t, Program{}).Image
			short := strings.TrimSuffix(ref, ":latest")
			img, err := s.rt.Pull(s.ctx, short, runtime.PullDefault, nil)
			if err != nil {
				s.t.Fatal(err)
			}
			if img.Ref != ref {
				s.t.Errorf("Pull(%q).Ref = %q, want %q", short, img.Ref, ref)
			}
			again, err := s.rt.Pull(s.ctx, ref, runtime.PullPreferCached, nil)
			if err != nil || !again.Cached || again.Digest != img.Digest {
				s.t.Errorf("Pull(%q) prefer-cached after Pull(%q): %+v, %v; want the same image, cached", ref, short, again, err)
			}
		}},
	)
}

func (s *suite) checkPull(ref string, want pullOutcome, img runtime.Image, err error) {
	s.t.Helper()
	if want == unavailable {
		var ie *runtime.ImageError
		if !errors.As(err, &ie) || ie.Kind != runtime.ImageUnavailable || !ie.Retryable() {
			s.t.Fatalf("got %+v, %v; want an *ImageError of kind Unavailable", img, err)
		}
		if !strings.Contains(ie.Reason, "503") {
			s.t.Errorf("reason %q does not say what the registry answered", ie.Reason)
		}
		return
	}
	if err != nil {
		s.t.Fatal(err)
	}
	if img.Ref != ref || !strings.HasPrefix(img.Digest, "sha256:") {
		s.t.Errorf("image %+v, want ref %s with a digest", img, ref)
	}
	if got := img.Cached; got != (want != fresh) {
		s.t.Errorf("Cached = %v, want %v", got, want != fresh)
	}
	var ie *runtime.ImageError
	if want == cachedOnError {
		if !errors.As(img.PullError, &ie) || ie.Kind != runtime.ImageUnavailable {
			s.t.Errorf("PullError = %v, want the registry's failure as an *ImageError of kind Unavailable", img.PullError)
		}
	} else if img.PullError != nil {
		s.t.Errorf("PullError = %v, want none", img.PullError)
	}
	// What was pulled or used can be created from.
	s.n++
	spec := s.spec("pulled", Container{Image: ref})
	if _, err := s.rt.Create(s.ctx, spec); err != nil {
		s.t.Errorf("create from the image: %v", err)
	}
}
