package ecsapi

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/ecsapi/wire"
	"github.com/berthdev/berth/internal/ecsimport"
)

// A task definition travels in two shapes: ECS's (RegisterTaskDefinition's input,
// DescribeTaskDefinition's output) and Berth's TaskDefinitionSpec. ecsimport turns the
// first into the second; this file turns a spec back into ECS's shape, as a JSON
// object with ECS's member names (Berth's field names are ECS's, so most members pass
// as they are), in three steps:
//
//  1. specShape: the spec in ECS's shapes (a secret's Secret key becomes a valueFrom
//     string, task cpu and memory strings, Berth-only fields left out);
//  2. ecsDefaults: the members ECS adds to what it echoes (essential true, cpu 0, empty
//     lists, protocol tcp, ...);
//  3. a registration's patch: what the spec cannot say of the definition as it was
//     registered (the ARN a Secret name came from, a member the apiserver defaulted,
//     a false or empty member), recorded when the API registered it.
//
// So DescribeTaskDefinition answers exactly what RegisterTaskDefinition was sent, plus
// ECS's own additions, and a definition applied with kubectl reads sensibly too.

// specShape returns spec as ECS's TaskDefinition members, family excluded. ARNs of
// secrets are written for arns' region and account.
func specShape(spec *ecsv1alpha1.TaskDefinitionSpec, arns ARNs) (map[string]any, error) {
	raw, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	// ECS keeps a revision's tags beside it; the history limit is Berth's.
	delete(m, "tags")
	delete(m, "revisionHistoryLimit")
	for _, k := range []string{"cpu", "memory"} {
		if n, ok := m[k].(float64); ok {
			m[k] = strconv.FormatFloat(n, 'f', -1, 64)
		}
	}
	for _, c := range objects(m["containerDefinitions"]) {
		containerShape(c, arns)
	}
	return m, nil
}

func containerShape(c map[string]any, arns ARNs) {
	for _, s := range objects(c["secrets"]) {
		s["valueFrom"] = secretValueFrom(s["valueFrom"], arns)
	}
	if lc, ok := c["logConfiguration"].(map[string]any); ok {
		for _, s := range objects(lc["secretOptions"]) {
			s["valueFrom"] = secretValueFrom(s["valueFrom"], arns)
		}
	}
	for _, p := range objects(c["portMappings"]) {
		// containerPort 0 is Berth's "a containerPortRange instead".
		if p["containerPort"] == float64(0) {
			delete(p, "containerPort")
		}
	}
}

// secretValueFrom writes a Secret key as the ECS reference ecsimport.SecretRef maps
// back to it: the whole value of a parameter named after the Secret, or a JSON key of
// a Secrets Manager secret. A ConfigMap key has no ECS form; it is named plainly.
func secretValueFrom(v any, arns ARNs) any {
	src, _ := v.(map[string]any)
	if sel, ok := src["secretKeyRef"].(map[string]any); ok {
		name, key := sel["name"], sel["key"]
		if key == ecsimport.DefaultSecretKey {
			return name
		}
		return fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:%s:%s::", arns.Region, arns.Account, name, key)
	}
	if sel, ok := src["configMapKeyRef"].(map[string]any); ok {
		return fmt.Sprintf("configmap:%s:%s", sel["name"], sel["key"])
	}
	return v
}

// ecsDefaults adds the members ECS answers for a definition that did not set them.
func ecsDefaults(m map[string]any) {
	setDefault(m, "networkMode", string(ecsv1alpha1.NetworkModeBridge))
	setDefault(m, "volumes", []any{})
	setDefault(m, "placementConstraints", []any{})
	for _, v := range objects(m["volumes"]) {
		// A volume of neither kind is a Docker-managed one, which ECS shows as host {}.
		if v["host"] == nil && v["dockerVolumeConfiguration"] == nil {
			v["host"] = map[string]any{}
		}
	}
	for _, c := range objects(m["containerDefinitions"]) {
		containerDefaults(c, m["networkMode"])
	}
}

