package cluster

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/conditions"
)

// maxNamesListed caps how many instance or service names a DeletionBlocked message
// lists; the count is always exact.
const maxNamesListed = 5

func setCondition(c *ecsv1alpha1.Cluster, typ string, status metav1.ConditionStatus, reason, msg string) {
	conditions.Set(&c.Status.Conditions, c.Generation, typ, status, reason, msg)
}

// setCounts writes the counts, Ready and observedGeneration of a successful pass.
func setCounts(c *ecsv1alpha1.Cluster, u *clusterUsage) {
	c.Status.RegisteredContainerInstancesCount = int32(len(u.instances))
	c.Status.ActiveServicesCount = u.activeServices
	c.Status.RunningTasksCount = u.tasks.Running
	c.Status.PendingTasksCount = u.tasks.Pending
	setCondition(c, ecsv1alpha1.ConditionReady, metav1.ConditionTrue, ecsv1alpha1.ReasonReconcileComplete,
		"The counts are current")
	c.Status.ObservedGeneration = c.Generation
}

// setDeletionBlocked says, on a deleted Cluster, what keeps it. The condition is
// removed when nothing does (or the Cluster is not being deleted).
func setDeletionBlocked(c *ecsv1alpha1.Cluster, u *clusterUsage) {
	if c.DeletionTimestamp.IsZero() || !u.blocksDeletion() {
		meta.RemoveStatusCondition(&c.Status.Conditions, ecsv1alpha1.ClusterConditionDeletionBlocked)
		return
	}
	setCondition(c, ecsv1alpha1.ClusterConditionDeletionBlocked, metav1.ConditionTrue,
		ecsv1alpha1.ReasonResourcesRemain, blockedMessage(u))
}

// setReconcileError surfaces a failed count on Ready; the counts keep their last
// values.
func setReconcileError(c *ecsv1alpha1.Cluster, err error) {
	setCondition(c, ecsv1alpha1.ConditionReady, metav1.ConditionFalse, ecsv1alpha1.ReasonReconcileError, err.Error())
}

// newlyBlocked returns the DeletionBlocked message when it is new or changed since
// before: the moment a user should be told, once, rather than on every pass.
func newlyBlocked(before, after *ecsv1alpha1.Cluster) (string, bool) {
	now := meta.FindStatusCondition(after.Status.Conditions, ecsv1alpha1.ClusterConditionDeletionBlocked)
	if now == nil || now.Status != metav1.ConditionTrue {
		return "", false
	}
	was := meta.FindStatusCondition(before.Status.Conditions, ecsv1alpha1.ClusterConditionDeletionBlocked)
	if was != nil && was.Status == now.Status && was.Message == now.Message {
		return "", false
	}
	return now.Message, true
}

// blockedMessage says what still uses the cluster, for example
// "2 container instances (a, b) and 1 service (default/web) still use this cluster".
func blockedMessage(u *clusterUsage) string {
	var parts []string
	if n := len(u.instances); n > 0 {
		parts = append(parts, counted(n, "container instance", "container instances", u.instances))
	}
	if n := len(u.services); n > 0 {
		parts = append(parts, counted(n, "service", "services", u.services))
	}
	verb := "use"
	if len(u.instances)+len(u.services) == 1 {
		verb = "uses"
	}
	return strings.Join(parts, " and ") + " still " + verb + " this cluster"
}

func counted(n int, singular, plural string, names []string) string {
	noun := plural
	if n == 1 {
		noun = singular
	}
	listed := names
	if len(listed) > maxNamesListed {
		listed = listed[:maxNamesListed]
	}
	list := strings.Join(listed, ", ")
	if len(names) > len(listed) {
		list += fmt.Sprintf(", and %d more", len(names)-len(listed))
	}
	return fmt.Sprintf("%d %s (%s)", n, noun, list)
}
