package ecsimport

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/validation"
)

// Result is a converted task definition and what the conversion has to say about it.
type Result struct {
	// TaskDefinition is named after the family (made a Kubernetes name).
	TaskDefinition *ecsv1alpha1.TaskDefinition
	// Notes are what the user should know: fields dropped (set by ECS on
	// registration), names changed, ECS shapes mapped (secret ARNs to Secrets), and
	// fields kept without effect (validation.NotHonoured).
	Notes []string
}

// Error lists every field that cannot be converted, each named by its path in the
// ECS input.
type Error struct{ Errs field.ErrorList }

func (e *Error) Error() string {
	msgs := make([]string, len(e.Errs))
	for i, err := range e.Errs {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "\n")
}

// Convert reads one ECS task definition: the JSON of register-task-definition's input
// (--cli-input-json), or describe-task-definition's output ({"taskDefinition": ...,
// "tags": [...]}). namespace may be empty.
func Convert(data []byte, namespace string) (*Result, error) {
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("reading ECS task definition JSON: %w", err)
	}
	c := &converter{}
	td := c.unwrap(doc)
	family := c.family(td)
	c.taskFields(td)
	var spec ecsv1alpha1.TaskDefinitionSpec
	if len(c.errs) == 0 {
		c.unknown(nil, td, reflect.TypeOf(spec), reflect.TypeOf(ecstypes.TaskDefinition{}))
	}
	if len(c.errs) == 0 {
		raw, err := json.Marshal(td)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(raw, &spec); err != nil {
			var typeErr *json.UnmarshalTypeError
			if !errors.As(err, &typeErr) {
				return nil, fmt.Errorf("reading the definition: %w", err)
			}
			// A string where ECS's model has a number (or the reverse): ECS's own
			// clients refuse it too.
			return nil, &Error{Errs: field.ErrorList{field.Invalid(field.NewPath(typeErr.Field), typeErr.Value,
				fmt.Sprintf("must be of type %s, as in ECS's model", typeErr.Type.Kind()))}}
		}
	}
	if len(c.errs) > 0 {
		return nil, &Error{Errs: c.errs}
	}
	for _, i := range validation.NotHonoured(nil, &spec) {
		c.note("%s", i.String())
	}
	out := &ecsv1alpha1.TaskDefinition{
		TypeMeta:   metav1.TypeMeta{APIVersion: ecsv1alpha1.GroupVersion.String(), Kind: "TaskDefinition"},
		ObjectMeta: metav1.ObjectMeta{Name: family, Namespace: namespace},
		Spec:       spec,
	}
	return &Result{TaskDefinition: out, Notes: c.notes}, nil
}

type converter struct {
	notes []string
	errs  field.ErrorList
}

func (c *converter) note(format string, args ...any) {
	c.notes = append(c.notes, fmt.Sprintf(format, args...))
}

func (c *converter) refuse(path *field.Path, why string) {
	c.errs = append(c.errs, field.Forbidden(path, why))
}

// never refuses key of m, a field that cannot work here, when it is set. An empty
// value (null, [], {}: tools that write every field) asks for nothing: it is
// dropped.
func (c *converter) never(m map[string]any, path *field.Path, key, why string) {
	if empty(m[key]) {
		delete(m, key)
		return
	}
	c.refuse(path.Child(key), why)
}

// unwrap returns the definition itself: describe-task-definition nests it under
// taskDefinition and puts the tags beside it.
func (c *converter) unwrap(doc map[string]any) map[string]any {
	td, ok := doc["taskDefinition"].(map[string]any)
	if !ok {
		return doc
	}
	for k := range doc {
		switch k {
		case "taskDefinition":
		case "tags":
			if tags, ok := doc["tags"].([]any); ok && len(tags) > 0 {
				td["tags"] = tags
			}
		default:
			c.refuse(field.NewPath(k), "unknown key beside taskDefinition in describe-task-definition output")
		}
	}
	return td
}

// family takes the family out of the definition: it is the TaskDefinition's name.
func (c *converter) family(td map[string]any) string {
	raw, _ := td["family"].(string)
	delete(td, "family")
	if raw == "" {
		c.errs = append(c.errs, field.Required(field.NewPath("family"), "the family becomes the TaskDefinition's name"))
		return ""
	}
	name := FamilyName(raw)
	if name == "" {
		c.errs = append(c.errs, field.Invalid(field.NewPath("family"), raw, "no letters or digits to make a name of"))
	} else if name != raw {
		c.note("family %q is named %q: Kubernetes names are lowercase letters, digits, '-' and '.'", raw, name)
	}
	return name
}

// FamilyName is the TaskDefinition name of an ECS family ("" when it has no letter
// or digit): the ECS API finds a registered family by it.
func FamilyName(family string) string { return KubeName(family, 200) }

