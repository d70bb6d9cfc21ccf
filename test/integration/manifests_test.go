package integration

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/berthdev/berth/test/testenv"
)

// Helpers shared by the tests of this package: reading multi-document manifests into
// unstructured objects, creating and updating them in a test's namespace, and running
// kubectl against the test apiserver.

// readManifests decodes every non-empty YAML document of a file, in order.
func readManifests(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	var objs []*unstructured.Unstructured
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for i := 0; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: reading document %d: %v", path, i, err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			t.Fatalf("%s: decoding document %d: %v", path, i, err)
		}
		if len(m) == 0 {
			continue // only comments
		}
		u := &unstructured.Unstructured{Object: m}
		if u.GetKind() == "" || u.GetAPIVersion() == "" || u.GetName() == "" {
			t.Fatalf("%s: document %d lacks apiVersion, kind or metadata.name", path, i)
		}
		objs = append(objs, u)
	}
	if len(objs) == 0 {
		t.Fatalf("%s holds no object", path)
	}
	return objs
}

// objectKey identifies an object of a manifest before it is placed in a namespace.
type objectKey struct {
	gvk  schema.GroupVersionKind
	name string
}

func keyOf(u *unstructured.Unstructured) objectKey {
	return objectKey{gvk: u.GroupVersionKind(), name: u.GetName()}
}

// placeObject puts a namespaced object in ns, and gives a cluster-scoped one a name
// ending in "-"+suffix so tests and reruns never collide on it.
func placeObject(t *testing.T, u *unstructured.Unstructured, ns, suffix string) {
	t.Helper()
	gvk := u.GroupVersionKind()
	mapping, err := env.Client.RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		t.Fatalf("no REST mapping for %s: %v", gvk, err)
	}
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		u.SetNamespace(ns)
		return
	}
	u.SetNamespace("")
	u.SetName(u.GetName() + "-" + suffix)
}

// createObject creates u and, for a cluster-scoped object, deletes it when the test
// ends (namespaced objects go with the test's namespace).
func createObject(ctx context.Context, t *testing.T, u *unstructured.Unstructured) error {
	t.Helper()
	if err := env.Client.Create(ctx, u); err != nil {
		return err
	}
	if u.GetNamespace() == "" {
		deleteAtCleanup(t, u.DeepCopy())
	}
	return nil
}

// updateObject replaces the stored object with u, through the status subresource when
// status is true.
func updateObject(ctx context.Context, t *testing.T, u *unstructured.Unstructured, status bool) error {
	t.Helper()
	cur := &unstructured.Unstructured{}
	cur.SetGroupVersionKind(u.GroupVersionKind())
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(u), cur); err != nil {
		return fmt.Errorf("reading %s %s before the update: %w", u.GetKind(), u.GetName(), err)
	}
	u.SetResourceVersion(cur.GetResourceVersion())
	if status {
		return env.Client.Status().Update(ctx, u)
	}
	return env.Client.Update(ctx, u)
}

func deleteAtCleanup(t *testing.T, obj client.Object) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := env.Client.Delete(ctx, obj); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting %s %s: %v", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName(), err)
		}
	})
}

// kubectlCmd runs kubectl against the test apiserver with a discovery cache private to
// the test.
type kubectlCmd struct {
	path     string
	cacheDir string
}

func newKubectl(t *testing.T) kubectlCmd {
	t.Helper()
	path, err := exec.LookPath("kubectl")
	if err != nil {
		testenv.Require(t, fmt.Sprintf("kubectl not found in PATH (install kubectl; .ci/run requires it): %v", err))
	}
	return kubectlCmd{path: path, cacheDir: t.TempDir()}
}

// run returns kubectl's combined output, and an error that includes it.
func (k kubectlCmd) run(ctx context.Context, args ...string) (string, error) {
	full := append([]string{"--kubeconfig", env.Kubeconfig, "--cache-dir", k.cacheDir}, args...)
	out, err := exec.CommandContext(ctx, k.path, full...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %v: %w\n%s", args, err, out)
	}
	return string(out), nil
}

// repoPath is a path inside the repository.
func repoPath(elem ...string) string {
	return filepath.Join(append([]string{testenv.RepoRoot()}, elem...)...)
}
