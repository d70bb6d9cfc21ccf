package ecsapi

import (
	"context"
	"encoding/json"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/ecsapi/wire"
)

// ECS tags live in the ecs.berth.dev/tags annotation of the object an ARN names:
// the Cluster, Service, Task or ContainerInstance, and for a task definition the
// revision's ControllerRevision, because ECS tags each revision (ARN family:N)
// apart. A revision's registered tags are its spec.tags (RegisterTaskDefinition's
// tags, part of the immutable revision): they are its tags until TagResource or
// UntagResource first changes them, which copies them into the annotation and
// edits that copy. From then on the annotation is the revision's whole tag set, so
// a registered tag can be removed, and a revision whose tags were all removed keeps
// an empty list ("[]") rather than falling back to the registered ones.

func tagOps() map[string]handler {
	return map[string]handler{
		"TagResource":         op(tagResource),
		"UntagResource":       op(untagResource),
		"ListTagsForResource": op(listTagsForResource),
	}
}

func tagResource(ctx context.Context, c *Call, in *ecs.TagResourceInput) (*ecs.TagResourceOutput, error) {
	if len(in.Tags) == 0 {
		return nil, wire.InvalidParameter("tags", "name at least one tag")
	}
	err := c.editTags(ctx, aws.ToString(in.ResourceArn), func(annotations *map[string]string, registered []ecsv1alpha1.Tag, isRevision bool) error {
		if isRevision {
			return editRevisionTags(annotations, registered, in.Tags, nil)
		}
		return setTags(annotations, in.Tags, nil)
	})
	if err != nil {
		return nil, err
	}
	return &ecs.TagResourceOutput{}, nil
}

func untagResource(ctx context.Context, c *Call, in *ecs.UntagResourceInput) (*ecs.UntagResourceOutput, error) {
	if len(in.TagKeys) == 0 {
		return nil, wire.InvalidParameter("tagKeys", "name at least one tag key")
	}
	for i, k := range in.TagKeys {
		if k == "" || len(k) > 128 {
			return nil, wire.InvalidParameter("tagKeys", "key %d must be 1 to 128 characters", i)
		}
	}
	err := c.editTags(ctx, aws.ToString(in.ResourceArn), func(annotations *map[string]string, registered []ecsv1alpha1.Tag, isRevision bool) error {
		if isRevision {
			return editRevisionTags(annotations, registered, nil, in.TagKeys)
		}
		return setTags(annotations, nil, in.TagKeys)
	})
	if err != nil {
		return nil, err
	}
	return &ecs.UntagResourceOutput{}, nil
}

func listTagsForResource(ctx context.Context, c *Call, in *ecs.ListTagsForResourceInput) (*ecs.ListTagsForResourceOutput, error) {
	r, err := c.taggedResource(ctx, aws.ToString(in.ResourceArn))
	if err != nil {
		return nil, err
	}
	if r.isRevision {
		return &ecs.ListTagsForResourceOutput{Tags: revisionTags(r.obj.GetAnnotations(), r.registered)}, nil
	}
	return &ecs.ListTagsForResourceOutput{Tags: tagsOf(r.obj.GetAnnotations())}, nil
}

// editTags changes the tags of the object an ARN names. Two calls editing one
// object's tags at once must not lose either's change, so the patch carries the
// object's resourceVersion and a conflict reads the object again.
func (c *Call) editTags(ctx context.Context, arn string, edit func(annotations *map[string]string, registered []ecsv1alpha1.Tag, isRevision bool) error) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		r, err := c.taggedResource(ctx, arn)
		if err != nil {
			return err
		}
		before := r.obj.DeepCopyObject().(client.Object)
		annotations := r.obj.GetAnnotations()
		if err := edit(&annotations, r.registered, r.isRevision); err != nil {
			return err
		}
		r.obj.SetAnnotations(annotations)
		return c.Client.Patch(ctx, r.obj, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
	})
}

// tagged is the object an ARN names.
type tagged struct {
	obj client.Object
	// isRevision is set for a task definition revision, whose registered tags are
	// registered.
	isRevision bool
	registered []ecsv1alpha1.Tag
}

// resourceNotFound is ECS's answer for an ARN that names nothing.
func resourceNotFound() error {
	return wire.Errorf(wire.ResourceNotFoundException, "The specified resource could not be found.")
}

// taggedResource reads the object an ARN names, as the caller.
func (c *Call) taggedResource(ctx context.Context, arn string) (*tagged, error) {
	const member = "resourceArn"
	if arn == "" {
		return nil, wire.InvalidParameter(member, "is required")
	}
	r, err := c.ARN.ParseARN(member, arn)
	if err != nil {
		return nil, err
	}
	var obj client.Object
	switch r.Type {
	case "cluster":
		obj, err = c.taggedCluster(ctx, arn, r)
	case "service":
		obj, err = c.taggedService(ctx, arn)
	case "task":
		obj, err = c.taggedTask(ctx, arn)
	case "container-instance":
		obj, err = c.taggedInstance(ctx, arn)
	case "task-definition":
		return c.taggedRevision(ctx, arn)
	default:
		return nil, wire.InvalidParameter(member, "%q: Berth tags clusters, services, tasks, task definitions and container instances, not %s resources", arn, r.Type)
	}
	if err != nil {
		return nil, err
	}
	return &tagged{obj: obj}, nil
}

// getTagged reads one object for tagging: NotFound is ResourceNotFoundException.
func (c *Call) getTagged(ctx context.Context, key client.ObjectKey, obj client.Object) error {
	if err := c.Client.Get(ctx, key, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return resourceNotFound()
		}
		return err
	}
	return nil
}

