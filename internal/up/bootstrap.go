package up

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	berthconfig "github.com/berthdev/berth/config"
	"github.com/berthdev/berth/internal/up/demo"
	"github.com/berthdev/berth/internal/up/ociimage"
)

// FieldManager is the field manager of everything `up` applies, as kubectl's
// server-side apply would be.
const FieldManager = "berth-up"

// decodeObjects reads every object of a multi-document YAML stream.
func decodeObjects(r io.Reader) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(r, 4096)
	var out []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, err
		}
		if len(u.Object) > 0 {
			out = append(out, u)
		}
	}
}

// apply server-side applies objs with FieldManager, taking over fields from
// other managers as `kubectl apply --server-side --force-conflicts` does.
func apply(ctx context.Context, c client.Client, objs ...*unstructured.Unstructured) error {
	for _, u := range objs {
		ac := client.ApplyConfigurationFromUnstructured(u)
		if err := c.Apply(ctx, ac, client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
			return fmt.Errorf("applying %s %s: %w", u.GetKind(), client.ObjectKeyFromObject(u), err)
		}
	}
	return nil
}

// embeddedObjects decodes the named files of fsys, in order.
func embeddedObjects(fsys fs.FS, names ...string) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for _, n := range names {
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			return nil, err
		}
		objs, err := decodeObjects(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		out = append(out, objs...)
	}
	return out, nil
}

// installCRDs applies Berth's CRDs and waits until the apiserver serves them.
func installCRDs(ctx context.Context, c client.Client) error {
	names, err := fs.Glob(berthconfig.CRDs, "crd/bases/*.yaml")
	if err != nil {
		return err
	}
	sort.Strings(names)
	crds, err := embeddedObjects(berthconfig.CRDs, names...)
	if err != nil {
		return err
	}
	if err := apply(ctx, c, crds...); err != nil {
		return err
	}
	for _, crd := range crds {
		if err := waitEstablished(ctx, c, crd.GetName()); err != nil {
			return err
		}
	}
	return nil
}

var crdGVK = schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"}

func waitEstablished(ctx context.Context, c client.Client, name string) error {
	return poll(ctx, func(ctx context.Context) (bool, error) {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(crdGVK)
		if err := c.Get(ctx, client.ObjectKey{Name: name}, u); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		for _, cond := range conds {
			m, _ := cond.(map[string]any)
			if m["type"] == "Established" && m["status"] == "True" {
				return true, nil
			}
		}
		return false, nil
	})
}

// installRBAC applies the generated roles of the manager, the agent and hollow (with
// the Roles in kube-system for the cluster's client CA, which the agent's streaming
// server and the manager's gateway read) and binds them to the users of the
// certificates `up` issues. Agents are bound one user each, not through their group:
// a certificate cannot be revoked, a binding can be deleted.
func installRBAC(ctx context.Context, c client.Client, agentUsers ...string) error {
	roles, err := embeddedObjects(berthconfig.RBAC, berthconfig.ManagerRole, berthconfig.AgentRole, berthconfig.HollowRole)
	if err != nil {
		return err
	}
	user := func(name string) rbacv1.Subject {
		return rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: name}
	}
	objs := []runtime.Object{
		binding("berth-manager", "berth-manager-up", user(ManagerUser)),
		binding("berth-hollow", "berth-hollow-up", user(hollowUser)),
		clientCABinding("berth-manager", "berth-manager-up", user(ManagerUser)),
	}
	for _, u := range agentUsers {
		name := "berth-agent-up-" + strings.TrimPrefix(u, AgentUserPrefix)
		objs = append(objs, binding("berth-agent", name, user(u)), clientCABinding("berth-agent", name, user(u)))
	}
	for _, o := range objs {
		u, err := toUnstructured(o)
		if err != nil {
			return err
		}
		roles = append(roles, u)
	}
	return apply(ctx, c, roles...)
}

// clientCABinding binds the Role role in kube-system (the cluster's client CA) to subject.
func clientCABinding(role, name string, subject rbacv1.Subject) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: rbacv1.SchemeGroupVersion.String(), Kind: "RoleBinding"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role},
		Subjects:   []rbacv1.Subject{subject},
	}
}

// installAdmission applies the admission policy that restricts every agent to its
// own container instance (config/admission), so the agent of `up` runs under the
// same rules as in a cluster with the Helm chart, and the TaskDefinition warnings.
func installAdmission(ctx context.Context, c client.Client) error {
	files, err := berthconfig.AdmissionFiles()
	if err != nil {
		return err
	}
	objs, err := embeddedObjects(berthconfig.Admission, files...)
	if err != nil {
		return err
	}
	// And the warnings kubectl prints for TaskDefinition fields kept but not
	// honoured (config/warnings), as the Helm chart renders them.
	files, err = berthconfig.WarningsFiles()
	if err != nil {
		return err
	}
	warnings, err := embeddedObjects(berthconfig.Warnings, files...)
	if err != nil {
		return err
	}
	return apply(ctx, c, append(objs, warnings...)...)
}

func binding(role, name string, subjects ...rbacv1.Subject) *rbacv1.ClusterRoleBinding {
	return &rbacv1.ClusterRoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: rbacv1.SchemeGroupVersion.String(), Kind: "ClusterRoleBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   subjects,
	}
}

func toUnstructured(obj runtime.Object) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: m}
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	return u, nil
}

// pushDemoImage builds the demo image around the running berth binary (and the
// host's static busybox as its shell, when there is one; noShell says why not) and
// pushes it to the registry on port as berth/demo:1.0. The same binaries give the
// same digest, so a second `up` pushes nothing new.
func pushDemoImage(ctx context.Context, port int) (digest, noShell string, err error) {
	bin, err := demo.StaticExecutable()
	if err != nil {
		return "", "", err
	}
	shell, noShell := demo.Shell()
	img, err := demo.Image(bin, shell)
	if err != nil {
		return "", "", err
	}
	ref := fmt.Sprintf("127.0.0.1:%d/%s:%s", port, demo.Repository, demo.Tag)
	if err := ociimage.Push(ctx, img, ref, nil); err != nil {
		return "", "", err
	}
	d, err := img.Digest()
	if err != nil {
		return "", "", err
	}
	return d.String(), noShell, nil
}

// sampleObjects returns the samples in the order samples/kustomization.yaml lists
// them, namespaced ones in ns.
func sampleObjects(c client.Client, ns string) ([]*unstructured.Unstructured, error) {
	files, err := berthconfig.SampleFiles()
	if err != nil {
		return nil, err
	}
	objs, err := embeddedObjects(berthconfig.Samples, files...)
	if err != nil {
		return nil, err
	}
	for _, u := range objs {
		namespaced, err := c.IsObjectNamespaced(u)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", u.GetKind(), u.GetName(), err)
		}
		if namespaced {
			u.SetNamespace(ns)
		}
	}
	return objs, nil
}

// conditionTrue reports whether u's status has condition typ with status True for
// its current generation.
func conditionTrue(u *unstructured.Unstructured, typ string) bool {
	raw, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	conds := make([]metav1.Condition, 0, len(raw))
	for _, r := range raw {
		var c metav1.Condition
		if m, ok := r.(map[string]any); ok && runtime.DefaultUnstructuredConverter.FromUnstructured(m, &c) == nil {
			conds = append(conds, c)
		}
	}
	c := apimeta.FindStatusCondition(conds, typ)
	return c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == u.GetGeneration()
}
