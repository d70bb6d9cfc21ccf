package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// Eventually polls cond until it returns nil, or fails the test with cond's last error
// after 20 seconds.
func Eventually(t testing.TB, what string, cond func() error) {
	t.Helper()
	EventuallyWithin(t, 20*time.Second, what, cond)
}

// EventuallyWithin is Eventually with a chosen timeout.
func EventuallyWithin(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s: %v", timeout, what, err)
}

// Writes records the writes a controller makes through a RecordingClient, to prove a
// pass over an unchanged object wrote nothing.
type Writes struct {
	mu  sync.Mutex
	log []string
}

// List returns the writes so far, as "verb Type name".
func (w *Writes) List() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.log...)
}

func (w *Writes) record(verb string, obj client.Object) {
	w.add(fmt.Sprintf("%s %T %s", verb, obj, obj.GetName()))
}

func (w *Writes) add(entry string) {
	w.mu.Lock()
	w.log = append(w.log, entry)
	w.mu.Unlock()
}

// RecordingClient wraps a client and records every write made through it.
func RecordingClient(c client.Client) (client.Client, *Writes) {
	w := &Writes{}
	return recordingClient{Client: c, w: w}, w
}

type recordingClient struct {
	client.Client
	w *Writes
}

func (c recordingClient) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	c.w.record("create", obj)
	return c.Client.Create(ctx, obj, opts...)
}

func (c recordingClient) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	c.w.record("update", obj)
	return c.Client.Update(ctx, obj, opts...)
}

func (c recordingClient) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	c.w.record("patch", obj)
	return c.Client.Patch(ctx, obj, patch, opts...)
}

func (c recordingClient) Delete(ctx context.Context, obj client.Object, opts ...client.DeleteOption) error {
	c.w.record("delete", obj)
	return c.Client.Delete(ctx, obj, opts...)
}

func (c recordingClient) Status() client.SubResourceWriter {
	return recordingStatus{SubResourceWriter: c.Client.Status(), w: c.w}
}

type recordingStatus struct {
	client.SubResourceWriter
	w *Writes
}

func (s recordingStatus) Update(ctx context.Context, obj client.Object, opts ...client.SubResourceUpdateOption) error {
	s.w.record("update status", obj)
	return s.SubResourceWriter.Update(ctx, obj, opts...)
}

func (s recordingStatus) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	s.w.record("patch status", obj)
	return s.SubResourceWriter.Patch(ctx, obj, patch, opts...)
}

func (s recordingStatus) Apply(ctx context.Context, obj runtime.ApplyConfiguration, opts ...client.SubResourceApplyOption) error {
	s.w.add("apply status")
	return s.SubResourceWriter.Apply(ctx, obj, opts...)
}

func (c recordingClient) Apply(ctx context.Context, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
	c.w.add("apply")
	return c.Client.Apply(ctx, obj, opts...)
}

// Apply server-side-applies obj (with its TypeMeta set) as field manager owner, the
// way kubectl, Argo CD or Flux do.
func Apply(ctx context.Context, c client.Client, obj client.Object, owner string) error {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return err
	}
	ac := client.ApplyConfigurationFromUnstructured(&unstructured.Unstructured{Object: u})
	return c.Apply(ctx, ac, client.FieldOwner(owner), client.ForceOwnership)
}

// WriteYAML writes objs as one multi-document YAML file, for kubectl or helm, and
// returns its path (in the test's temporary directory).
func WriteYAML(t testing.TB, objs ...*unstructured.Unstructured) string {
	t.Helper()
	var b bytes.Buffer
	for _, u := range objs {
		data, err := yaml.Marshal(u.Object)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("---\n")
		b.Write(data)
	}
	p := filepath.Join(t.TempDir(), "objects.yaml")
	if err := os.WriteFile(p, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