func containerDefaults(c map[string]any, networkMode any) {
	setDefault(c, "cpu", float64(0))
	setDefault(c, "essential", true)
	for _, k := range []string{"portMappings", "environment", "mountPoints", "volumesFrom", "systemControls"} {
		setDefault(c, k, []any{})
	}
	for _, p := range objects(c["portMappings"]) {
		setDefault(p, "protocol", string(ecsv1alpha1.ProtocolTCP))
		port, ok := p["containerPort"]
		if !ok || p["containerPortRange"] != nil {
			continue
		}
		// A dynamic host port (0) in bridge mode; the container's own port where the
		// task has its own address or the instance's.
		if networkMode == string(ecsv1alpha1.NetworkModeBridge) {
			setDefault(p, "hostPort", float64(0))
		} else {
			setDefault(p, "hostPort", port)
		}
	}
	if hc, ok := c["healthCheck"].(map[string]any); ok {
		setDefault(hc, "interval", float64(30))
		setDefault(hc, "timeout", float64(5))
		setDefault(hc, "retries", float64(3))
	}
}

func setDefault(m map[string]any, key string, v any) {
	if _, ok := m[key]; !ok {
		m[key] = v
	}
}

func objects(v any) []map[string]any {
	list, _ := v.([]any)
	out := make([]map[string]any, 0, len(list))
	for _, e := range list {
		if m, ok := e.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// compatibilities are the launch types ECS reports a definition compatible with:
// EXTERNAL (ECS Anywhere, which has no awsvpc), EC2 always, FARGATE for an awsvpc
// definition with task-level cpu and memory. Berth runs every task on its container
// instances whatever the list says.
func compatibilities(m map[string]any) []types.Compatibility {
	awsvpc := m["networkMode"] == string(ecsv1alpha1.NetworkModeAWSVPC)
	var out []types.Compatibility
	if !awsvpc {
		out = append(out, types.CompatibilityExternal)
	}
	out = append(out, types.CompatibilityEc2)
	if awsvpc && m["cpu"] != nil && m["memory"] != nil {
		out = append(out, types.CompatibilityFargate)
	}
	return out
}

// inputShape is RegisterTaskDefinition's input as ECS's TaskDefinition members, with
// ECS's defaults: what DescribeTaskDefinition must answer for it.
func inputShape(in any) (map[string]any, error) {
	raw, err := wire.ECS.Marshal(in)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	delete(m, "family")
	delete(m, "tags")
	ecsDefaults(m)
	return m, nil
}

// registration is what the API keeps of a content it registered (by content hash, in
// the TaskDefinition's AnnotationRegistrations): who registered it, and the patch that
// turns the spec's shape into the definition as sent.
type registration struct {
	RegisteredBy string     `json:"registeredBy,omitempty"`
	Set          []setPatch `json:"set,omitempty"`
	Unset        [][]any    `json:"unset,omitempty"`
}

// setPatch sets the member at Path (member names and list indices) to Value.
type setPatch struct {
	Path  []any `json:"path"`
	Value any   `json:"value"`
}

// diffShapes records how got (the spec's shape) differs from want (the input's): the
// members to set and those to remove. Lists of another length are set whole.
func diffShapes(want, got any) registration {
	var r registration
	r.diff(nil, want, got)
	return r
}

func (r *registration) diff(path []any, want, got any) {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			break
		}
		for _, k := range slices.Sorted(maps.Keys(w)) {
			if _, in := g[k]; in {
				r.diff(appendPath(path, k), w[k], g[k])
			} else {
				r.Set = append(r.Set, setPatch{Path: appendPath(path, k), Value: w[k]})
			}
		}
		for _, k := range slices.Sorted(maps.Keys(g)) {
			if _, in := w[k]; !in {
				r.Unset = append(r.Unset, appendPath(path, k))
			}
		}
		return
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			break
		}
		for i := range w {
			r.diff(appendPath(path, i), w[i], g[i])
		}
		return
	}
	if !reflect.DeepEqual(want, got) {
		r.Set = append(r.Set, setPatch{Path: path, Value: want})
	}
}

