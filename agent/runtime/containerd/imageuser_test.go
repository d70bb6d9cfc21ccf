package containerd_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/berthdev/berth/agent/runtime"
	regtest "github.com/berthdev/berth/test/testenv/registry"
)

// TestImageUser: the user a pulled image's config names, which the agent's container
// policy judges at level restricted; "" when the image names none (root).
func TestImageUser(t *testing.T) {
	e := newEnv(t)
	reg := regtest.Start(t)
	for i, want := range []string{"", "1000:1000", "root"} {
		ref, _ := reg.Push(t, regtest.TestImage(t, nil, regtest.WithUser(want)), "team/user", fmt.Sprint("v", i))
		if _, err := e.rt.Pull(e.ctx, ref, runtime.PullDefault, nil); err != nil {
			t.Fatal(err)
		}
		if got, err := e.rt.ImageUser(e.ctx, ref); err != nil || got != want {
			t.Errorf("ImageUser(%s) = %q, %v; want %q", ref, got, err, want)
		}
	}
	if _, err := e.rt.ImageUser(e.ctx, reg.Ref("team/never-pulled", "1")); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("an image never pulled: %v, want ErrNotFound", err)
	}
}
