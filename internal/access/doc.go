// Package access decides who may reach Berth's servers that act for a caller: the
// manager's read gateway (internal/gateway, agents only) and the agent's HTTP endpoint
// (agent/httpapi, /v1/tasks and /v1/logs) and the streaming server
// (agent/streaming, exec and logs). All ask the apiserver, as the kubelet and
// aggregated apiservers do, through one Delegated:
//
//   - Authentication: a bearer token by TokenReview; on TLS connections also a
//     client certificate against the cluster's client CA (the ConfigMap
//     kube-system/extension-apiserver-authentication, followed as it changes).
//     No anonymous user and no request-header authentication: a plain HTTP caller
//     can only be known by its token.
//   - Authorization: a SubjectAccessReview per question (attributes.go), with the
//     answers cached for a few seconds.
//
// The refusals are the apiserver's: 401 with a WWW-Authenticate: Bearer challenge
// for missing or invalid credentials, 403 naming the user, the verb and the
// resource, 500 when the apiserver could not be asked, and 503 when the agent has
// no Delegated at all (it serves no task's data then: closed, never open).
// Tokens are never logged.
package access
