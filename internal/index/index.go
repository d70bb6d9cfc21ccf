// Package index declares the cache field indexes the manager's controllers share, so
// that lookups such as "the tasks of this service" or "the tasks on this instance"
// are map reads instead of scans of every task.
package index

import (
	"context"
	"slices"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// Index names. They are only meaningful to a cache that registered them with Setup.
const (
	// TaskFamily indexes tasks by the family of spec.taskDefinition.
	TaskFamily = "berth.taskFamily"
	// TaskInstance indexes tasks by spec.containerInstance ("" for unplaced tasks).
	TaskInstance = "berth.taskInstance"
	// TaskService indexes tasks by the Service that created them (label
	// ecs.berth.dev/service).
	TaskService = "berth.taskService"
	// ServiceCluster indexes services by spec.cluster.
	ServiceCluster = "berth.serviceCluster"
	// ServiceFamily indexes services by every task definition family they name:
	// that of spec.taskDefinition (pinned or not) and those of their deployments. The
	// task definition controller finds a family's followers and the revisions its
	// services use with it.
	ServiceFamily = "berth.serviceFamily"
	// InstanceCluster indexes container instances by spec.cluster.
	InstanceCluster = "berth.instanceCluster"
)

// Indexer is the part of a cache that registers field indexes.
type Indexer interface {
	IndexField(ctx context.Context, obj client.Object, field string, extract client.IndexerFunc) error
}

// Setup registers every index on the manager's cache.
func Setup(ctx context.Context, i Indexer) error {
	for _, x := range []struct {
		obj     client.Object
		field   string
		extract client.IndexerFunc
	}{
		{&ecsv1alpha1.Task{}, TaskFamily, func(o client.Object) []string {
			return nonEmpty(Family(o.(*ecsv1alpha1.Task).Spec.TaskDefinition))
		}},
		{&ecsv1alpha1.Task{}, TaskInstance, func(o client.Object) []string {
			return []string{o.(*ecsv1alpha1.Task).Spec.ContainerInstance}
		}},
		{&ecsv1alpha1.Task{}, TaskService, func(o client.Object) []string {
			return nonEmpty(o.GetLabels()[ecsv1alpha1.LabelService])
		}},
		{&ecsv1alpha1.Service{}, ServiceCluster, func(o client.Object) []string {
			return []string{o.(*ecsv1alpha1.Service).Spec.Cluster}
		}},
		{&ecsv1alpha1.Service{}, ServiceFamily, func(o client.Object) []string {
			return ServiceFamilies(o.(*ecsv1alpha1.Service))
		}},
		{&ecsv1alpha1.ContainerInstance{}, InstanceCluster, func(o client.Object) []string {
			return []string{o.(*ecsv1alpha1.ContainerInstance).Spec.Cluster}
		}},
	} {
		if err := i.IndexField(ctx, x.obj, x.field, x.extract); err != nil {
			return err
		}
	}
	return nil
}

// Family is the family part of a task definition reference (`web` of `web:3`).
func Family(ref string) string {
	fam, _, _ := strings.Cut(ref, ":")
	return fam
}

// ServiceFamilies are the task definition families a Service names, in spec or in
// any of its deployments, each once.
func ServiceFamilies(s *ecsv1alpha1.Service) []string {
	var out []string
	add := func(ref string) {
		if fam := Family(ref); fam != "" && !slices.Contains(out, fam) {
			out = append(out, fam)
		}
	}
	add(s.Spec.TaskDefinition)
	for _, d := range s.Status.Deployments {
		add(d.TaskDefinition)
	}
	return out
}

// TaskInUse reports whether a task still uses its revision and its instance's
// resources: it is not both asked to stop and reported stopped.
func TaskInUse(t *ecsv1alpha1.Task) bool {
	return t.Status.LastStatus != ecsv1alpha1.TaskStopped
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}
