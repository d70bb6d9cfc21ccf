package containerd_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthdev/berth/agent/runtime"
	"github.com/berthdev/berth/agent/runtime/containerd"
	regtest "github.com/berthdev/berth/test/testenv/registry"
)

// TestPullPolicies shows when each policy contacts the registry, observed through the
// registry's request log.
func TestPullPolicies(t *testing.T) {
	type state int
	const (
		absent         state = iota // nothing local
		pulledByAgent               // pulled earlier by the runtime
		importedByHand              // local, but not pulled by the runtime (no pulled-at label)
	)
	tests := []struct {
		name          string
		policy        runtime.PullPolicy
		local         state
		registryDown  bool
		wantContacted bool
		wantCached    bool
		wantErrKind   runtime.ImageErrorKind
	}{
		{name: "default pulls when absent", policy: runtime.PullDefault, local: absent, wantContacted: true},
		{name: "default pulls when cached", policy: runtime.PullDefault, local: pulledByAgent, wantContacted: true},
		{name: "default falls back to the cache", policy: runtime.PullDefault, local: pulledByAgent, registryDown: true, wantContacted: true, wantCached: true},
		{name: "default fails without a cache", policy: runtime.PullDefault, local: absent, registryDown: true, wantContacted: true, wantErrKind: runtime.ImageUnavailable},
		{name: "always pulls when cached", policy: runtime.PullAlways, local: pulledByAgent, wantContacted: true},
		{name: "always fails when the registry is down", policy: runtime.PullAlways, local: pulledByAgent, registryDown: true, wantContacted: true, wantErrKind: runtime.ImageUnavailable},
		{name: "once pulls when absent", policy: runtime.PullOnce, local: absent, wantContacted: true},
		{name: "once uses its own pull", policy: runtime.PullOnce, local: pulledByAgent, registryDown: true, wantCached: true},
		{name: "once pulls over an image it did not pull", policy: runtime.PullOnce, local: importedByHand, wantContacted: true},
		{name: "prefer-cached pulls when absent", policy: runtime.PullPreferCached, local: absent, wantContacted: true},
		{name: "prefer-cached uses any cached image", policy: runtime.PullPreferCached, local: importedByHand, registryDown: true, wantCached: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			reg, ref := e.registry("team/app")
			if tc.local != absent {
				if _, err := e.rt.Pull(e.ctx, ref, runtime.PullAlways, nil); err != nil {
					t.Fatal(err)
				}
			}
			if tc.local == importedByHand {
				e.dropPulledLabel(ref)
			}
			reg.ResetRequests()
			reg.SetUnavailable(tc.registryDown)

			img, err := e.rt.Pull(e.ctx, ref, tc.policy, nil)

			if got := reg.RepoRequests("team/app") > 0; got != tc.wantContacted {
				t.Errorf("registry contacted = %v, want %v (requests %v)", got, tc.wantContacted, reg.Requests())
			}
			if tc.wantErrKind != "" {
				var ie *runtime.ImageError
				if !errors.As(err, &ie) || ie.Kind != tc.wantErrKind {
					t.Fatalf("got %v, want an ImageError of kind %s", err, tc.wantErrKind)
				}
				if !strings.Contains(ie.Reason, "503") {
					t.Errorf("reason %q does not say what the registry answered", ie.Reason)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if img.Cached != tc.wantCached {
				t.Errorf("Cached = %v, want %v", img.Cached, tc.wantCached)
			}
			if (img.PullError != nil) != (tc.wantCached && tc.wantContacted) {
				t.Errorf("PullError = %v", img.PullError)
			}
			if img.Ref != ref || !strings.HasPrefix(img.Digest, "sha256:") {
				t.Errorf("image %+v, want ref %s with a digest", img, ref)
			}
		})
	}
}

// dropPulledLabel makes a pulled image look as if it had been imported by other means.
func (e *env) dropPulledLabel(ref string) {
	c, ctx := e.client()
	img, err := c.ImageService().Get(ctx, ref)
	if err != nil {
		e.t.Fatal(err)
	}
	img.Labels = nil
	if _, err := c.ImageService().Update(ctx, img, "labels"); err != nil {
		e.t.Fatal(err)
	}
}

// TestPullNewDigest: a moved tag is picked up by default, not by prefer-cached, and a
// cached image survives its deletion from the registry.
func TestPullNewDigest(t *testing.T) {
	e := newEnv(t)
	reg := regtest.Start(t)
	ref, d1 := reg.Push(t, regtest.TestImage(t, nil), "team/app", "v1")
	if img, err := e.rt.Pull(e.ctx, ref, runtime.PullDefault, nil); err != nil || img.Digest != d1 {
		t.Fatalf("first pull: %+v, %v", img, err)
	}
	_, d2 := reg.Push(t, regtest.TestImage(t, nil, regtest.WithLabels("build", "2")), "team/app", "v1")
	if d1 == d2 {
		t.Fatal("the two images have the same digest")
	}
	if img, err := e.rt.Pull(e.ctx, ref, runtime.PullPreferCached, nil); err != nil || img.Digest != d1 {
		t.Errorf("prefer-cached: %+v, %v; want the cached %s", img, err, d1)
	}
	if img, err := e.rt.Pull(e.ctx, ref, runtime.PullDefault, nil); err != nil || img.Digest != d2 {
		t.Errorf("default: %+v, %v; want the new %s", img, err, d2)
	}
	reg.DeleteManifest(t, "team/app", d2)
	if img, err := e.rt.Pull(e.ctx, ref, runtime.PullPreferCached, nil); err != nil || img.Digest != d2 {
		t.Errorf("prefer-cached after deletion from the registry: %+v, %v", img, err)
	}
	img, err := e.rt.Pull(e.ctx, ref, runtime.PullAlways, nil)
	var ie *runtime.ImageError
	if !errors.As(err, &ie) || ie.Kind != runtime.ImageNotFound {
		t.Fatalf("always after deletion: %+v, %v; want NotFound", img, err)
	}
}

func TestPullPrivateImage(t *testing.T) {
	e := newEnv(t)
	reg := regtest.Start(t, regtest.WithBasicAuth("berth", "s3cret"))
	ref, digest := reg.Push(t, regtest.TestImage(t, nil), "private/app", "v1")

	tests := []struct {
		name       string
		auth       *runtime.Auth
		wantReason string
	}{
		{name: "no credentials", wantReason: "401 Unauthorized"},
		{name: "wrong password", auth: &runtime.Auth{Username: "berth", Password: "wrong"}, wantReason: "401 Unauthorized"},
		{name: "right credentials", auth: &runtime.Auth{Username: "berth", Password: "s3cret"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img, err := e.rt.Pull(e.ctx, ref, runtime.PullAlways, tc.auth)
			if tc.wantReason == "" {
				if err != nil || img.Digest != digest {
					t.Fatalf("pull: %+v, %v", img, err)
				}
				return
			}
			var ie *runtime.ImageError
			if !errors.As(err, &ie) {
				t.Fatalf("got %v, want an ImageError", err)
			}
			if ie.Kind != runtime.ImageUnauthorized || !strings.Contains(ie.Reason, tc.wantReason) {
				t.Errorf("got kind %s reason %q, want Unauthorized with %q", ie.Kind, ie.Reason, tc.wantReason)
			}
			if ie.Retryable() {
				t.Errorf("an authorization failure is not retryable")
			}
			if tc.auth != nil && strings.Contains(err.Error(), tc.auth.Password) {
				t.Errorf("the error shows the password: %v", err)
			}
			t.Logf("error: %v", err)
		})
	}
}

func TestPullErrors(t *testing.T) {
	e := newEnv(t)
	reg, _ := e.registry("team/app")
	tests := []struct {
		name       string
		ref        string
		wantRefErr bool
		wantKind   runtime.ImageErrorKind
		wantReason string
	}{
		{name: "malformed", ref: "Not A Reference!", wantRefErr: true},
		{name: "uppercase repository", ref: reg.Addr + "/Team/App:v1", wantRefErr: true},
		{name: "missing tag", ref: reg.Ref("team/app", "nope"), wantKind: runtime.ImageNotFound, wantReason: "manifest unknown"},
		{name: "missing repository", ref: reg.Ref("team/nothing", "v1"), wantKind: runtime.ImageNotFound, wantReason: "404 Not Found"},
		{name: "unreachable registry", ref: "127.0.0.1:1/team/app:v1", wantKind: runtime.ImageUnavailable, wantReason: "connection refused"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.rt.Pull(e.ctx, tc.ref, runtime.PullDefault, nil)
			var re *runtime.ReferenceError
			if tc.wantRefErr {
				if !errors.As(err, &re) {
					t.Fatalf("got %v, want a ReferenceError", err)
				}
				return
			}
			var ie *runtime.ImageError
			if !errors.As(err, &ie) {
				t.Fatalf("got %v, want an ImageError", err)
			}
			if ie.Kind != tc.wantKind || !strings.Contains(ie.Reason, tc.wantReason) {
				t.Errorf("got kind %s reason %q, want %s with %q", ie.Kind, ie.Reason, tc.wantKind, tc.wantReason)
			}
			t.Logf("error: %v", err)
		})
	}
	// Nothing is created for an image that was never pulled.
	_, err := e.rt.Create(e.ctx, e.spec("app", reg.Ref("team/app", "v1")))
	if !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("create from an image not pulled: %v, want ErrNotFound", err)
	}
}

