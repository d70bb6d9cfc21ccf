package runtime_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/berthdev/berth/agent/runtime"
)

func TestContainerID(t *testing.T) {
	const uid = "6f1c2b1e-3a4d-4c5e-9f00-123456789abc"
	tests := []struct {
		name, taskUID, container string
		want                     string
	}{
		{name: "short", taskUID: uid, container: "web", want: uid + "-web"},
		{name: "underscore", taskUID: uid, container: "log_router", want: uid + "-log_router"},
		{name: "long name is shortened with a hash", taskUID: uid, container: strings.Repeat("a", 63)},
		{name: "invalid characters", taskUID: uid, container: "-x"},
	}
	seen := map[string]string{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := runtime.ContainerID(tc.taskUID, tc.container)
			if err := runtime.ValidateID(got); err != nil {
				t.Fatalf("ContainerID(%q, %q) = %q: %v", tc.taskUID, tc.container, got, err)
			}
			if tc.want != "" && got != tc.want {
				t.Errorf("ContainerID = %q, want %q", got, tc.want)
			}
			if again := runtime.ContainerID(tc.taskUID, tc.container); again != got {
				t.Errorf("not deterministic: %q then %q", got, again)
			}
			if other, dup := seen[got]; dup {
				t.Errorf("%q collides with %q", got, other)
			}
			seen[got] = tc.container
		})
	}
	long1 := runtime.ContainerID(uid, strings.Repeat("a", 62)+"1")
	long2 := runtime.ContainerID(uid, strings.Repeat("a", 62)+"2")
	if long1 == long2 {
		t.Errorf("names differing only past the cut collide: %q", long1)
	}
}

