// Package usagetest helps prove that a controller's work per task event does not grow
// with the number of tasks: a fake API with the manager's cache indexes, and a client
// that counts the objects every List returns.
package usagetest

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/berthdev/berth/internal/index"
	"github.com/berthdev/berth/internal/kube"
)

// FakeClient is a fake API holding objs, with the manager's cache indexes and status
// subresources for statusOf.
func FakeClient(t testing.TB, statusOf []client.Object, objs ...client.Object) client.Client {
	t.Helper()
	b := fake.NewClientBuilder().WithScheme(kube.Scheme).WithObjects(objs...).WithStatusSubresource(statusOf...)
	if err := index.Setup(context.Background(), builderIndexer{b}); err != nil {
		t.Fatal(err)
	}
	return b.Build()
}

type builderIndexer struct{ b *fake.ClientBuilder }

func (i builderIndexer) IndexField(_ context.Context, obj client.Object, field string, extract client.IndexerFunc) error {
	i.b.WithIndex(obj, field, extract)
	return nil
}

// CountingClient counts, per list type, the objects its Lists returned: the objects
// a reconcile visits.
type CountingClient struct {
	client.Client
	mu      sync.Mutex
	visited map[string]int
}

// Counting wraps c.
func Counting(c client.Client) *CountingClient {
	return &CountingClient{Client: c, visited: map[string]int{}}
}

// List implements client.Client.
func (c *CountingClient) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if err := c.Client.List(ctx, list, opts...); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.visited[fmt.Sprintf("%T", list)] += meta.LenList(list)
	return nil
}

// Visited returns the counts since the last call and starts again from zero.
func (c *CountingClient) Visited() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := c.visited
	c.visited = map[string]int{}
	return v
}
