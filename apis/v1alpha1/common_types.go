package v1alpha1

// Types shared by several kinds: placement, attributes, key/value pairs and the
// condition vocabulary.

// DefaultClusterName is the cluster that tasks, services and instances join when they
// name none, as in ECS.
const DefaultClusterName = "default"

// Condition types that more than one kind reports.
const (
	// ConditionReady summarises an object: True when it is doing what its spec asks.
	ConditionReady = "Ready"
	// ConditionAccepted is False when the spec is valid to the schema but fails a check
	// that the schema cannot express (a dependsOn cycle, a malformed placement
	// expression, a reference to a missing revision). The message names the field.
	ConditionAccepted = "Accepted"
)

// Condition reasons shared by several kinds. Reasons are PascalCase and stable: tools
// and alerts match on them.
const (
	ReasonValid             = "Valid"
	ReasonInvalidSpec       = "InvalidSpec"
	ReasonRevisionNotFound  = "RevisionNotFound"
	ReasonReconcileError    = "ReconcileError"
	ReasonReconcileComplete = "ReconcileComplete"
)

// KeyValuePair is a name and a value, as ECS's environment entries.
type KeyValuePair struct {
	// name of the variable.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z][-._a-zA-Z0-9]*$`
	Name string `json:"name"`

	// value of the variable.
	// +optional
	// +kubebuilder:validation:MaxLength=32768
	Value string `json:"value,omitempty"`
}

// Attribute is a name/value pair attached to a container instance, matched by
// memberOf placement constraints and spread strategies (`attribute:<name>`).
type Attribute struct {
	// name of the attribute, for example `ecs.availability-zone` or `stack`.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9][a-zA-Z0-9_./-]*$`
	Name string `json:"name"`

	// value of the attribute; empty for a flag-style attribute that is only present.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9_./:@ -]*$`
	Value string `json:"value,omitempty"`
}

// PlacementConstraintType names a placement constraint.
// +kubebuilder:validation:Enum=distinctInstance;memberOf
// +kubebuilder:validation:MaxLength=16
type PlacementConstraintType string

const (
	// PlacementConstraintDistinctInstance places each task of a group on a different
	// instance.
	PlacementConstraintDistinctInstance PlacementConstraintType = "distinctInstance"
	// PlacementConstraintMemberOf restricts placement to instances whose attributes
	// satisfy an expression.
	PlacementConstraintMemberOf PlacementConstraintType = "memberOf"
)

// PlacementConstraint is a rule every candidate instance must satisfy.
// +kubebuilder:validation:XValidation:rule="self.type != 'memberOf' || (has(self.expression) && size(self.expression) > 0)",message="a memberOf constraint needs an expression",fieldPath=".expression"
// +kubebuilder:validation:XValidation:rule="self.type != 'distinctInstance' || !has(self.expression)",message="a distinctInstance constraint takes no expression",fieldPath=".expression"
type PlacementConstraint struct {
	// type of the constraint: distinctInstance or memberOf.
	// +required
	Type PlacementConstraintType `json:"type"`

	// expression over instance attributes for memberOf, in ECS's cluster query
	// language, for example `attribute:ecs.availability-zone in [zone-a, zone-b]` or
	// `attribute:stack == prod and attribute:ecs.instance-type =~ m5.*`. It is parsed by
	// the manager; a malformed expression is reported on the object's Accepted
	// condition with the position of the error.
	// +optional
	// +kubebuilder:validation:MaxLength=2000
	Expression string `json:"expression,omitempty"`
}

// TaskDefinitionPlacementConstraint is a placement constraint inside a task definition,
// where ECS allows only memberOf.
type TaskDefinitionPlacementConstraint struct {
	// type of the constraint; only memberOf is allowed in a task definition.
	// +required
	// +kubebuilder:validation:Enum=memberOf
	Type PlacementConstraintType `json:"type"`

	// expression over instance attributes; see PlacementConstraint.expression.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2000
	Expression string `json:"expression"`
}

// PlacementStrategyType names a placement strategy.
// +kubebuilder:validation:Enum=binpack;spread;random
// +kubebuilder:validation:MaxLength=7
type PlacementStrategyType string

const (
	// PlacementStrategyBinpack places tasks on the instances with the least remaining
	// amount of the field (cpu or memory).
	PlacementStrategyBinpack PlacementStrategyType = "binpack"
	// PlacementStrategySpread spreads tasks evenly over the values of the field
	// (instanceId or attribute:<name>).
	PlacementStrategySpread PlacementStrategyType = "spread"
	// PlacementStrategyRandom places tasks randomly.
	PlacementStrategyRandom PlacementStrategyType = "random"
)

// PlacementStrategy orders candidate instances; strategies apply in list order, each
// breaking the ties of the previous one.
// +kubebuilder:validation:XValidation:rule="self.type != 'binpack' || (has(self.field) && self.field in ['cpu', 'memory'])",message="binpack needs field cpu or memory",fieldPath=".field"
// +kubebuilder:validation:XValidation:rule="self.type != 'spread' || (has(self.field) && (self.field in ['instanceId', 'host'] || (self.field.startsWith('attribute:') && size(self.field) > 10)))",message="spread needs field instanceId or attribute:<name>",fieldPath=".field"
// +kubebuilder:validation:XValidation:rule="self.type != 'random' || !has(self.field)",message="random takes no field",fieldPath=".field"
type PlacementStrategy struct {
	// type of the strategy: binpack, spread or random.
	// +required
	Type PlacementStrategyType `json:"type"`

	// field the strategy works on: cpu or memory for binpack; instanceId (or its ECS
	// alias host) or attribute:<name> for spread; none for random.
	// +optional
	// +kubebuilder:validation:MaxLength=139
	Field string `json:"field,omitempty"`
}
