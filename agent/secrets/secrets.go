// Package secrets resolves what a task's containers read from Secrets and ConfigMaps:
// environment files, secret environment variables and private registry credentials.
// Values are read when a container is created, handed to the runtime and never
// logged, labelled or reported: errors name the object and key, never a value.
package secrets

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berthdev/berth/agent/runtime"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// MissingError says a referenced Secret, ConfigMap or key does not exist. The task
// cannot start until it does; the message names what is missing.
type MissingError struct {
	Field  string // e.g. containerDefinitions[0].secrets[1].valueFrom.secretKeyRef
	Object string // "Secret ns/name" or "ConfigMap ns/name"
	Key    string
}

func (e *MissingError) Error() string {
	if e.Key != "" {
		return fmt.Sprintf("%s: %s has no key %q", e.Field, e.Object, e.Key)
	}
	return fmt.Sprintf("%s: %s not found", e.Field, e.Object)
}

// Values is a container's resolved environment: names to values. Its String and
// GoString hide the values, so it cannot leak through a log line or %v.
type Values map[string]string

// String lists the names only, sorted.
func (v Values) String() string {
	return "Values{" + strings.Join(slices.Sorted(maps.Keys(v)), ",") + "} (values redacted)"
}

// GoString is String, for %#v.
func (v Values) GoString() string { return v.String() }

// MarshalLog is what logr sinks print: the names only.
func (v Values) MarshalLog() any { return v.String() }

// MarshalJSON encodes the names only.
func (v Values) MarshalJSON() ([]byte, error) { return json.Marshal(v.String()) }

// Resolver reads Secrets and ConfigMaps with get requests (the agent may read only
// those its tasks reference, so it neither lists nor caches them).
type Resolver struct {
	Reader client.Reader
}

// Env resolves every container's environment files and secret variables, in that
// precedence order (later wins): environment files, then secrets. The task
// definition's plain environment is added by the engine and wins over environment
// files but not over secrets, as in ECS.
func (r *Resolver) Env(ctx context.Context, namespace string, spec *ecsv1alpha1.TaskDefinitionSpec) (map[string]Values, error) {
	out := map[string]Values{}
	for ci, c := range spec.ContainerDefinitions {
		vals := Values{}
		for fi, f := range c.EnvironmentFiles {
			field := fmt.Sprintf("containerDefinitions[%d].environmentFiles[%d]", ci, fi)
			data, err := r.all(ctx, namespace, f.Type == ecsv1alpha1.EnvironmentFileSecret, f.Value, field)
			if err != nil {
				return nil, err
			}
			for k, v := range data {
				vals[k] = v
			}
		}
		for si, s := range c.Secrets {
			field := fmt.Sprintf("containerDefinitions[%d].secrets[%d].valueFrom", ci, si)
			v, err := r.key(ctx, namespace, s.ValueFrom, field)
			if err != nil {
				return nil, err
			}
			vals[s.Name] = v
		}
		if len(vals) > 0 {
			out[c.Name] = vals
		}
	}
	return out, nil
}

func (r *Resolver) all(ctx context.Context, ns string, secret bool, name, field string) (map[string]string, error) {
	if secret {
		s, err := r.secret(ctx, ns, name, field)
		if err != nil {
			return nil, err
		}
		out := make(map[string]string, len(s.Data))
		for k, v := range s.Data {
			out[k] = string(v)
		}
		return out, nil
	}
	cm, err := r.configMap(ctx, ns, name, field)
	if err != nil {
		return nil, err
	}
	return cm.Data, nil
}

func (r *Resolver) key(ctx context.Context, ns string, src ecsv1alpha1.SecretValueSource, field string) (string, error) {
	switch {
	case src.SecretKeyRef != nil:
		s, err := r.secret(ctx, ns, src.SecretKeyRef.Name, field+".secretKeyRef")
		if err != nil {
			return "", err
		}
		v, ok := s.Data[src.SecretKeyRef.Key]
		if !ok {
			return "", &MissingError{Field: field + ".secretKeyRef", Object: "Secret " + ns + "/" + s.Name, Key: src.SecretKeyRef.Key}
		}
		return string(v), nil
	case src.ConfigMapKeyRef != nil:
		cm, err := r.configMap(ctx, ns, src.ConfigMapKeyRef.Name, field+".configMapKeyRef")
		if err != nil {
			return "", err
		}
		v, ok := cm.Data[src.ConfigMapKeyRef.Key]
		if !ok {
			return "", &MissingError{Field: field + ".configMapKeyRef", Object: "ConfigMap " + ns + "/" + cm.Name, Key: src.ConfigMapKeyRef.Key}
		}
		return v, nil
	}
	return "", fmt.Errorf("%s: neither secretKeyRef nor configMapKeyRef is set", field)
}

