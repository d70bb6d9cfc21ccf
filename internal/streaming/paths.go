// Package streaming is the client of the agents' streaming servers (agent/streaming):
// exec in a task's container and read its logs, as the caller's own identity. It is
// the one home of the routes and of the container-defaulting rule, used by the
// agent, `berth exec` and the console.
//
// A client finds the task's container instance (spec.containerInstance) and the URL
// and CA bundle its agent published there (status.streamingEndpoint), and connects
// with the credentials of its kubeconfig (a client certificate or a bearer token),
// which the agent has the apiserver check (TokenReview) and authorize
// (SubjectAccessReview). Trusting the agent's certificate rests on having read it
// through the apiserver.
package streaming

import (
	"fmt"
	"net/url"
	"strings"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// Query parameters of /exec, the names kubelet's exec endpoint uses.
const (
	ParamContainer = "container"
	ParamCommand   = "command"
	ParamStdin     = "stdin"
	ParamStdout    = "stdout"
	ParamStderr    = "stderr"
	ParamTTY       = "tty"
	// ParamTail and ParamFollow are /logs' parameters.
	ParamTail   = "tail"
	ParamFollow = "follow"
)

// ExecPath is the path of an exec in a task; ExecPath and LogsPath are the one
// home of the routes, for the server and for internal/streaming's client.
func ExecPath(namespace, task string) string {
	return "/exec/" + url.PathEscape(namespace) + "/" + url.PathEscape(task)
}

// LogsPath is the path of a container's log.
func LogsPath(namespace, task, container string) string {
	return "/logs/" + url.PathEscape(namespace) + "/" + url.PathEscape(task) + "/" + url.PathEscape(container)
}

// ContainerNames are the names of a task's containers, in the task's order.
func ContainerNames(t *ecsv1alpha1.Task) []string {
	names := make([]string, 0, len(t.Status.Containers))
	for _, c := range t.Status.Containers {
		names = append(names, c.Name)
	}
	return names
}

// PickContainer is the container an exec or a log means: the one named, which the
// task must have, or, when none is named, the task's only container. The rule of
// kubectl exec without a default-container annotation, shared by the server and
// internal/streaming's client so both say the same.
func PickContainer(t *ecsv1alpha1.Task, name string) (string, error) {
	names := ContainerNames(t)
	if name == "" {
		switch len(names) {
		case 0:
			return "", fmt.Errorf("task %s/%s has no containers yet: it has not been started on its instance", t.Namespace, t.Name)
		case 1:
			return names[0], nil
		}
		return "", fmt.Errorf("task %s/%s has %d containers: name one with container (-c), one of: %s",
			t.Namespace, t.Name, len(names), strings.Join(names, ", "))
	}
	for _, n := range names {
		if n == name {
			return name, nil
		}
	}
	return "", fmt.Errorf("task %s/%s has no container %q; its containers: %s", t.Namespace, t.Name, name, strings.Join(names, ", "))
}
