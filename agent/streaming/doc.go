// Package streaming is the agent's authenticated HTTPS server for ECS Exec and
// container logs, built on kubelet's model:
//
//	POST|GET /exec/{namespace}/{task}?container=C&command=A&command=B&stdin=1&stdout=1&stderr=1&tty=1
//	         Kubernetes' remotecommand protocol (websocket v5/v4.channel.k8s.io, or
//	         SPDY v4.channel.k8s.io), so client-go's executors work unchanged
//	GET      /logs/{namespace}/{task}/{container}?tail=N&follow=true
//
// Trust, both ways, rides on the apiserver's:
//   - The server's certificate is self-signed, generated in memory at start; the
//     agent publishes it with its URL in its ContainerInstance's
//     status.streamingEndpoint, which clients read through the apiserver.
//   - Callers are authenticated by the apiserver (internal/access, whose Delegated the
//     agent shares with its HTTP endpoint), as an aggregated apiserver or the
//     kubelet does it: a bearer token by TokenReview, a client certificate against
//     the cluster's client CA (ConfigMap kube-system/extension-apiserver-authentication,
//     followed as it changes). No credentials answer 401 with a
//     WWW-Authenticate: Bearer challenge.
//   - Each request is authorized by a SubjectAccessReview for the caller: verb exec
//     on tasks.ecs.berth.dev (a custom verb, as pods/exec is a subresource), verb get
//     on tasks/log for logs (as pods/log). Denied answers 403 with a metav1.Status.
//
// Every exec decision is audited as an Event on the task: ExecCommand when a
// command starts (who, what, which container), ExecDenied when RBAC refuses.
// Exec also needs the task to have been run with spec.enableExecuteCommand, as ECS
// refuses ExecuteCommand for a task started without it.
package streaming
