package streaming

import (
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// What the SubjectAccessReviews ask. exec is a custom verb on the task itself (RBAC
// grants any verb string); logs follow Kubernetes' pods/log with get on tasks/log.
const (
	VerbExec       = "exec"
	VerbLogs       = "get"
	ResourceTasks  = "tasks"
	SubresourceLog = "log"
)

// execAttributes asks whether u may exec in the task.
func execAttributes(u user.Info, namespace, task string) authorizer.Attributes {
	return authorizer.AttributesRecord{
		User: u, Verb: VerbExec, Namespace: namespace, APIGroup: ecsv1alpha1.GroupVersion.Group,
		APIVersion: ecsv1alpha1.GroupVersion.Version, Resource: ResourceTasks, Name: task,
		ResourceRequest: true,
	}
}

// logAttributes asks whether u may read the task's container logs.
func logAttributes(u user.Info, namespace, task string) authorizer.Attributes {
	return authorizer.AttributesRecord{
		User: u, Verb: VerbLogs, Namespace: namespace, APIGroup: ecsv1alpha1.GroupVersion.Group,
		APIVersion: ecsv1alpha1.GroupVersion.Version, Resource: ResourceTasks, Subresource: SubresourceLog, Name: task,
		ResourceRequest: true,
	}
}
