package regtest_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	regtest "github.com/berthdev/berth/internal/testenv/registry"
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
