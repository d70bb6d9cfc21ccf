package ecsapi

// RBAC of `berth api`'s own identity. Every call acts as the caller through
// impersonation, so the server itself needs little: `make manifests` gathers these
// markers into config/rbac/api/role.yaml (ClusterRole and Role berth-api), which
// `berth up` applies and the Helm chart renders.
//
// Impersonation of the identity a credential names: a user, its groups, or a
// ServiceAccount ("system:serviceaccount:<ns>:<name>" users are authorised against
// serviceaccounts).
//
// +kubebuilder:rbac:groups="",resources=users;groups;serviceaccounts,verbs=impersonate
//
// The records of deleted services, which ECS keeps visible as INACTIVE for a while:
// ConfigMaps in the caller's namespace that no user owns, written by the server
// after the caller's own DeleteService was allowed.
//
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;list;create;update;delete
//
// Reads that are not the caller's to make: whether the cluster a task or instance
// call names exists (clusters are shared, and a user bound only in its namespace
// may run tasks in one) and its ECS name (Application Auto Scaling's resource IDs
// name a service's cluster), and the tasks bound to an instance in every namespace
// before DeregisterContainerInstance without force (the caller sees only its own).
// None of these answers carries another namespace's data back to the caller.
//
// +kubebuilder:rbac:groups=ecs.berth.dev,resources=clusters,verbs=get
// +kubebuilder:rbac:groups=ecs.berth.dev,resources=tasks,verbs=list
//
// The credential Secrets, watched in one namespace: berth-system is `berth api`'s
// default --credentials-namespace (and `berth up`'s); the chart grants the same
// rules in its release namespace.
//
// +kubebuilder:rbac:groups="",namespace=berth-system,resources=secrets,verbs=get;list;watch
