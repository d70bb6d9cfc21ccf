package regtest_test

import (
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	regtest "github.com/berthdev/berth/test/testenv/registry"
)

func TestRegistryBasicAuth(t *testing.T) {
	reg := regtest.Start(t, regtest.WithBasicAuth("alice", "s3cret"))
	img, err := regtest.BuildImage(map[string][]byte{"etc/hello": []byte("hi\n")}, []string{"/bin/true"})
	if err != nil {
		t.Fatal(err)
	}
	ref, digest := reg.Push(t, img, "team/hello", "v1")
	if len(reg.Requests()) != 0 {
		t.Errorf("the push was recorded: %v", reg.Requests())
	}

	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		auth       authn.Authenticator
		wantStatus int
	}{
		{name: "anonymous", auth: authn.Anonymous, wantStatus: http.StatusUnauthorized},
		{name: "wrong password", auth: &authn.Basic{Username: "alice", Password: "nope"}, wantStatus: http.StatusUnauthorized},
		{name: "right password", auth: &authn.Basic{Username: "alice", Password: "s3cret"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			desc, err := remote.Get(r, remote.WithAuth(tc.auth))
			if tc.wantStatus != 0 {
				var terr *transport.Error
				if !errors.As(err, &terr) || terr.StatusCode != tc.wantStatus {
					t.Fatalf("got error %v, want HTTP %d", err, tc.wantStatus)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if desc.Digest.String() != digest {
				t.Errorf("digest %s, want %s", desc.Digest, digest)
			}
		})
	}
	if n := reg.RepoRequests("team/hello"); n == 0 {
		t.Errorf("pulls were not recorded: %v", reg.Requests())
	}

	reg.SetUnavailable(true)
	_, err = remote.Get(r, remote.WithAuth(&authn.Basic{Username: "alice", Password: "s3cret"}))
	var terr *transport.Error
	if !errors.As(err, &terr) || terr.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("while unavailable: got %v, want HTTP 503", err)
	}
	reg.SetUnavailable(false)

	reg.DeleteManifest(t, "team/hello", digest)
	if _, err := remote.Get(r, remote.WithAuth(&authn.Basic{Username: "alice", Password: "s3cret"})); err == nil {
		t.Fatalf("manifest still served after DeleteManifest")
	}
}

func TestTestImage(t *testing.T) {
	img := regtest.TestImage(t, nil, regtest.WithCmd("echo=hi"))
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got := cf.Config.Entrypoint; len(got) != 1 || got[0] != regtest.TestBinaryPath {
		t.Errorf("entrypoint %v", got)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers %d, %v", len(layers), err)
	}
}

func TestRegistryStall(t *testing.T) {
	reg := regtest.Start(t)
	big := make([]byte, 256<<10) // incompressible, so the layer is larger than StallAfter
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	img, err := regtest.BuildImage(map[string][]byte{"big": big}, []string{"/bin/true"})
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := reg.Push(t, img, "team/big", "v1")
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	reg.SetStalled(true)
	// The manifest and the config (a small blob) are served whole.
	got, err := remote.Image(r)
	if err != nil {
		t.Fatalf("manifest while stalled: %v", err)
	}
	if _, err := got.ConfigFile(); err != nil {
		t.Fatalf("config while stalled: %v", err)
	}
	layers, err := got.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers %d, %v", len(layers), err)
	}
	rc, err := layers[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rc.Close() }()
	head := make([]byte, regtest.StallAfter)
	if _, err := io.ReadFull(rc, head); err != nil {
		t.Fatalf("the start of the layer while stalled: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := io.ReadAll(rc)
		done <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for reg.Stalled() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the layer download was not held")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("the layer download finished while stalled: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	reg.SetStalled(false)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the rest of the layer: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the held download did not go on after SetStalled(false)")
	}
	if n := reg.Stalled(); n != 0 {
		t.Errorf("%d downloads still held", n)
	}
}
