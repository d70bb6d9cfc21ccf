package ecsapi

import (
	"strconv"
	"strings"

	"github.com/berthdev/berth/ecsapi/wire"
)

// DefaultCluster is the cluster of a call that names none, as in ECS.
const DefaultCluster = "default"

// ARNs formats ECS's long-format ARNs for one region and account.
type ARNs struct {
	Region  string
	Account string
}

func (a ARNs) prefix() string { return "arn:aws:ecs:" + a.Region + ":" + a.Account + ":" }

// Cluster is arn:aws:ecs:REGION:ACCOUNT:cluster/NAME.
func (a ARNs) Cluster(name string) string { return a.prefix() + "cluster/" + name }

// Service is arn:aws:ecs:REGION:ACCOUNT:service/CLUSTER/NAME.
func (a ARNs) Service(cluster, name string) string {
	return a.prefix() + "service/" + cluster + "/" + name
}

// Task is arn:aws:ecs:REGION:ACCOUNT:task/CLUSTER/ID.
func (a ARNs) Task(cluster, id string) string { return a.prefix() + "task/" + cluster + "/" + id }

// ContainerInstance is arn:aws:ecs:REGION:ACCOUNT:container-instance/CLUSTER/ID.
func (a ARNs) ContainerInstance(cluster, id string) string {
	return a.prefix() + "container-instance/" + cluster + "/" + id
}

// Container is arn:aws:ecs:REGION:ACCOUNT:container/CLUSTER/TASK-ID/NAME.
func (a ARNs) Container(cluster, taskID, name string) string {
	return a.prefix() + "container/" + cluster + "/" + taskID + "/" + name
}

// TaskDefinition is arn:aws:ecs:REGION:ACCOUNT:task-definition/FAMILY:REVISION.
func (a ARNs) TaskDefinition(family string, revision int32) string {
	return a.prefix() + "task-definition/" + family + ":" + strconv.FormatInt(int64(revision), 10)
}

// User is the IAM-style ARN of a Kubernetes user, for GetCallerIdentity and
// AccessDeniedException messages.
func (a ARNs) User(name string) string { return "arn:aws:iam::" + a.Account + ":user/" + name }

// Resource is a parsed ECS ARN.
type Resource struct {
	// Type is cluster, service, task, container-instance or task-definition.
	Type string
	// Parts are the resource path after the type: [name] for a cluster,
	// [cluster, name] for services, tasks and instances (or [name] in the short
	// format), [family:revision] for task definitions.
	Parts []string
}

// ParseARN reads an ECS ARN; member names the request field for the error.
func (a ARNs) ParseARN(member, s string) (Resource, error) {
	fields := strings.SplitN(s, ":", 6)
	if len(fields) != 6 || fields[0] != "arn" || fields[2] != "ecs" {
		return Resource{}, wire.InvalidParameter(member, "%q is not an ECS ARN", s)
	}
	if fields[3] != a.Region || fields[4] != a.Account {
		return Resource{}, wire.InvalidParameter(member, "%q is not in this endpoint's region %s and account %s", s, a.Region, a.Account)
	}
	typ, path, ok := strings.Cut(fields[5], "/")
	if !ok || path == "" {
		return Resource{}, wire.InvalidParameter(member, "%q has no resource after the type", s)
	}
	return Resource{Type: typ, Parts: strings.Split(path, "/")}, nil
}

// ClusterName is the name a cluster reference (name or ARN, empty for default)
// names.
func (a ARNs) ClusterName(member, ref string) (string, error) {
	if ref == "" {
		return DefaultCluster, nil
	}
	if !strings.HasPrefix(ref, "arn:") {
		return ref, nil
	}
	r, err := a.ParseARN(member, ref)
	if err != nil {
		return "", err
	}
	if r.Type != "cluster" || len(r.Parts) != 1 {
		return "", wire.InvalidParameter(member, "%q is not a cluster ARN", ref)
	}
	return r.Parts[0], nil
}

// Child reads a reference to a resource inside a cluster (a service, a task, a
// container instance): a name or ID, or an ARN in the long format
// (TYPE/CLUSTER/NAME) or the short one (TYPE/NAME). It returns the cluster the ARN
// names ("" when it names none) and the name.
func (a ARNs) Child(member, typ, ref string) (cluster, name string, err error) {
	if !strings.HasPrefix(ref, "arn:") {
		if ref == "" {
			return "", "", wire.InvalidParameter(member, "must not be empty")
		}
		return "", ref, nil
	}
	r, err := a.ParseARN(member, ref)
	if err != nil {
		return "", "", err
	}
	if r.Type != typ {
		return "", "", wire.InvalidParameter(member, "%q is not a %s ARN", ref, typ)
	}
	switch len(r.Parts) {
	case 1:
		return "", r.Parts[0], nil
	case 2:
		return r.Parts[0], r.Parts[1], nil
	}
	return "", "", wire.InvalidParameter(member, "%q is not a %s ARN", ref, typ)
}

// TaskDefinitionRef reads a task definition reference (family, family:revision or
// an ARN) into family and revision (0 for the latest ACTIVE).
func (a ARNs) TaskDefinitionRef(member, ref string) (family string, revision int32, err error) {
	s := ref
	if strings.HasPrefix(ref, "arn:") {
		r, err := a.ParseARN(member, ref)
		if err != nil {
			return "", 0, err
		}
		if r.Type != "task-definition" || len(r.Parts) != 1 {
			return "", 0, wire.InvalidParameter(member, "%q is not a task definition ARN", ref)
		}
		s = r.Parts[0]
	}
	family, rev, pinned := strings.Cut(s, ":")
	if family == "" {
		return "", 0, wire.InvalidParameter(member, "must be a family, family:revision or a task definition ARN")
	}
	if !pinned {
		return family, 0, nil
	}
	n, err := strconv.ParseInt(rev, 10, 32)
	if err != nil || n < 1 {
		return "", 0, wire.InvalidParameter(member, "revision %q must be a number from 1", rev)
	}
	return family, int32(n), nil
}