func (r *Resolver) secret(ctx context.Context, ns, name, field string) (*corev1.Secret, error) {
	var s corev1.Secret
	if err := r.Reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, &MissingError{Field: field, Object: "Secret " + ns + "/" + name}
		}
		return nil, fmt.Errorf("%s: reading Secret %s/%s: %w", field, ns, name, err)
	}
	return &s, nil
}

func (r *Resolver) configMap(ctx context.Context, ns, name, field string) (*corev1.ConfigMap, error) {
	var cm corev1.ConfigMap
	if err := r.Reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &cm); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, &MissingError{Field: field, Object: "ConfigMap " + ns + "/" + name}
		}
		return nil, fmt.Errorf("%s: reading ConfigMap %s/%s: %w", field, ns, name, err)
	}
	return &cm, nil
}

// RegistryAuth reads the pull credentials of each container that names
// repositoryCredentials: a kubernetes.io/dockerconfigjson Secret, matched to the
// registry of the container's image. It returns credentials per container name.
func (r *Resolver) RegistryAuth(ctx context.Context, namespace string, spec *ecsv1alpha1.TaskDefinitionSpec) (map[string]*runtime.Auth, error) {
	out := map[string]*runtime.Auth{}
	for i, c := range spec.ContainerDefinitions {
		if c.RepositoryCredentials == nil {
			continue
		}
		field := fmt.Sprintf("containerDefinitions[%d].repositoryCredentials.credentialsParameter", i)
		s, err := r.secret(ctx, namespace, c.RepositoryCredentials.CredentialsParameter, field)
		if err != nil {
			return nil, err
		}
		auth, err := dockerConfigAuth(s, RegistryHost(c.Image))
		if err != nil {
			return nil, fmt.Errorf("%s: Secret %s/%s: %w", field, namespace, s.Name, err)
		}
		out[c.Name] = auth
	}
	return out, nil
}

// RegistryHost is the registry part of an image reference, as Docker reads it: the
// first path component when it has a dot or a port or is localhost. It is "" for an
// image of the runtime's default registry; private images should name their registry.
func RegistryHost(image string) string {
	first, _, found := strings.Cut(image, "/")
	if found && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return first
	}
	return ""
}

type dockerConfig struct {
	Auths map[string]struct {
		Username string `json:"username"`
		Password string `json:"password"`
		Auth     string `json:"auth"`
	} `json:"auths"`
}

func dockerConfigAuth(s *corev1.Secret, host string) (*runtime.Auth, error) {
	raw, ok := s.Data[corev1.DockerConfigJsonKey]
	if !ok {
		return nil, fmt.Errorf("not a %s Secret: no %s key", corev1.SecretTypeDockerConfigJson, corev1.DockerConfigJsonKey)
	}
	var cfg dockerConfig
	if err := json.Unmarshal(raw, &cfg); err != nil {
		// The decoder's message can quote the input; do not pass it on.
		return nil, errors.New("its .dockerconfigjson is not valid JSON")
	}
	if host == "" {
		return nil, errors.New("the image names no registry; name it (registry.example:5000/repo:tag) to use credentials")
	}
	for key, a := range cfg.Auths {
		if normalizeHost(key) != host {
			continue
		}
		if a.Username != "" || a.Password != "" {
			return &runtime.Auth{Username: a.Username, Password: a.Password}, nil
		}
		dec, err := base64.StdEncoding.DecodeString(a.Auth)
		user, pass, ok := strings.Cut(string(dec), ":")
		if err != nil || !ok {
			return nil, fmt.Errorf("its auth entry for %s is not base64 user:password", key)
		}
		return &runtime.Auth{Username: user, Password: pass}, nil
	}
	return nil, fmt.Errorf("it has no credentials for registry %s", host)
}

// normalizeHost reduces a .dockerconfigjson key ("https://host:5000/v1/") to host:port.
func normalizeHost(h string) string {
	h = strings.TrimPrefix(strings.TrimPrefix(h, "https://"), "http://")
	h, _, _ = strings.Cut(h, "/")
	return h
}