func (c *Call) taggedCluster(ctx context.Context, arn string, r Resource) (client.Object, error) {
	if len(r.Parts) != 1 {
		return nil, wire.InvalidParameter("resourceArn", "%q is not a cluster ARN", arn)
	}
	name, err := kubeName("resourceArn", r.Parts[0])
	if err != nil {
		return nil, err
	}
	var cl ecsv1alpha1.Cluster
	if err := c.getTagged(ctx, client.ObjectKey{Name: name}, &cl); err != nil {
		return nil, err
	}
	if !sameECSName(cl.Annotations, cl.Name, r.Parts[0]) {
		return nil, resourceNotFound()
	}
	return &cl, nil
}

func (c *Call) taggedService(ctx context.Context, arn string) (client.Object, error) {
	cluster, name, err := c.ARN.Child("resourceArn", "service", arn)
	if err != nil {
		return nil, err
	}
	kube, err := serviceKubeName("resourceArn", name)
	if err != nil {
		return nil, err
	}
	var svc ecsv1alpha1.Service
	if err := c.getTagged(ctx, client.ObjectKey{Namespace: c.Namespace, Name: kube}, &svc); err != nil {
		return nil, err
	}
	if !sameECSName(svc.Annotations, svc.Name, name) || !inCluster(svc.Spec.Cluster, cluster) {
		return nil, resourceNotFound()
	}
	return &svc, nil
}

// inCluster reports whether an object's cluster (a Kubernetes name) is the one an
// ARN names (an ECS name; "" in a short ARN, which names none).
func inCluster(objectCluster, arnCluster string) bool {
	if arnCluster == "" {
		return true
	}
	name, err := kubeName("resourceArn", arnCluster)
	return err == nil && name == objectCluster
}

// A task's and a container instance's ID in its ARN is the object's name, as
// DescribeTasks and DescribeContainerInstances answer it.

func (c *Call) taggedTask(ctx context.Context, arn string) (client.Object, error) {
	cluster, id, err := c.ARN.Child("resourceArn", "task", arn)
	if err != nil {
		return nil, err
	}
	var t ecsv1alpha1.Task
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: id}, &t); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, resourceNotFound()
		}
		return nil, err
	}
	if !inCluster(t.Spec.Cluster, cluster) {
		return nil, resourceNotFound()
	}
	return &t, nil
}

func (c *Call) taggedInstance(ctx context.Context, arn string) (client.Object, error) {
	cluster, id, err := c.ARN.Child("resourceArn", "container-instance", arn)
	if err != nil {
		return nil, err
	}
	var ci ecsv1alpha1.ContainerInstance
	if err := c.Client.Get(ctx, client.ObjectKey{Name: id}, &ci); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, resourceNotFound()
		}
		return nil, err
	}
	if !inCluster(ci.Spec.Cluster, cluster) {
		return nil, resourceNotFound()
	}
	return &ci, nil
}

// taggedRevision reads the ControllerRevision of a task definition ARN, which must
// name a revision: ECS tags revisions, not families.
func (c *Call) taggedRevision(ctx context.Context, arn string) (*tagged, error) {
	family, rev, err := c.ARN.TaskDefinitionRef("resourceArn", arn)
	if err != nil {
		return nil, err
	}
	if rev == 0 {
		return nil, wire.InvalidParameter("resourceArn", "%q: a task definition ARN names a revision (family:revision)", arn)
	}
	name, err := kubeName("resourceArn", family)
	if err != nil {
		return nil, err
	}
	var td ecsv1alpha1.TaskDefinition
	if err := c.getTagged(ctx, client.ObjectKey{Namespace: c.Namespace, Name: name}, &td); err != nil {
		return nil, err
	}
	if !sameECSName(td.Annotations, td.Name, family) {
		return nil, resourceNotFound()
	}
	var cr appsv1.ControllerRevision
	if err := c.getTagged(ctx, client.ObjectKey{Namespace: c.Namespace, Name: ecsv1alpha1.RevisionName(name, rev)}, &cr); err != nil {
		return nil, err
	}
	var spec struct {
		Tags []ecsv1alpha1.Tag `json:"tags"`
	}
	if err := json.Unmarshal(cr.Data.Raw, &spec); err != nil {
		return nil, err
	}
	return &tagged{obj: &cr, isRevision: true, registered: spec.Tags}, nil
}

// revisionTags are a task definition revision's tags: the annotation once an edit
// wrote it, the registered tags before.
func revisionTags(annotations map[string]string, registered []ecsv1alpha1.Tag) []types.Tag {
	if _, edited := annotations[ecsv1alpha1.AnnotationTags]; edited {
		return tagsOf(annotations)
	}
	out := make([]types.Tag, len(registered))
	for i, t := range registered {
		out[i] = types.Tag{Key: aws.String(t.Key), Value: aws.String(t.Value)}
	}
	return out
}

// editRevisionTags edits a revision's tags: the first edit starts from the
// registered tags; an edit that leaves none records an empty list.
func editRevisionTags(annotations *map[string]string, registered []ecsv1alpha1.Tag, add []types.Tag, remove []string) error {
	if _, edited := (*annotations)[ecsv1alpha1.AnnotationTags]; !edited {
		if err := setTags(annotations, revisionTags(nil, registered), nil); err != nil {
			return err
		}
	}
	if err := setTags(annotations, add, remove); err != nil {
		return err
	}
	if _, ok := (*annotations)[ecsv1alpha1.AnnotationTags]; !ok {
		(*annotations)[ecsv1alpha1.AnnotationTags] = "[]"
	}
	return nil
}