// apply patches a shape: removals first, so a member removed and set is set.
func (r *registration) apply(m map[string]any) {
	for _, p := range r.Unset {
		if parent, last := walk(m, p); parent != nil {
			if obj, ok := parent.(map[string]any); ok {
				delete(obj, fmt.Sprint(last))
			}
		}
	}
	for _, p := range r.Set {
		parent, last := walk(m, p.Path)
		switch c := parent.(type) {
		case map[string]any:
			c[fmt.Sprint(last)] = p.Value
		case []any:
			if i, ok := index(last); ok && i < len(c) {
				c[i] = p.Value
			}
		}
	}
}

// walk returns the container of the member path names, and the last step.
func walk(m map[string]any, path []any) (any, any) {
	if len(path) == 0 {
		return nil, nil
	}
	var cur any = m
	for _, step := range path[:len(path)-1] {
		switch c := cur.(type) {
		case map[string]any:
			cur = c[fmt.Sprint(step)]
		case []any:
			i, ok := index(step)
			if !ok || i >= len(c) {
				return nil, nil
			}
			cur = c[i]
		default:
			return nil, nil
		}
	}
	return cur, path[len(path)-1]
}

// index reads a list index of a path, an int when made here, a float64 when read
// back from JSON.
func index(step any) (int, bool) {
	switch n := step.(type) {
	case int:
		return n, n >= 0
	case float64:
		return int(n), n >= 0 && n == float64(int(n))
	}
	return 0, false
}

func appendPath(path []any, step any) []any {
	out := make([]any, len(path), len(path)+1)
	copy(out, path)
	return append(out, step)
}

// readRegistrations reads a TaskDefinition's registration records. A malformed
// annotation (edited by hand) reads as none: the spec alone still describes the
// revision.
func readRegistrations(annotations map[string]string) map[string]registration {
	out := map[string]registration{}
	if raw := annotations[ecsv1alpha1.AnnotationRegistrations]; raw != "" {
		if err := json.Unmarshal([]byte(raw), &out); err != nil {
			return map[string]registration{}
		}
	}
	return out
}

// writeRegistrations stores the records of the hashes in keep.
func writeRegistrations(annotations *map[string]string, regs map[string]registration, keep map[string]bool) error {
	for h := range regs {
		if !keep[h] {
			delete(regs, h)
		}
	}
	if *annotations == nil {
		*annotations = map[string]string{}
	}
	if len(regs) == 0 {
		delete(*annotations, ecsv1alpha1.AnnotationRegistrations)
		return nil
	}
	raw, err := json.Marshal(regs)
	if err != nil {
		return err
	}
	(*annotations)[ecsv1alpha1.AnnotationRegistrations] = string(raw)
	return nil
}

// describeShape is a revision's spec as ECS's TaskDefinition, exactly as registered
// when reg (its registration record) is known.
func describeShape(spec *ecsv1alpha1.TaskDefinitionSpec, reg *registration, arns ARNs) (*types.TaskDefinition, error) {
	m, err := specShape(spec, arns)
	if err != nil {
		return nil, err
	}
	ecsDefaults(m)
	if reg != nil {
		reg.apply(m)
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	td := &types.TaskDefinition{}
	// Strict: a Berth field ECS's model lacks is a gap of specShape, not something
	// to drop.
	if err := wire.ECS.Unmarshal(raw, td); err != nil {
		return nil, fmt.Errorf("the spec does not fit ECS's task definition: %w", err)
	}
	td.Compatibilities = compatibilities(m)
	td.RequiresAttributes = []types.Attribute{}
	return td, nil
}
