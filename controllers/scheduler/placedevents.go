package scheduler

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/conditions"
)

// Placements are announced in batches, as ECS's service events are: one Event per
// cluster per placedEventWindow ("Placed 250 tasks on 3 container instances"), not
// one per task, which would double the writes of a placement. Each task says where it
// went on its own Placed condition (written by its agent) and spec.containerInstance.
const placedEventWindow = 5 * time.Second

// placedBatch counts the bindings of each cluster, per instance, since its last flush.
type placedBatch struct {
	mu        sync.Mutex
	byCluster map[string]map[string]int
}

func (b *placedBatch) add(cluster, instance string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.byCluster == nil {
		b.byCluster = map[string]map[string]int{}
	}
	if b.byCluster[cluster] == nil {
		b.byCluster[cluster] = map[string]int{}
	}
	b.byCluster[cluster][instance]++
}

// take returns the counts since the last take and starts afresh.
func (b *placedBatch) take() map[string]map[string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.byCluster
	b.byCluster = nil
	return out
}

// flush records one Event per cluster with bindings since the last flush.
func (b *placedBatch) flush(rec events.EventRecorder) {
	for cluster, perInstance := range b.take() {
		c := &ecsv1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: cluster}}
		c.SetGroupVersionKind(ecsv1alpha1.GroupVersion.WithKind("Cluster"))
		rec.Eventf(c, nil, "Normal", ecsv1alpha1.ReasonPlaced, "Place", "%s", placedNote(perInstance))
	}
}

// run flushes every placedEventWindow until ctx ends, then once more.
func (b *placedBatch) run(ctx context.Context, rec events.EventRecorder) error {
	tick := time.NewTicker(placedEventWindow)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			b.flush(rec)
			return nil
		case <-tick.C:
			b.flush(rec)
		}
	}
}

// placedNote says how many tasks went where, the busiest instances first.
func placedNote(perInstance map[string]int) string {
	const shown = 5
	instances := slices.SortedFunc(maps.Keys(perInstance), func(a, b string) int {
		if c := cmp.Compare(perInstance[b], perInstance[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	total := 0
	for _, n := range perInstance {
		total += n
	}
	parts := make([]string, 0, shown)
	for _, name := range instances[:min(shown, len(instances))] {
		parts = append(parts, fmt.Sprintf("%s (%d)", name, perInstance[name]))
	}
	note := fmt.Sprintf("Placed %s on %s: %s", conditions.Count(total, "task", "tasks"),
		conditions.Count(len(instances), "container instance", "container instances"), strings.Join(parts, ", "))
	if len(instances) > shown {
		note += fmt.Sprintf(" and %d more", len(instances)-shown)
	}
	return note
}