// TestPullThroughHostsConfig: a registry name that resolves nowhere is served by the
// loopback registry that its hosts.toml (containerd's certs.d layout) points to, and
// the image's credentials reach it.
func TestPullThroughHostsConfig(t *testing.T) {
	e := newEnv(t)
	reg := regtest.Start(t, regtest.WithBasicAuth("berth", "s3cret"))
	_, digest := reg.Push(t, regtest.TestImage(t, nil), "team/app", "v1")

	name := e.ns + ".registry.invalid"
	dir := filepath.Join(daemon.HostsDir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	hosts := fmt.Sprintf("server = %q\n\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n",
		"http://"+reg.Addr, "http://"+reg.Addr)
	if err := os.WriteFile(filepath.Join(dir, "hosts.toml"), []byte(hosts), 0o644); err != nil {
		t.Fatal(err)
	}

	ref := name + "/team/app:v1"
	_, err := e.rt.Pull(e.ctx, ref, runtime.PullAlways, nil)
	var ie *runtime.ImageError
	if !errors.As(err, &ie) || ie.Kind != runtime.ImageUnauthorized {
		t.Fatalf("anonymous pull: %v, want Unauthorized from the configured host", err)
	}
	img, err := e.rt.Pull(e.ctx, ref, runtime.PullAlways, &runtime.Auth{Username: "berth", Password: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	if img.Ref != ref || img.Digest != digest {
		t.Errorf("pulled %+v, want %s at %s", img, ref, digest)
	}
	if reg.RepoRequests("team/app") == 0 {
		t.Errorf("the configured host was not contacted")
	}
}

// TestPrivateImageNotReusedWithOtherCredentials: an image pulled with one task's
// credentials serves, from the cache, only pulls with the same credentials. Others
// (none, wrong ones) go to the registry, which refuses them, and never fall back to
// the cache; a restarted agent pulls again before its first reuse.
func TestPrivateImageNotReusedWithOtherCredentials(t *testing.T) {
	e := newEnv(t)
	reg := regtest.Start(t, regtest.WithBasicAuth("berth", "s3cret"))
	ref, digest := reg.Push(t, regtest.TestImage(t, nil), "private/app", "v1")
	right := &runtime.Auth{Username: "berth", Password: "s3cret"}
	if _, err := e.rt.Pull(e.ctx, ref, runtime.PullPreferCached, right); err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		name          string
		policy        runtime.PullPolicy
		auth          *runtime.Auth
		wantErr       bool
		wantContacted bool
	}{
		{name: "same credentials use the cache", policy: runtime.PullPreferCached, auth: right},
		{name: "no credentials go to the registry", policy: runtime.PullPreferCached, wantErr: true, wantContacted: true},
		{name: "wrong credentials go to the registry", policy: runtime.PullPreferCached, auth: &runtime.Auth{Username: "berth", Password: "guess"}, wantErr: true, wantContacted: true},
		{name: "once does not trust the cache either", policy: runtime.PullOnce, wantErr: true, wantContacted: true},
		{name: "default does not fall back to the cache", policy: runtime.PullDefault, wantErr: true, wantContacted: true},
		{name: "same credentials still use the cache", policy: runtime.PullPreferCached, auth: right},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			reg.ResetRequests()
			img, err := e.rt.Pull(e.ctx, ref, s.policy, s.auth)
			if (err != nil) != s.wantErr {
				t.Fatalf("pull: %+v, %v; want error %v", img, err, s.wantErr)
			}
			if err == nil && img.Digest != digest {
				t.Errorf("digest %s, want %s", img.Digest, digest)
			}
			if got := reg.RepoRequests("private/app") > 0; got != s.wantContacted {
				t.Errorf("registry contacted = %v, want %v", got, s.wantContacted)
			}
		})
	}

	t.Run("a restarted agent pulls again", func(t *testing.T) {
		rt2, err := containerd.New(e.ctx, containerd.Options{Address: daemon.Address, Namespace: e.ns,
			Snapshotter: daemon.Snapshotter, HostsDir: daemon.HostsDir, FIFODir: daemon.FIFODir, RuncRoot: daemon.RuncRoot})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = rt2.Close() }()
		reg.ResetRequests()
		if _, err := rt2.Pull(e.ctx, ref, runtime.PullPreferCached, right); err != nil {
			t.Fatal(err)
		}
		if reg.RepoRequests("private/app") == 0 {
			t.Error("a new process reused a private image without asking the registry")
		}
	})
}
