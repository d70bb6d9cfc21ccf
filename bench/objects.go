package bench

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/testobj"
)

// smallTaskDefinition is one essential container with small reservations (16 cpu
// units, 32 MiB), so that placement is limited by nothing but the scheduler: a
// hollow instance (4096 units, 8 GiB) fits 256 such tasks. stopTimeout 0 is the
// "zero grace" of the rolling deployment.
func smallTaskDefinition(ns, family, image string) *ecsv1alpha1.TaskDefinition {
	return testobj.TaskDefinition(ns, family).Container("app", image).
		Network(ecsv1alpha1.NetworkModeNone).
		Last(func(c *ecsv1alpha1.ContainerDefinition) {
			c.Cpu, c.Memory, c.StopTimeout = 16, ptr.To[int32](32), ptr.To[int32](0)
			c.Environment = []ecsv1alpha1.KeyValuePair{{Name: "REVISION", Value: "1"}}
		}).Obj()
}

// setupCluster creates the Cluster object and a task definition, and waits until its
// first revision is registered.
func (l *lab) setupCluster(ctx context.Context, cluster string, td *ecsv1alpha1.TaskDefinition) error {
	if err := l.c.Create(ctx, &ecsv1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: cluster}}); err != nil {
		return fmt.Errorf("creating cluster %s: %w", cluster, err)
	}
	if err := l.c.Create(ctx, td); err != nil {
		return fmt.Errorf("creating task definition %s: %w", td.Name, err)
	}
	return l.waitRevision(ctx, td, 1)
}

// waitRevision waits until the task definition's latest revision is at least rev.
func (l *lab) waitRevision(ctx context.Context, td *ecsv1alpha1.TaskDefinition, rev int32) error {
	return l.poll(ctx, time.Minute, 100*time.Millisecond, fmt.Sprintf("revision %d of %s", rev, td.Name), func() (bool, string, error) {
		var got ecsv1alpha1.TaskDefinition
		if err := l.c.Get(ctx, client.ObjectKeyFromObject(td), &got); err != nil {
			return false, "", err
		}
		return got.Status.LatestRevision >= rev, fmt.Sprintf("latest revision %d", got.Status.LatestRevision), nil
	})
}
