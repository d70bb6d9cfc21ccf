package access

import (
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// What the SubjectAccessReviews ask. exec is a custom verb on the task itself (RBAC
// grants any verb string); logs follow Kubernetes' pods/log with get on tasks/log;
// a task's report (its status as the agent sees it) is get on the task, as the
// apiserver would show its status.
const (
	VerbExec       = "exec"
	VerbLogs       = "get"
	VerbGet        = "get"
	VerbList       = "list"
	ResourceTasks  = "tasks"
	SubresourceLog = "log"
)

// ExecAttributes asks whether u may exec in the task.
func ExecAttributes(u user.Info, namespace, task string) authorizer.Attributes {
	return taskAttributes(u, VerbExec, namespace, task, "")
}

// LogAttributes asks whether u may read the task's container logs.
func LogAttributes(u user.Info, namespace, task string) authorizer.Attributes {
	return taskAttributes(u, VerbLogs, namespace, task, SubresourceLog)
}

// GetTaskAttributes asks whether u may read the task.
func GetTaskAttributes(u user.Info, namespace, task string) authorizer.Attributes {
	return taskAttributes(u, VerbGet, namespace, task, "")
}

// ListTasksAttributes asks whether u may list the tasks of namespace, or of every
// namespace when namespace is "".
func ListTasksAttributes(u user.Info, namespace string) authorizer.Attributes {
	return taskAttributes(u, VerbList, namespace, "", "")
}

func taskAttributes(u user.Info, verb, namespace, task, subresource string) authorizer.Attributes {
	return authorizer.AttributesRecord{
		User: u, Verb: verb, Namespace: namespace, APIGroup: ecsv1alpha1.GroupVersion.Group,
		APIVersion: ecsv1alpha1.GroupVersion.Version, Resource: ResourceTasks, Subresource: subresource, Name: task,
		ResourceRequest: true,
	}
}