func (c *converter) taskFields(td map[string]any) {
	for _, k := range sortedKeys(td) {
		if why, ok := registrationOutput[k]; ok {
			c.note("%s dropped: %s", k, why)
			delete(td, k)
		} else if why, ok := neverTask[k]; ok {
			c.never(td, nil, k, why)
		}
	}
	if td["networkMode"] == "default" {
		// Docker's default network, which is bridge on Linux.
		td["networkMode"] = string(ecsv1alpha1.NetworkModeBridge)
		c.note("networkMode default is Docker's default network: bridge on Linux")
	}
	if rp, ok := td["runtimePlatform"].(map[string]any); ok {
		if os, _ := rp["operatingSystemFamily"].(string); strings.HasPrefix(os, "WINDOWS") {
			c.refuse(field.NewPath("runtimePlatform", "operatingSystemFamily"), "Berth runs Linux containers; Windows images cannot run here")
		}
	}
	if tags, ok := td["tags"].([]any); ok && len(tags) == 0 {
		delete(td, "tags")
	}
	for i, v := range list(td["containerDefinitions"]) {
		if m, ok := v.(map[string]any); ok {
			c.container(field.NewPath("containerDefinitions").Index(i), m)
		}
	}
	for i, v := range list(td["volumes"]) {
		if m, ok := v.(map[string]any); ok {
			c.volume(field.NewPath("volumes").Index(i), m)
		}
	}
}

func (c *converter) container(path *field.Path, m map[string]any) {
	for _, k := range sortedKeys(m) {
		if why, ok := neverContainer[k]; ok {
			c.never(m, path, k, why)
		}
	}
	for i, v := range list(m["secrets"]) {
		c.secret(path.Child("secrets").Index(i), v)
	}
	for i, v := range list(m["resourceRequirements"]) {
		if r, ok := v.(map[string]any); ok && r["type"] == string(ecsv1alpha1.ResourceInferenceAccelerator) {
			c.refuse(path.Child("resourceRequirements").Index(i).Child("type"), neverInferenceAccelerator)
		}
	}
	if lc, ok := m["logConfiguration"].(map[string]any); ok {
		for i, v := range list(lc["secretOptions"]) {
			c.secret(path.Child("logConfiguration", "secretOptions").Index(i), v)
		}
	}
	c.repositoryCredentials(path, m)
	c.healthCheck(path, m)
	for _, v := range list(m["environment"]) {
		// ECS allows an environment entry without a value; so does Berth, but an
		// explicit null would not decode.
		if e, ok := v.(map[string]any); ok && e["value"] == nil {
			delete(e, "value")
		}
	}
	for i, v := range list(m["environmentFiles"]) {
		if e, ok := v.(map[string]any); ok && e["type"] == "s3" {
			c.refuse(path.Child("environmentFiles").Index(i).Child("type"),
				"S3 environment files need AWS; put the variables in a ConfigMap or Secret and use type configMap or secret")
		}
	}
}

// repositoryCredentials maps the Secrets Manager ARN of a private registry's
// credentials to the Secret that holds them.
func (c *converter) repositoryCredentials(path *field.Path, m map[string]any) {
	rc, ok := m["repositoryCredentials"].(map[string]any)
	if !ok {
		return
	}
	ref, ok := rc["credentialsParameter"].(string)
	if !ok {
		return
	}
	p := path.Child("repositoryCredentials", "credentialsParameter")
	sel, err := SecretRef(ref)
	if err != nil {
		c.errs = append(c.errs, field.Invalid(p, ref, err.Error()))
		return
	}
	rc["credentialsParameter"] = sel.Name
	c.note("%s: create a Secret %q of type kubernetes.io/dockerconfigjson for %s", p, sel.Name, ref)
}

// healthCheck refuses a command that is not CMD, CMD-SHELL or NONE: ECS passes it to
// Docker, which ignores such a check, so the author's intent is unclear.
func (c *converter) healthCheck(path *field.Path, m map[string]any) {
	hc, ok := m["healthCheck"].(map[string]any)
	if !ok {
		return
	}
	cmd := list(hc["command"])
	if len(cmd) == 0 {
		return
	}
	if first, _ := cmd[0].(string); first != "CMD" && first != "CMD-SHELL" && first != "NONE" {
		c.errs = append(c.errs, field.Invalid(path.Child("healthCheck", "command").Index(0), first,
			`must be CMD, CMD-SHELL or NONE, as ECS documents (Docker ignores a check of any other form): write ["CMD", "/path/to/check"] or ["CMD-SHELL", "command line"]`))
	}
}

// secret maps an ECS secret (valueFrom a string) to Berth's (valueFrom a key of a
// Secret); Berth's own form passes through.
func (c *converter) secret(path *field.Path, v any) {
	s, ok := v.(map[string]any)
	if !ok {
		return
	}
	ref, ok := s["valueFrom"].(string)
	if !ok {
		return
	}
	p := path.Child("valueFrom")
	sel, err := SecretRef(ref)
	if err != nil {
		c.errs = append(c.errs, field.Invalid(p, ref, err.Error()))
		return
	}
	s["valueFrom"] = map[string]any{"secretKeyRef": map[string]any{"name": sel.Name, "key": sel.Key}}
	c.note("%s: reads key %q of Secret %q (from %s)", p, sel.Key, sel.Name, ref)
}

