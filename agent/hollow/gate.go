package hollow

import (
	"context"
	"fmt"
	"sync/atomic"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// gate is one simulated instance's connection to the apiserver: the process's shared
// client, which Disconnect cuts for this instance alone. While cut, every request
// fails as a refused connection would, so the agent's own retry and backoff logic
// runs as on a machine that lost its network.
type gate struct {
	client.Client
	instance string
	down     atomic.Bool
}

func (g *gate) cut(down bool) { g.down.Store(down) }

// errDisconnected is what a cut instance's requests fail with.
type errDisconnected struct{ instance string }

func (e errDisconnected) Error() string {
	return fmt.Sprintf("hollow: instance %s is disconnected from the apiserver (simulated)", e.instance)
}

func (g *gate) check() error {
	if g.down.Load() {
		return errDisconnected{g.instance}
	}
	return nil
}

func (g *gate) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if err := g.check(); err != nil {
		return err
	}
	return g.Client.Get(ctx, key, obj, opts...)
}

func (g *gate) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if err := g.check(); err != nil {
		return err
	}
	return g.Client.List(ctx, list, opts...)
}

func (g *gate) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	if err := g.check(); err != nil {
		return err
	}
	return g.Client.Create(ctx, obj, opts...)
}

func (g *gate) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	if err := g.check(); err != nil {
		return err
	}
	return g.Client.Update(ctx, obj, opts...)
}

func (g *gate) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	if err := g.check(); err != nil {
		return err
	}
	return g.Client.Patch(ctx, obj, patch, opts...)
}

func (g *gate) Apply(ctx context.Context, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
	if err := g.check(); err != nil {
		return err
	}
	return g.Client.Apply(ctx, obj, opts...)
}

func (g *gate) Delete(ctx context.Context, obj client.Object, opts ...client.DeleteOption) error {
	if err := g.check(); err != nil {
		return err
	}
	return g.Client.Delete(ctx, obj, opts...)
}

func (g *gate) DeleteAllOf(ctx context.Context, obj client.Object, opts ...client.DeleteAllOfOption) error {
	if err := g.check(); err != nil {
		return err
	}
	return g.Client.DeleteAllOf(ctx, obj, opts...)
}

func (g *gate) Status() client.SubResourceWriter { return g.SubResource("status") }

func (g *gate) SubResource(name string) client.SubResourceClient {
	return &gatedSubResource{SubResourceClient: g.Client.SubResource(name), g: g}
}

type gatedSubResource struct {
	client.SubResourceClient
	g *gate
}

func (s *gatedSubResource) Get(ctx context.Context, obj, sub client.Object, opts ...client.SubResourceGetOption) error {
	if err := s.g.check(); err != nil {
		return err
	}
	return s.SubResourceClient.Get(ctx, obj, sub, opts...)
}

func (s *gatedSubResource) Create(ctx context.Context, obj, sub client.Object, opts ...client.SubResourceCreateOption) error {
	if err := s.g.check(); err != nil {
		return err
	}
	return s.SubResourceClient.Create(ctx, obj, sub, opts...)
}

func (s *gatedSubResource) Update(ctx context.Context, obj client.Object, opts ...client.SubResourceUpdateOption) error {
	if err := s.g.check(); err != nil {
		return err
	}
	return s.SubResourceClient.Update(ctx, obj, opts...)
}

func (s *gatedSubResource) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	if err := s.g.check(); err != nil {
		return err
	}
	return s.SubResourceClient.Patch(ctx, obj, patch, opts...)
}

func (s *gatedSubResource) Apply(ctx context.Context, obj runtime.ApplyConfiguration, opts ...client.SubResourceApplyOption) error {
	if err := s.g.check(); err != nil {
		return err
	}
	return s.SubResourceClient.Apply(ctx, obj, opts...)
}
