package taskrules

import (
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// Kinds of object a task definition reads values from.
const (
	KindSecret    = "Secret"
	KindConfigMap = "ConfigMap"
)

// Reference is a Secret or ConfigMap, in the task's namespace, that a task reads.
type Reference struct {
	Kind string // KindSecret or KindConfigMap
	Name string
}

// References are the Secrets and ConfigMaps spec reads (environment files, secret
// variables, repository credentials), each once. The agent reads exactly these when
// it starts the task's containers (agent/secrets), and the manager's gateway lets an
// agent read exactly these for a task bound to it: one rule, so that a field added to
// one side and not the other fails their shared test instead of a task in production.
func References(spec *ecsv1alpha1.TaskDefinitionSpec) []Reference {
	var out []Reference
	seen := map[Reference]bool{}
	add := func(r Reference) {
		if r.Name != "" && !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	for _, c := range spec.ContainerDefinitions {
		for _, f := range c.EnvironmentFiles {
			if f.Type == ecsv1alpha1.EnvironmentFileSecret {
				add(Reference{KindSecret, f.Value})
			} else {
				add(Reference{KindConfigMap, f.Value})
			}
		}
		for _, s := range c.Secrets {
			switch {
			case s.ValueFrom.SecretKeyRef != nil:
				add(Reference{KindSecret, s.ValueFrom.SecretKeyRef.Name})
			case s.ValueFrom.ConfigMapKeyRef != nil:
				add(Reference{KindConfigMap, s.ValueFrom.ConfigMapKeyRef.Name})
			}
		}
		if c.RepositoryCredentials != nil {
			add(Reference{KindSecret, c.RepositoryCredentials.CredentialsParameter})
		}
	}
	return out
}

// Reads tells whether spec reads the object kind/name.
func Reads(spec *ecsv1alpha1.TaskDefinitionSpec, kind, name string) bool {
	for _, r := range References(spec) {
		if r.Kind == kind && r.Name == name {
			return true
		}
	}
	return false
}
