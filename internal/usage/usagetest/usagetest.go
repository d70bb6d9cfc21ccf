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

	"github.com/google/go-cmp/cmp"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/index"
	"github.com/berthdev/berth/internal/kube"
	"github.com/berthdev/berth/internal/usage"
	"github.com/berthdev/berth/test/testobj"
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

// Tasks makes n tasks t0…t(n-1) of family web in ns at revision 1 (in cluster when
// not empty, with lastStatus when not empty), and tells tr of them as a cache's first
// list does.
func Tasks(tr *usage.Tracker, n int, ns, cluster string, lastStatus ecsv1alpha1.TaskStatusValue) []*ecsv1alpha1.Task {
	tasks := make([]*ecsv1alpha1.Task, 0, n)
	for i := range n {
		b := testobj.Task(ns, fmt.Sprint("t", i), "web")
		if cluster != "" {
			b = b.Cluster(cluster)
		}
		task := b.Obj()
		task.Status.TaskDefinitionRevision = 1
		task.Status.LastStatus = lastStatus
		tasks = append(tasks, task)
		tr.OnAdd(task, true)
	}
	return tasks
}

// CheckFlat fails t unless the cost of one event measured with few and with ten times
// the tasks is the same, and the larger one's pass visited exactly want.
func CheckFlat(t *testing.T, few, many any, visited map[string]int, want map[string]int) {
	t.Helper()
	if diff := cmp.Diff(few, many); diff != "" {
		t.Errorf("cost of one task event (-few tasks +ten times the tasks):\n%s", diff)
	}
	if diff := cmp.Diff(want, visited); diff != "" {
		t.Errorf("objects a pass visits (-want +got):\n%s", diff)
	}
}
