package manager

// RBAC the manager process needs whatever controllers run: leader election and Events.
// Each controller declares its own permissions beside its code; `make manifests`
// gathers them into config/rbac/role.yaml and the Helm chart.

// Leases: leader election gets, creates and updates its Lease; the containerinstance
// controller watches the agents' heartbeat Leases. Nothing patches or deletes one.
//
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
