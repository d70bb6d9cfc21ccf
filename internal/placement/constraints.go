package placement

import (
	"errors"
	"fmt"
	"strconv"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// Constraint is a parsed placement constraint.
type Constraint struct {
	// Type is distinctInstance or memberOf.
	Type ecsv1alpha1.PlacementConstraintType
	// Expression is the memberOf expression; nil for distinctInstance.
	Expression Expression
}

// FieldError is an invalid placement field, named by its path relative to the spec
// that holds it (placementConstraints[1].expression), so that a controller can report
// it on the Accepted condition. Err is often a *SyntaxError.
type FieldError struct {
	Field string
	Err   error
}

// Error reads `placementConstraints[1].expression: position 3: ...`: the syntax error's
// own "expression:" prefix would repeat the field name.
func (e *FieldError) Error() string {
	var se *SyntaxError
	if errors.As(e.Err, &se) {
		return fmt.Sprintf("%s: position %d: %s", e.Field, se.Pos, se.Msg)
	}
	return e.Field + ": " + e.Err.Error()
}

func (e *FieldError) Unwrap() error { return e.Err }

// ParseConstraints parses the placement constraints of a task or service. The CRD
// schema already rejects most malformed constraints; parsing checks them again because
// expressions can only be checked here.
func ParseConstraints(cs []ecsv1alpha1.PlacementConstraint) ([]Constraint, error) {
	out := make([]Constraint, 0, len(cs))
	for i, c := range cs {
		switch c.Type {
		case ecsv1alpha1.PlacementConstraintDistinctInstance:
			if c.Expression != "" {
				return nil, &FieldError{Field: fieldPath(i, "expression"), Err: errors.New("a distinctInstance constraint takes no expression")}
			}
			out = append(out, Constraint{Type: c.Type})
		case ecsv1alpha1.PlacementConstraintMemberOf:
			x, err := parseMemberOf(i, c.Expression)
			if err != nil {
				return nil, err
			}
			out = append(out, Constraint{Type: c.Type, Expression: x})
		default:
			return nil, &FieldError{Field: fieldPath(i, "type"), Err: fmt.Errorf("unsupported placement constraint type %q", c.Type)}
		}
	}
	return out, nil
}

// ParseTaskDefinitionConstraints parses a task definition's constraints, which ECS
// limits to memberOf.
func ParseTaskDefinitionConstraints(cs []ecsv1alpha1.TaskDefinitionPlacementConstraint) ([]Constraint, error) {
	out := make([]Constraint, 0, len(cs))
	for i, c := range cs {
		if c.Type != ecsv1alpha1.PlacementConstraintMemberOf {
			return nil, &FieldError{Field: fieldPath(i, "type"), Err: fmt.Errorf("a task definition allows only memberOf constraints, not %q", c.Type)}
		}
		x, err := parseMemberOf(i, c.Expression)
		if err != nil {
			return nil, err
		}
		out = append(out, Constraint{Type: c.Type, Expression: x})
	}
	return out, nil
}

func parseMemberOf(i int, expression string) (Expression, error) {
	x, err := ParseExpression(expression)
	if err != nil {
		return nil, &FieldError{Field: fieldPath(i, "expression"), Err: err}
	}
	return x, nil
}

func fieldPath(i int, field string) string {
	return "placementConstraints[" + strconv.Itoa(i) + "]." + field
}

// ReasonKind is why an instance cannot run a task, as a bounded set fit for metric
// labels. ReasonCount.Reason carries the detail a user reads.
type ReasonKind string

// Reasons in the order they are checked: an instance is counted under the first that
// applies, so "DRAINING" hides whether it also lacks memory.
const (
	ReasonNotConnected       ReasonKind = "NotConnected"
	ReasonNotActive          ReasonKind = "NotActive"
	ReasonInsufficientCPU    ReasonKind = "InsufficientCPU"
	ReasonInsufficientMemory ReasonKind = "InsufficientMemory"
	ReasonInsufficientGPU    ReasonKind = "InsufficientGPU"
	ReasonPortInUse          ReasonKind = "PortInUse"
	ReasonDistinctInstance   ReasonKind = "DistinctInstance"
	ReasonMemberOf           ReasonKind = "MemberOf"
)

// exclusion is the first reason an instance cannot run a task; kind is empty when it
// can. It is a plain value so that the placement loop allocates nothing.
type exclusion struct {
	kind       ReasonKind
	port       int32
	udp        bool
	constraint int
}

// exclude checks whether n can run the task, in the order of the Reason constants.
// gs is the request's group, nil when no task of it is assumed anywhere.
//
//nolint:gocyclo // the checks are ordered like the reasons users read; splitting them hides the order
func exclude(n *node, req *Request, gs *groupState) exclusion {
	switch {
	case !n.connected:
		return exclusion{kind: ReasonNotConnected}
	case n.status != ecsv1alpha1.InstanceActive:
		return exclusion{kind: ReasonNotActive}
	case req.CPU > 0 && req.CPU > n.cpu-n.usedCPU:
		return exclusion{kind: ReasonInsufficientCPU}
	case req.Memory > 0 && req.Memory > n.memory-n.usedMemory:
		return exclusion{kind: ReasonInsufficientMemory}
	case req.GPUs > 0 && req.GPUs > n.gpus.free():
		return exclusion{kind: ReasonInsufficientGPU}
	}
	for _, p := range req.TCPPorts {
		if n.portInUse(p, false) {
			return exclusion{kind: ReasonPortInUse, port: p}
		}
	}
	for _, p := range req.UDPPorts {
		if n.portInUse(p, true) {
			return exclusion{kind: ReasonPortInUse, port: p, udp: true}
		}
	}
	for i := range req.Constraints {
		c := &req.Constraints[i]
		switch c.Type {
		case ecsv1alpha1.PlacementConstraintDistinctInstance:
			if req.Group != "" && gs.count(n.slot) > 0 {
				return exclusion{kind: ReasonDistinctInstance, constraint: i}
			}
		case ecsv1alpha1.PlacementConstraintMemberOf:
			if c.Expression != nil && !c.Expression.Eval(n) {
				return exclusion{kind: ReasonMemberOf, constraint: i}
			}
		}
	}
	return exclusion{}
}

// maxReasonExpression bounds how much of a memberOf expression a reason quotes: the
// reason ends up in Events, whose messages the apiserver truncates.
const maxReasonExpression = 80

// reason is what a user reads for the exclusion.
func (x exclusion) reason(n *node, req *Request) string {
	switch x.kind {
	case ReasonNotConnected:
		return "not connected"
	case ReasonNotActive:
		if n.status == "" {
			// The manager has not set a status yet: the instance is still registering.
			return string(ecsv1alpha1.InstanceRegistering)
		}
		return string(n.status)
	case ReasonInsufficientCPU:
		return "insufficient cpu"
	case ReasonInsufficientMemory:
		return "insufficient memory"
	case ReasonInsufficientGPU:
		return fmt.Sprintf("fewer than %d free GPUs", req.GPUs)
	case ReasonPortInUse:
		proto := "tcp"
		if x.udp {
			proto = "udp"
		}
		return fmt.Sprintf("port %d/%s in use", x.port, proto)
	case ReasonDistinctInstance:
		return "distinctInstance"
	case ReasonMemberOf:
		expr := req.Constraints[x.constraint].Expression.String()
		if len(expr) > maxReasonExpression {
			expr = expr[:maxReasonExpression] + "..."
		}
		return "memberOf constraint (" + expr + ")"
	}
	return ""
}