func TestValidate(t *testing.T) {
	valid := func() runtime.ContainerSpec {
		return runtime.ContainerSpec{ID: "task-web", Image: "nginx", Env: []string{"A=1"}}
	}
	tests := []struct {
		name    string
		modify  func(*runtime.ContainerSpec)
		wantErr string
	}{
		{name: "valid"},
		{name: "bad id", modify: func(s *runtime.ContainerSpec) { s.ID = "has space" }, wantErr: "invalid container ID"},
		{name: "no image", modify: func(s *runtime.ContainerSpec) { s.Image = "" }, wantErr: "image is empty"},
		{name: "env without =", modify: func(s *runtime.ContainerSpec) { s.Env = []string{"SECRET"} }, wantErr: "env[0]"},
		{name: "host network and netns", modify: func(s *runtime.ContainerSpec) { s.HostNetwork, s.NetNSPath = true, "/proc/1/ns/net" }, wantErr: "exclusive"},
		{name: "relative log path", modify: func(s *runtime.ContainerSpec) { s.LogPath = "x.log" }, wantErr: "not absolute"},
		{name: "reservation above limit", modify: func(s *runtime.ContainerSpec) { s.MemoryLimitBytes, s.MemoryReservationBytes = 10, 20 }, wantErr: "reservation"},
		{name: "relative mount", modify: func(s *runtime.ContainerSpec) { s.Mounts = []runtime.Mount{{HostPath: "data", ContainerPath: "/data"}} }, wantErr: "absolute"},
		{name: "unknown ulimit", modify: func(s *runtime.ContainerSpec) { s.Ulimits = []runtime.Ulimit{{Name: "files"}} }, wantErr: "unknown ulimit"},
		{name: "ulimit soft above hard", modify: func(s *runtime.ContainerSpec) { s.Ulimits = []runtime.Ulimit{{Name: "nofile", Soft: 2, Hard: 1}} }, wantErr: "soft limit"},
		{name: "root filesystem", modify: func(s *runtime.ContainerSpec) {
			s.Image, s.RootFS, s.EntryPoint = "", "/var/lib/berth/pause/rootfs", []string{"/berth"}
		}},
		{name: "image and root filesystem", modify: func(s *runtime.ContainerSpec) { s.RootFS, s.EntryPoint = "/rootfs", []string{"/berth"} }, wantErr: "exclusive"},
		{name: "root filesystem without entrypoint", modify: func(s *runtime.ContainerSpec) { s.Image, s.RootFS = "", "/rootfs" }, wantErr: "needs an absolute path and an entryPoint"},
		{name: "relative pid namespace", modify: func(s *runtime.ContainerSpec) { s.PIDNamespacePath = "proc/1/ns/pid" }, wantErr: "pidNamespacePath"},
		{name: "host pid and a pid namespace", modify: func(s *runtime.ContainerSpec) { s.HostPID, s.PIDNamespacePath = true, "/proc/1/ns/pid" }, wantErr: "exclusive"},
		{name: "host ipc and no shm", modify: func(s *runtime.ContainerSpec) { s.HostIPC, s.NoShm = true, true }, wantErr: "hostIPC excludes"},
		{name: "shm without an ipc namespace", modify: func(s *runtime.ContainerSpec) { s.ShmPath = "/shm" }, wantErr: "shmPath needs ipcNamespacePath"},
		{name: "shared ipc and shm", modify: func(s *runtime.ContainerSpec) { s.IPCNamespacePath, s.ShmPath = "/proc/1/ns/ipc", "/shm" }},
		{name: "terminal and stdin pipe", modify: func(s *runtime.ContainerSpec) { s.Terminal, s.StdinPath = true, "/stdin/app" }, wantErr: "terminal and stdinPath are exclusive"},
		{name: "log path label by hand", modify: func(s *runtime.ContainerSpec) { s.Labels = map[string]string{runtime.LabelLogPath: "/x"} }, wantErr: "set by the runtime"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := valid()
			if tc.modify != nil {
				tc.modify(&s)
			}
			err := s.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestRedactedHidesEnvValues(t *testing.T) {
	s := runtime.ContainerSpec{ID: "x", Image: "nginx", Env: []string{"DB_PASSWORD=hunter2", "EMPTY="}}
	for _, out := range []string{s.String(), fmt.Sprint(s), fmt.Sprintf("%+v", s), fmt.Sprintf("%#v", s), fmt.Sprint(&s), runtime.Redacted(s).String()} {
		if strings.Contains(out, "hunter2") {
			t.Errorf("printed spec shows a secret: %s", out)
		}
		if !strings.Contains(out, "DB_PASSWORD") || !strings.Contains(out, "EMPTY") {
			t.Errorf("printed spec lacks the env names: %s", out)
		}
	}
	if err := (runtime.ContainerSpec{ID: "x", Image: "i", Env: []string{"hunter2"}}).Validate(); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("validation error shows an env entry: %v", err)
	}
	a := &runtime.Auth{Username: "u", Password: "hunter2"}
	if strings.Contains(a.String(), "hunter2") || strings.Contains(fmt.Sprint(a), "hunter2") {
		t.Errorf("auth prints its password: %s", a)
	}
}

func TestPullPolicyValid(t *testing.T) {
	for _, p := range []runtime.PullPolicy{"", runtime.PullDefault, runtime.PullAlways, runtime.PullOnce, runtime.PullPreferCached} {
		if !p.Valid() {
			t.Errorf("%q is not valid", p)
		}
	}
	if runtime.PullPolicy("never").Valid() {
		t.Errorf("never is valid")
	}
}

func TestImageError(t *testing.T) {
	cause := errors.New("boom")
	err := fmt.Errorf("wrapped: %w", &runtime.ImageError{Ref: "r", Kind: runtime.ImageUnavailable, Reason: "503 Service Unavailable", Err: cause})
	var ie *runtime.ImageError
	if !errors.As(err, &ie) || !errors.Is(err, cause) || !ie.Retryable() {
		t.Errorf("ImageError does not unwrap or classify: %v", err)
	}
	if (&runtime.ImageError{Kind: runtime.ImageUnauthorized}).Retryable() {
		t.Errorf("Unauthorized is retryable")
	}
	var re *runtime.ReferenceError
	if !errors.As(fmt.Errorf("x: %w", &runtime.ReferenceError{Ref: "A B", Err: cause}), &re) {
		t.Errorf("ReferenceError does not unwrap")
	}
}
