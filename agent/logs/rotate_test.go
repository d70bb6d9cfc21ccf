package logs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berthdev/berth/agent/runtime"
	"github.com/berthdev/berth/agent/runtime/fake"
)

func TestParsePolicy(t *testing.T) {
	tests := []struct {
		name    string
		options map[string]string
		want    Policy
		wantErr bool
	}{
		{name: "defaults", options: nil, want: Policy{MaxSize: 10 << 20, MaxFiles: 5}},
		{name: "megabytes and files", options: map[string]string{"max-size": "10m", "max-file": "3"}, want: Policy{MaxSize: 10 << 20, MaxFiles: 3}},
		{name: "bytes", options: map[string]string{"max-size": "2048"}, want: Policy{MaxSize: 2048, MaxFiles: 5}},
		{name: "kilobytes with b", options: map[string]string{"max-size": "512KB"}, want: Policy{MaxSize: 512 << 10, MaxFiles: 5}},
		{name: "gigabytes", options: map[string]string{"max-size": "1g"}, want: Policy{MaxSize: 1 << 30, MaxFiles: 5}},
		{name: "one file", options: map[string]string{"max-file": "1"}, want: Policy{MaxSize: 10 << 20, MaxFiles: 1}},
		{name: "other options ignored", options: map[string]string{"labels": "x"}, want: DefaultPolicy},
		{name: "bad size", options: map[string]string{"max-size": "ten"}, want: DefaultPolicy, wantErr: true},
		{name: "zero size", options: map[string]string{"max-size": "0"}, want: DefaultPolicy, wantErr: true},
		{name: "negative size", options: map[string]string{"max-size": "-1m"}, want: DefaultPolicy, wantErr: true},
		{name: "unknown unit", options: map[string]string{"max-size": "10t"}, want: DefaultPolicy, wantErr: true},
		{name: "zero files", options: map[string]string{"max-file": "0"}, want: DefaultPolicy, wantErr: true},
		{name: "bad files", options: map[string]string{"max-file": "many"}, want: DefaultPolicy, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParsePolicy(tc.options)
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v, want error %v", err, tc.wantErr)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("policy (-want +got):\n%s", d)
			}
		})
	}
}

// files returns the content of every file in dir, by name.
func files(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

// TestRotateCopyTruncate: the writer keeps its file open in append mode, as the shim
// does; after each rotation it carries on at the start of the live file, and only
// max-file files remain.
func TestRotateCopyTruncate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	w, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Close() }()
	for _, line := range []string{"one\n", "two\n", "three\n", "four\n"} {
		if _, err := w.WriteString(line); err != nil {
			t.Fatal(err)
		}
		if err := Rotate(path, 3); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.WriteString("five\n"); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"app.log": "five\n", "app.log.1": "four\n", "app.log.2": "three\n"}
	if d := cmp.Diff(want, files(t, dir)); d != "" {
		t.Errorf("files (-want +got):\n%s", d)
	}
}

func TestRotateOneFileTruncates(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	if err := os.WriteFile(path, []byte("old output\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Rotate(path, 1); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(map[string]string{"app.log": ""}, files(t, dir)); d != "" {
		t.Errorf("files (-want +got):\n%s", d)
	}
}

// TestRotatorOnce: files over their container's max-size are rotated, with the
// container's options; smaller ones, missing ones and paths outside the root are left
// alone.
func TestRotatorOnce(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	outside := filepath.Join(t.TempDir(), "victim.log")
	rt := fake.New()
	const image = "registry.example/app:1"
	rt.AddImage(image)
	write := func(path string, size int) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(strings.Repeat("x", size)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	create := func(id, logPath string, size int) {
		t.Helper()
		spec := runtime.ContainerSpec{ID: id, Image: image, LogPath: logPath, Labels: map[string]string{runtime.LabelRevision: id + ":1"}}
		if _, err := rt.Create(ctx, spec); err != nil {
			t.Fatal(err)
		}
		if size >= 0 {
			write(logPath, size)
		}
	}
	dir := filepath.Join(root, "team_web_uid")
	create("big", filepath.Join(dir, "big.log"), 2048)           // over its 1k
	create("small", filepath.Join(dir, "small.log"), 512)        // under its 1k
	create("default", filepath.Join(dir, "default.log"), 4096)   // under the 10m default
	create("unstarted", filepath.Join(dir, "unstarted.log"), -1) // no file yet
	create("evil", outside, 4096)
	if _, err := rt.Create(ctx, runtime.ContainerSpec{ID: "nolog", Image: image}); err != nil {
		t.Fatal(err)
	}

	optionCalls := 0
	r := NewRotator(Config{Runtime: rt, Root: root, Options: func(_ context.Context, info runtime.ContainerInfo) (map[string]string, error) {
		optionCalls++
		switch info.ID {
		case "big", "small", "evil":
			return map[string]string{"max-size": "1k", "max-file": "2"}, nil
		}
		return nil, nil
	}})
	err := r.Once(ctx)
	if err == nil || !strings.Contains(err.Error(), "outside") {
		t.Errorf("Once: %v, want an error about the path outside the root", err)
	}
	want := map[string]string{
		"big.log": "", "big.log.1": strings.Repeat("x", 2048),
		"small.log": strings.Repeat("x", 512), "default.log": strings.Repeat("x", 4096),
	}
	if d := cmp.Diff(want, files(t, dir)); d != "" {
		t.Errorf("files (-want +got):\n%s", d)
	}
	if b, err := os.ReadFile(outside); err != nil || len(b) != 4096 {
		t.Errorf("the file outside the root: %d bytes, %v; want it untouched", len(b), err)
	}

	// Options are read once per container.
	calls := optionCalls
	write(filepath.Join(dir, "big.log"), 3000)
	if err := r.Once(ctx); err == nil {
		t.Error("second Once: no error about the path outside the root")
	}
	if optionCalls != calls {
		t.Errorf("options read %d more times, want none", optionCalls-calls)
	}
	if got := files(t, dir)["big.log.1"]; len(got) != 3000 {
		t.Errorf("big.log.1 has %d bytes after the second rotation, want 3000", len(got))
	}
}

func TestRotatorOptionsErrorUsesDefaults(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	rt := fake.New()
	rt.AddImage("app:1")
	path := filepath.Join(root, "t", "app.log")
	if _, err := rt.Create(ctx, runtime.ContainerSpec{ID: "app", Image: "app:1", LogPath: path}); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	calls := 0
	r := NewRotator(Config{Runtime: rt, Root: root, Options: func(context.Context, runtime.ContainerInfo) (map[string]string, error) {
		calls++
		return nil, errors.New("revision not in the cache yet")
	}})
	for i := 0; i < 2; i++ {
		if err := r.Once(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if calls != 2 {
		t.Errorf("options read %d times, want 2 (a failed read is retried)", calls)
	}
}
