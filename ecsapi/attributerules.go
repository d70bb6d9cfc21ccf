package ecsapi

import (
	"slices"
	"strings"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/ecsapi/wire"
)

// Custom attributes are the operator's attributes of a container instance
// (spec.attributes), as ECS's PutAttributes and DeleteAttributes manage them; the
// agent's own (status.attributes, the built-in ecs.* ones among them) are read-only
// here, as ECS's built-ins are.

// ECS's limits on attributes.
const (
	maxAttributesPerCall     = 10
	maxCustomAttributes      = 10
	maxAttributeName         = 128
	maxAttributeValue        = 128
	attributeTargetInstances = "container-instance"
)

// reservedAttributePrefixes are the names ECS sets itself.
var reservedAttributePrefixes = []string{"ecs.", "com.amazonaws.ecs."}

func attributeAlnum(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
}

// validAttributeName checks ECS's grammar (letters, digits, hyphens, underscores,
// periods, forward and back slashes; at most 128) and Berth's narrower one, which the
// ContainerInstance schema enforces: no back slash, and a letter or digit first.
func validAttributeName(member, name string) error {
	switch {
	case name == "":
		return wire.InvalidParameter(member, "must not be empty")
	case len(name) > maxAttributeName:
		return wire.InvalidParameter(member, "must be at most %d characters", maxAttributeName)
	}
	for _, p := range reservedAttributePrefixes {
		if strings.HasPrefix(name, p) {
			return wire.InvalidParameter(member, "%q: attribute names beginning with %s are reserved for the attributes the agent reports", name, p)
		}
	}
	for i := 0; i < len(name); i++ {
		b := name[i]
		switch {
		case attributeAlnum(b) || strings.IndexByte("-_./", b) >= 0:
		case b == '\\':
			return wire.InvalidParameter(member, "%q: back slashes are not supported by Berth in attribute names", name)
		default:
			return wire.InvalidParameter(member, "%q: only letters, numbers, hyphens, underscores, periods and slashes are allowed", name)
		}
	}
	if !attributeAlnum(name[0]) {
		return wire.InvalidParameter(member, "%q: Berth's attribute names begin with a letter or a number", name)
	}
	return nil
}

// validAttributeValue checks ECS's grammar (letters, digits, hyphens, underscores,
// periods, at signs, slashes, colons and spaces, not first or last; at most 128)
// without back slashes, which Berth's schema does not allow.
func validAttributeValue(member, value string) error {
	switch {
	case len(value) > maxAttributeValue:
		return wire.InvalidParameter(member, "must be at most %d characters", maxAttributeValue)
	case strings.HasPrefix(value, " ") || strings.HasSuffix(value, " "):
		return wire.InvalidParameter(member, "%q: the value can't start or end with a space", value)
	}
	for i := 0; i < len(value); i++ {
		b := value[i]
		switch {
		case attributeAlnum(b) || strings.IndexByte("-_.@/: ", b) >= 0:
		case b == '\\':
			return wire.InvalidParameter(member, "%q: back slashes are not supported by Berth in attribute values", value)
		default:
			return wire.InvalidParameter(member, "%q: only letters, numbers, hyphens, underscores, periods, at signs, slashes, colons and spaces are allowed", value)
		}
	}
	return nil
}

// withAttributes is current with attrs set (added, or their values replaced). An
// instance holds at most 10 custom attributes; one that holds more already (set with
// kubectl) may have its values changed but gain none.
func withAttributes(current, attrs []ecsv1alpha1.Attribute) ([]ecsv1alpha1.Attribute, error) {
	out := slices.Clone(current)
	for _, a := range attrs {
		i := slices.IndexFunc(out, func(x ecsv1alpha1.Attribute) bool { return x.Name == a.Name })
		if i >= 0 {
			out[i].Value = a.Value
			continue
		}
		out = append(out, a)
	}
	if len(out) > maxCustomAttributes && len(out) > len(current) {
		return nil, wire.Errorf(wire.AttributeLimitExceededException,
			"You can apply up to %d custom attributes for each resource.", maxCustomAttributes)
	}
	return out, nil
}

// withoutAttributes is current without the named attributes.
func withoutAttributes(current []ecsv1alpha1.Attribute, names []string) []ecsv1alpha1.Attribute {
	return slices.DeleteFunc(slices.Clone(current), func(a ecsv1alpha1.Attribute) bool {
		return slices.Contains(names, a.Name)
	})
}