func (c *converter) volume(path *field.Path, m map[string]any) {
	for _, k := range sortedKeys(m) {
		if why, ok := neverVolume[k]; ok {
			c.never(m, path, k, why)
		}
	}
	// host: {} is a Docker-managed volume that lives and dies with the task: that is
	// Berth's task volume, a volume without host.
	if h, ok := m["host"].(map[string]any); ok {
		if sp, _ := h["sourcePath"].(string); sp == "" {
			delete(m, "host")
			c.note("%s: host without sourcePath (a Docker-managed volume) is a task volume: created with the task, removed with it", path.Child("host"))
		}
	}
	if dvc, ok := m["dockerVolumeConfiguration"].(map[string]any); ok {
		c.dockerVolume(path.Child("dockerVolumeConfiguration"), dvc)
	}
}

// dockerVolume refuses what the agent's local driver cannot do, with the reason (the
// apiserver would refuse it too, less plainly), and says where a shared volume is
// shared.
func (c *converter) dockerVolume(path *field.Path, dvc map[string]any) {
	if d, ok := dvc["driver"].(string); ok && d != ecsv1alpha1.DockerVolumeDriverLocal {
		c.refuse(path.Child("driver"), fmt.Sprintf("driver %q is a Docker volume plugin, which needs Docker's plugin API: Berth runs containers on containerd, which has none; use driver local (a directory, tmpfs or bind mount on the instance)", d))
	}
	if opts, ok := dvc["driverOpts"].(map[string]any); ok {
		if t, ok := opts["type"].(string); ok && t != "tmpfs" && t != "none" {
			c.refuse(path.Child("driverOpts", "type"), fmt.Sprintf("type %q needs a mount the agent does not make: the local driver here takes type tmpfs, or none with o=bind and device (mount the file system on the instances and bind it)", t))
		}
	}
	if dvc["scope"] == string(ecsv1alpha1.DockerVolumeScopeShared) {
		c.note("%s: a shared volume is shared by the tasks of the TaskDefinition's namespace on each instance (ECS: by every task of the instance)", path)
	}
}

// unknown refuses every key that is not a field of t, by path, so that nothing is
// dropped silently. model is the same object in ECS's API model (the AWS SDK's types,
// nil where ECS has no such object): a key ECS knows is a Berth gap, any other a
// mistake in the input.
func (c *converter) unknown(path *field.Path, v any, t, model reflect.Type) {
	t, model = deref(t), deref(model)
	if t == reflect.TypeOf(intstr.IntOrString{}) {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return // a type error, reported when decoding
		}
		fields, ecsFields := jsonFields(t), modelFields(model)
		for _, k := range sortedKeys(m) {
			ft, ok := fields[k]
			mt, inModel := ecsFields[strings.ToLower(k)]
			switch {
			case ok:
				c.unknown(path.Child(k), m[k], ft, mt)
			case empty(m[k]):
				// null, [], {} or false: asks for nothing (tools that print every field
				// of ECS's model write these).
				c.note("%s dropped: empty", path.Child(k))
				delete(m, k)
			case inModel:
				c.refuse(path.Child(k), notYet)
			default:
				c.refuse(path.Child(k), "unknown field: not in ECS's task definition either (a typo?)")
			}
		}
	case reflect.Slice:
		for i, e := range list(v) {
			c.unknown(path.Index(i), e, t.Elem(), elem(model))
		}
	case reflect.Map:
		if m, ok := v.(map[string]any); ok {
			for _, k := range sortedKeys(m) {
				c.unknown(path.Key(k), m[k], t.Elem(), elem(model))
			}
		}
	}
}

// empty reports whether an ECS value asks for nothing.
func empty(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case bool:
		return !v
	case string:
		return v == ""
	case []any:
		return len(v) == 0
	case map[string]any:
		return len(v) == 0
	}
	return false
}

func deref(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

func elem(t reflect.Type) reflect.Type {
	if t == nil || (t.Kind() != reflect.Slice && t.Kind() != reflect.Map) {
		return nil
	}
	return t.Elem()
}

// modelFields maps the lowercased names of an AWS SDK struct's exported fields (the
// API's member names, capitalized) to their types.
func modelFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	if t == nil || t.Kind() != reflect.Struct {
		return out
	}
	for i := range t.NumField() {
		if f := t.Field(i); f.IsExported() {
			out[strings.ToLower(f.Name)] = f.Type
		}
	}
	return out
}

// jsonFields maps the JSON names of t's fields to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		out[name] = f.Type
	}
	return out
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
