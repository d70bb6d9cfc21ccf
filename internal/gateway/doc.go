// Package gateway is the manager's door for agents' reads, as the Node authorizer is
// the apiserver's for kubelets. RBAC cannot say "the Secrets my tasks reference" or
// "only my tasks", and admission sees writes only, so an agent's own credential may
// read none of them: it reads them here, and the gateway answers only what the
// agent's container instance needs.
//
//   - Secrets and ConfigMaps: GET ObjectPath(ns, task, kind, name) returns the
//     object when the task is bound to the caller's instance, is not stopping and
//     its revision references the object (taskrules.References, the rule the agent
//     reads by). The manager reads it live, so a rotated value reaches the next
//     container started, and keeps no copy.
//   - Tasks, and the cluster-wide reads the agent's cache makes: list and watch are
//     passed to the apiserver as the manager, after a check that a task list is the
//     caller's own field-selected one (spec.containerInstance=<instance>), a Cluster
//     list names one Cluster and a ControllerRevision list is of task definition
//     revisions. Nothing else is passed on, and no header of the caller but Accept.
//
// The caller is authenticated by the apiserver (TokenReview, or a client certificate
// of the cluster's CA, internal/access), and its instance follows from its identity
// (internal/agentidentity, the admission policy's rule). Refusals are Kubernetes
// Status objects: 401 without credentials, 403 naming the instance and what it may
// not read.
package gateway
