package ecsimport

import (
	"fmt"
	"strings"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// DefaultSecretKey is the key of the Kubernetes Secret a valueFrom maps to when the
// ECS reference names no JSON key: the whole secret or parameter value.
const DefaultSecretKey = "value"

// SecretRef maps an ECS secret reference (secrets[].valueFrom,
// logConfiguration.secretOptions[].valueFrom, repositoryCredentials) to a key of a
// Kubernetes Secret in the task's namespace. The rule, documented in
// docs/taskdefinitions.md:
//
//   - Secrets Manager ARN arn:aws:secretsmanager:<region>:<account>:secret:<name>[:<json-key>[:<stage>[:<version>]]]:
//     the Secret is <name> without the six random characters ECS appends to complete
//     ARNs (-AbCdEf), made a Kubernetes name; the key is <json-key>, or "value".
//   - SSM parameter ARN arn:aws:ssm:<region>:<account>:parameter/<path>, or a plain
//     parameter name or path: the Secret is the path made a Kubernetes name
//     (/prod/db/password -> prod-db-password); the key is "value".
//
// Version stages and IDs have no equivalent: a Secret has one value; they are
// refused rather than ignored.
func SecretRef(valueFrom string) (*ecsv1alpha1.KeySelector, error) {
	v := strings.TrimSpace(valueFrom)
	if v == "" {
		return nil, fmt.Errorf("empty reference")
	}
	name, key := "", DefaultSecretKey
	switch {
	case strings.HasPrefix(v, "arn:"):
		parts := strings.SplitN(v, ":", 6)
		if len(parts) < 6 {
			return nil, fmt.Errorf("%q is not an ARN (arn:partition:service:region:account:resource)", v)
		}
		service, resource := parts[2], parts[5]
		switch service {
		case "secretsmanager":
			rest, ok := strings.CutPrefix(resource, "secret:")
			if !ok {
				return nil, fmt.Errorf("%q: a Secrets Manager ARN names secret:<name>", v)
			}
			fields := strings.Split(rest, ":")
			name = withoutRandomSuffix(fields[0])
			if len(fields) > 1 && fields[1] != "" {
				key = fields[1]
			}
			if len(fields) > 2 && strings.Join(fields[2:], "") != "" {
				return nil, fmt.Errorf("%q: version stages and IDs have no equivalent in a Kubernetes Secret", v)
			}
		case "ssm":
			path, ok := strings.CutPrefix(resource, "parameter")
			if !ok {
				return nil, fmt.Errorf("%q: an SSM ARN names parameter/<name>", v)
			}
			name = path
		default:
			return nil, fmt.Errorf("%q: only Secrets Manager and SSM Parameter Store references map to Secrets", v)
		}
	default:
		name = v // an SSM parameter name or path in the task's region
	}
	sel := &ecsv1alpha1.KeySelector{Name: KubeName(name, 253), Key: key}
	if sel.Name == "" {
		return nil, fmt.Errorf("%q names no secret", v)
	}
	return sel, nil
}

func isAlnum(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
}

// withoutRandomSuffix strips the "-" and six letters or digits Secrets Manager
// appends to a secret's name in its complete ARN.
func withoutRandomSuffix(name string) string {
	i := len(name) - 7
	if i <= 0 || name[i] != '-' {
		return name
	}
	for _, r := range name[i+1:] {
		if !isAlnum(r) {
			return name
		}
	}
	return name[:i]
}
