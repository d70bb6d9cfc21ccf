package regtest

import (
	"context"
	"net/http"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berthdev/berth/internal/up/ociimage"
)

// ImageOption sets part of the image configuration in BuildImage.
type ImageOption = ociimage.Option

// Image building lives in internal/up/ociimage; these names keep tests short.
var (
	BuildImage          = ociimage.BuildImage
	BuildImageWithModes = ociimage.BuildImageWithModes
	WithCmd             = ociimage.WithCmd
	WithEnv             = ociimage.WithEnv
	WithWorkingDir      = ociimage.WithWorkingDir
	WithUser            = ociimage.WithUser
	WithStopSignal      = ociimage.WithStopSignal
	WithLabels          = ociimage.WithLabels
)

// Push uploads img as ref. auth may be nil for an anonymous push.
func Push(ctx context.Context, img v1.Image, ref string, auth authn.Authenticator) error {
	return ociimage.Push(ctx, img, ref, auth)
}

// auth returns the registry's credentials for go-containerregistry.
func (r *Registry) auth() authn.Authenticator {
	if r.Username == "" {
		return authn.Anonymous
	}
	return &authn.Basic{Username: r.Username, Password: r.Password}
}

// Push uploads img to repo:tag in this registry with its credentials and returns the
// reference and the manifest digest. The push is not recorded in Requests.
func (r *Registry) Push(t testing.TB, img v1.Image, repo, tag string) (ref string, digest string) {
	t.Helper()
	ref = r.Ref(repo, tag)
	if err := ociimage.Push(context.Background(), img, ref, r.auth(), remote.WithTransport(unrecorded{})); err != nil {
		t.Fatalf("%v", err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatalf("digest of %s: %v", ref, err)
	}
	return ref, d.String()
}

// DeleteManifest removes repo@digest from the registry (tags pointing at it go too).
// The deletion is not recorded in Requests.
func (r *Registry) DeleteManifest(t testing.TB, repo, digest string) {
	t.Helper()
	ref, err := name.NewDigest(r.Addr+"/"+repo+"@"+digest, name.Insecure)
	if err != nil {
		t.Fatalf("parsing digest reference: %v", err)
	}
	if err := remote.Delete(ref, remote.WithAuth(r.auth()), remote.WithTransport(unrecorded{})); err != nil {
		t.Fatalf("deleting %s: %v", ref, err)
	}
}

// internalHeader marks the test's own requests (pushes, deletions) so that Requests
// shows only what the code under test asked for.
const internalHeader = "X-Regtest-Internal"

type unrecorded struct{}

func (unrecorded) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set(internalHeader, "1")
	return http.DefaultTransport.RoundTrip(req)
}
