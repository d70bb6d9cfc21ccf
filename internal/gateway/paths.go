package gateway

import (
	"fmt"
	"net/url"

	"github.com/berthdev/berth/internal/taskrules"
)

// resourceOf is the path segment of each kind the gateway serves by reference.
var resourceOf = map[string]string{taskrules.KindSecret: "secrets", taskrules.KindConfigMap: "configmaps"}

// ObjectPath is where an agent reads the Secret or ConfigMap name for task ns/task.
func ObjectPath(ns, task, kind, name string) (string, error) {
	res, ok := resourceOf[kind]
	if !ok {
		return "", fmt.Errorf("the gateway serves no %s", kind)
	}
	return fmt.Sprintf("/v1/namespaces/%s/tasks/%s/%s/%s", url.PathEscape(ns), url.PathEscape(task), res, url.PathEscape(name)), nil
}

// Routes of the server (net/http patterns).
const (
	secretRoute    = "GET /v1/namespaces/{namespace}/tasks/{task}/secrets/{name}"
	configMapRoute = "GET /v1/namespaces/{namespace}/tasks/{task}/configmaps/{name}"
	// The cluster-wide lists and watches of the agent's cache.
	tasksRoute           = "GET /apis/ecs.berth.dev/v1alpha1/tasks"
	taskDefinitionsRoute = "GET /apis/ecs.berth.dev/v1alpha1/taskdefinitions"
	clustersRoute        = "GET /apis/ecs.berth.dev/v1alpha1/clusters"
	revisionsRoute       = "GET /apis/apps/v1/controllerrevisions"
)
