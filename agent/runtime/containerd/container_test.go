package containerd_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berthdev/berth/agent/runtime"
	"github.com/berthdev/berth/agent/runtime/containerd"
	"github.com/berthdev/berth/internal/up/localrun"
	"github.com/berthdev/berth/test/testenv"
	regtest "github.com/berthdev/berth/test/testenv/registry"
)

func TestRunWritesHostMountAndLog(t *testing.T) {
	e := newEnv(t)
	img := e.image()
	data := t.TempDir()
	spec := e.spec("app", img, "echo=hello from the container", "stderr=to stderr", "env=GREETING", "env=DB_PASSWORD",
		"write=/data/out.txt:written", "exit=0")
	spec.Env = []string{"GREETING=hi", "DB_PASSWORD=hunter2"}
	spec.Mounts = []runtime.Mount{{HostPath: data, ContainerPath: "/data"}}

	st, out := e.run(spec)
	if st.Code != 0 || st.OOMKilled {
		t.Errorf("exit %+v, want 0; output:\n%s", st, out)
	}
	// The shim copies stdout and stderr to the file in their own goroutines, which
	// may finish after the exit is reported: the last lines arrive shortly after.
	wants := []string{"hello from the container\n", "to stderr\n", "GREETING=hi\n", "DB_PASSWORD=hunter2\n"}
	testenv.EventuallyWithin(t, 10*time.Second, "every line in the log", func() error {
		out = e.log(spec)
		for _, want := range wants {
			if !strings.Contains(out, want) {
				return fmt.Errorf("log lacks %q:\n%s", want, out)
			}
		}
		return nil
	})
	b, err := os.ReadFile(filepath.Join(data, "out.txt"))
	if err != nil || string(b) != "written" {
		t.Errorf("host file: %q, %v", b, err)
	}
	for _, s := range []string{spec.String(), fmt.Sprintf("%v", spec), fmt.Sprintf("%#v", spec), runtime.Redacted(spec).String()} {
		if strings.Contains(s, "hunter2") || !strings.Contains(s, "DB_PASSWORD") {
			t.Errorf("printed spec %s: want env names without values", s)
		}
	}
}

// TestSpecOptions runs the test program under different specs and checks what it
// observes from inside.
func TestSpecOptions(t *testing.T) {
	e := newEnv(t)
	passwd := map[string][]byte{
		"etc/passwd": []byte("root:x:0:0::/:/bin/false\napp:x:1234:4321::/home/app:/bin/false\n"),
		"etc/group":  []byte("root:x:0:\napp:x:4321:\n"),
	}
	reg := regtest.Start(t)
	imgRef, _ := reg.Push(t, regtest.TestImage(t, passwd, regtest.WithCmd("echo=image cmd"), regtest.WithEnv("FROM_IMAGE=image", "OVERRIDDEN=image")), "team/app", "v1")
	if _, err := e.rt.Pull(e.ctx, imgRef, runtime.PullDefault, nil); err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()

	tests := []struct {
		name       string
		modify     func(*runtime.ContainerSpec)
		args       []string
		want       []string
		notWant    []string
		wantCode   int
		check      func(t *testing.T, out string)
		skipUnless func() string
	}{
		{name: "image command", want: []string{"image cmd"}},
		{name: "command replaces CMD", args: []string{"echo=my command"}, want: []string{"my command"}, notWant: []string{"image cmd"}},
		{name: "entrypoint drops CMD", modify: func(s *runtime.ContainerSpec) {
			s.EntryPoint = []string{regtest.TestBinaryPath, "echo=from entrypoint"}
		}, want: []string{"from entrypoint"}, notWant: []string{"image cmd"}},
		{name: "env merges with the image's", args: []string{"env=FROM_IMAGE", "env=OVERRIDDEN", "env=PATH"}, modify: func(s *runtime.ContainerSpec) {
			s.Env = []string{"OVERRIDDEN=spec"}
		}, want: []string{"FROM_IMAGE=image", "OVERRIDDEN=spec", "PATH=/usr/local/sbin"}},
		{name: "numeric user", args: []string{"id"}, modify: func(s *runtime.ContainerSpec) { s.User = "1000:1001" }, want: []string{"uid=1000 gid=1001"}},
		{name: "user name from the image", args: []string{"id"}, modify: func(s *runtime.ContainerSpec) { s.User = "app" }, want: []string{"uid=1234 gid=4321"}},
		{name: "working directory", args: []string{"pwd"}, modify: func(s *runtime.ContainerSpec) { s.WorkingDir = "/tmp" }, want: []string{"/tmp\n"}},
		{name: "ulimits", args: []string{"rlimit=nproc", "rlimit=core", "rlimit=nofile"}, modify: func(s *runtime.ContainerSpec) {
			s.Ulimits = []runtime.Ulimit{{Name: "nproc", Soft: 123, Hard: 456}, {Name: "core", Soft: 0, Hard: 1024}, {Name: "nofile", Soft: 100, Hard: 200}}
		}, want: []string{"nproc soft=123 hard=456", "core soft=0 hard=1024", "hard=200"}},
		{name: "writable rootfs", args: []string{"trywrite=/etc/x:1"}, want: []string{"write ok"}},
		{name: "read-only rootfs", args: []string{"trywrite=/etc/x:1", "trywrite=/data/x:1"}, modify: func(s *runtime.ContainerSpec) {
			s.ReadonlyRootfs = true
			s.Mounts = []runtime.Mount{{HostPath: data, ContainerPath: "/data"}}
		}, want: []string{"write failed: open /etc/x: read-only file system", "write ok"}},
		{name: "read-only mount", args: []string{"trywrite=/data/y:1"}, modify: func(s *runtime.ContainerSpec) {
			s.Mounts = []runtime.Mount{{HostPath: data, ContainerPath: "/data", ReadOnly: true}}
		}, want: []string{"write failed: open /data/y: read-only file system"}},
		{name: "drop all capabilities", args: []string{"cat=/proc/self/status"}, modify: func(s *runtime.ContainerSpec) {
			s.CapDrop = []string{"ALL"}
		}, check: capsAre(0)},
		{name: "drop all, add one", args: []string{"cat=/proc/self/status"}, modify: func(s *runtime.ContainerSpec) {
			s.CapDrop, s.CapAdd = []string{"ALL"}, []string{"NET_BIND_SERVICE"}
		}, check: capsAre(1 << capNetBindService)},
		{name: "default capabilities", args: []string{"cat=/proc/self/status"}, check: func(t *testing.T, out string) {
			if c := capEff(t, out); c&(1<<capChown) == 0 || c&(1<<capSysAdmin) != 0 {
				t.Errorf("CapEff %x: want CHOWN without SYS_ADMIN", c)
			}
		}},
		{name: "add and drop one", args: []string{"cat=/proc/self/status"}, modify: func(s *runtime.ContainerSpec) {
			s.CapAdd, s.CapDrop = []string{"SYS_ADMIN"}, []string{"CAP_CHOWN"}
		}, check: func(t *testing.T, out string) {
			if c := capEff(t, out); c&(1<<capChown) != 0 || c&(1<<capSysAdmin) == 0 {
				t.Errorf("CapEff %x: want SYS_ADMIN without CHOWN", c)
			}
		}},
		{name: "privileged", args: []string{"cat=/proc/self/status"}, modify: func(s *runtime.ContainerSpec) { s.Privileged = true },
			check: func(t *testing.T, out string) {
				if c := capEff(t, out); c&(1<<capSysAdmin) == 0 {
					t.Errorf("CapEff %x: want SYS_ADMIN", c)
				}
			}},
		{name: "own PID namespace", args: []string{"cat=/proc/1/cmdline"}, want: []string{regtest.TestBinaryPath}},
		{name: "host PID namespace", args: []string{"cat=/proc/1/cmdline"}, modify: func(s *runtime.ContainerSpec) { s.HostPID = true },
			notWant: []string{regtest.TestBinaryPath}},
		{name: "exit code", args: []string{"exit=42"}, wantCode: 42},
		{name: "init process", args: []string{"echo=under init", "cat=/proc/1/cmdline"}, modify: func(s *runtime.ContainerSpec) { s.Init = true },
			want: []string{"under init", "/sbin/berth-init"}, skipUnless: func() string {
				if _, err := exec.LookPath("tini-static"); err != nil {
					return "tini-static is not installed (apt-get install tini)"
				}
				return ""
			}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.skipUnless != nil {
				testenv.Require(t, tc.skipUnless())
			}
			spec := e.spec(fmt.Sprintf("c%d", i), imgRef, tc.args...)
			if tc.modify != nil {
				tc.modify(&spec)
			}
			st, out := e.run(spec)
			if st.Code != tc.wantCode {
				t.Errorf("exit code %d, want %d; output:\n%s", st.Code, tc.wantCode, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(out, w) {
					t.Errorf("output has %q:\n%s", w, out)
				}
			}
			if tc.check != nil {
				tc.check(t, out)
			}
		})
	}
}

// Capability bits (linux/capability.h).
const (
	capChown          = 0
	capNetBindService = 10
	capSysAdmin       = 21
)

// capEff parses the effective capabilities from /proc/self/status output.
func capEff(t *testing.T, status string) uint64 {
	t.Helper()
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			c, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				t.Fatalf("parsing %q: %v", line, err)
			}
			return c
		}
	}
	t.Fatalf("no CapEff in:\n%s", status)
	return 0
}

func capsAre(want uint64) func(*testing.T, string) {
	return func(t *testing.T, out string) {
		if got := capEff(t, out); got != want {
			t.Errorf("CapEff %x, want %x", got, want)
		}
	}
}

// TestResourceLimits checks the cgroup the container runs in.
func TestResourceLimits(t *testing.T) {
	e := newEnv(t)
	img := e.image()
	spec := e.spec("app", img)
	spec.MemoryLimitBytes = 64 << 20
	spec.MemoryReservationBytes = 32 << 20
	spec.CPUShares = 512
	spec.CPUQuota, spec.CPUPeriod = 50000, 100000
	if _, err := e.rt.Create(e.ctx, spec); err != nil {
		t.Fatal(err)
	}
	defer e.delete(spec.ID)
	if _, err := e.rt.Start(e.ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	cg := "/" + e.ns + "/" + spec.ID
	if _, err := os.Stat("/sys/fs/cgroup/memory" + cg); err == nil { // cgroup v1
		checkFile(t, "/sys/fs/cgroup/memory"+cg+"/memory.limit_in_bytes", strconv.Itoa(64<<20))
		checkFile(t, "/sys/fs/cgroup/memory"+cg+"/memory.memsw.limit_in_bytes", strconv.Itoa(64<<20))
		checkFile(t, "/sys/fs/cgroup/memory"+cg+"/memory.soft_limit_in_bytes", strconv.Itoa(32<<20))
		checkFile(t, "/sys/fs/cgroup/cpu"+cg+"/cpu.shares", "512")
		checkFile(t, "/sys/fs/cgroup/cpu"+cg+"/cpu.cfs_quota_us", "50000")
	} else if _, err := os.Stat("/sys/fs/cgroup" + cg); err == nil { // cgroup v2
		checkFile(t, "/sys/fs/cgroup"+cg+"/memory.max", strconv.Itoa(64<<20))
		checkFile(t, "/sys/fs/cgroup"+cg+"/memory.swap.max", "0")
		checkFile(t, "/sys/fs/cgroup"+cg+"/cpu.max", "50000 100000")
	} else {
		testenv.Require(t, "cgroup of the container not found under /sys/fs/cgroup")
	}
}

func checkFile(t *testing.T, path, want string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("%v", err)
		return
	}
	if got := strings.TrimSpace(string(b)); got != want {
		t.Errorf("%s = %q, want %q", path, got, want)
	}
}

func TestMemoryLimitOOMKill(t *testing.T) {
	e := newEnv(t)
	img := e.image()
	events, errc := e.rt.Events(e.ctx)

	spec := e.spec("hog", img, "echo=allocating", "alloc=512", "sleep=inf")
	spec.MemoryLimitBytes = 32 << 20
	st, out := e.run(spec)
	if !st.OOMKilled || st.Code != 137 {
		t.Errorf("exit %+v, want code 137 and OOMKilled; output:\n%s", st, out)
	}
	if strings.Contains(out, "allocated") {
		t.Errorf("the allocation succeeded despite the limit:\n%s", out)
	}

	var sawOOM, sawExit bool
	timeout := time.After(20 * time.Second)
	for !sawOOM || !sawExit {
		select {
		case ev := <-events:
			if ev.ContainerID != spec.ID {
				continue
			}
			switch ev.Type {
			case runtime.EventOOM:
				sawOOM = true
			case runtime.EventExit:
				sawExit = true
				if ev.Exit == nil || ev.Exit.Code != 137 || !ev.Exit.OOMKilled {
					t.Errorf("exit event %+v, want 137 and OOMKilled", ev.Exit)
				}
			}
		case err := <-errc:
			t.Fatalf("event stream: %v", err)
		case <-timeout:
			t.Fatalf("events: oom %v, exit %v; want both", sawOOM, sawExit)
		}
	}

	// A container killed for another reason is not reported as OOM-killed.
	spec = e.spec("fine", img, "alloc=4", "exit=0")
	spec.MemoryLimitBytes = 32 << 20
	if st, out := e.run(spec); st.OOMKilled || st.Code != 0 {
		t.Errorf("exit %+v, want 0 without OOM; output:\n%s", st, out)
	}
}

func TestStop(t *testing.T) {
	e := newEnv(t)
	img := e.image()
	tests := []struct {
		name     string
		args     []string
		timeout  time.Duration
		wantCode int
		wantLog  string
		minTime  time.Duration
		maxTime  time.Duration
	}{
		{name: "SIGTERM is enough", args: []string{"echo=ready", "sleep=inf"}, timeout: 30 * time.Second,
			wantCode: 0, wantLog: "terminated", maxTime: 10 * time.Second},
		{name: "SIGKILL after the timeout", args: []string{"ignore-term", "echo=ready", "sleep=inf"}, timeout: 1500 * time.Millisecond,
			wantCode: 137, minTime: 1500 * time.Millisecond, maxTime: 15 * time.Second},
		{name: "zero timeout kills at once", args: []string{"ignore-term", "echo=ready", "sleep=inf"}, timeout: 0,
			wantCode: 137, maxTime: 10 * time.Second},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := e.spec(fmt.Sprintf("s%d", i), img, tc.args...)
			if _, err := e.rt.Create(e.ctx, spec); err != nil {
				t.Fatal(err)
			}
			defer e.delete(spec.ID)
			if _, err := e.rt.Start(e.ctx, spec.ID); err != nil {
				t.Fatal(err)
			}
			e.waitLog(spec, "ready")
			start := time.Now()
			st, err := e.rt.Stop(e.ctx, spec.ID, tc.timeout)
			took := time.Since(start)
			if err != nil {
				t.Fatal(err)
			}
			if st.Code != tc.wantCode || st.OOMKilled {
				t.Errorf("exit %+v, want code %d", st, tc.wantCode)
			}
			if took < tc.minTime || took > tc.maxTime {
				t.Errorf("stop took %s, want between %s and %s", took, tc.minTime, tc.maxTime)
			}
			if tc.wantLog != "" && !strings.Contains(e.log(spec), tc.wantLog) {
				t.Errorf("log lacks %q:\n%s", tc.wantLog, e.log(spec))
			}
			// Stopping again returns the same status at once.
			again, err := e.rt.Stop(e.ctx, spec.ID, time.Minute)
			if err != nil || again.Code != st.Code {
				t.Errorf("second stop: %+v, %v; want code %d", again, err, st.Code)
			}
		})
	}
	t.Run("not started", func(t *testing.T) {
		spec := e.spec("never", img)
		if _, err := e.rt.Create(e.ctx, spec); err != nil {
			t.Fatal(err)
		}
		defer e.delete(spec.ID)
		if _, err := e.rt.Stop(e.ctx, spec.ID, time.Second); !errors.Is(err, runtime.ErrNotStarted) {
			t.Errorf("got %v, want ErrNotStarted", err)
		}
	})
	t.Run("missing", func(t *testing.T) {
		if _, err := e.rt.Stop(e.ctx, "no-such-container", time.Second); !errors.Is(err, runtime.ErrNotFound) {
			t.Errorf("got %v, want ErrNotFound", err)
		}
	})
}

func TestExec(t *testing.T) {
	e := newEnv(t)
	img := e.image()
	spec := e.spec("app", img)
	spec.Env = []string{"GREETING=hi"}
	if _, err := e.rt.Create(e.ctx, spec); err != nil {
		t.Fatal(err)
	}
	defer e.delete(spec.ID)
	if _, err := e.rt.Start(e.ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	bin := regtest.TestBinaryPath
	tests := []struct {
		name     string
		cmd      []string
		timeout  time.Duration
		wantCode int
		wantOut  string
		wantErr  error
	}{
		{name: "healthy", cmd: []string{bin, "echo=healthy"}, wantOut: "healthy\n"},
		{name: "sees the container's env", cmd: []string{bin, "env=GREETING"}, wantOut: "GREETING=hi\n"},
		{name: "stdout and stderr", cmd: []string{bin, "echo=out", "stderr=err", "exit=3"}, wantCode: 3, wantOut: "out\nerr\n"},
		{name: "timeout", cmd: []string{bin, "echo=started", "sleep=60s"}, timeout: 500 * time.Millisecond, wantCode: -1, wantErr: runtime.ErrExecTimeout},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			timeout := tc.timeout
			if timeout == 0 {
				timeout = 20 * time.Second
			}
			start := time.Now()
			code, out, err := e.rt.Exec(e.ctx, spec.ID, tc.cmd, timeout)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if code != tc.wantCode {
				t.Errorf("code %d, want %d", code, tc.wantCode)
			}
			if tc.wantOut != "" && string(out) != tc.wantOut {
				// stdout and stderr are copied concurrently: compare as sets of lines.
				if !sameLines(string(out), tc.wantOut) {
					t.Errorf("output %q, want %q", out, tc.wantOut)
				}
			}
			if took := time.Since(start); took > timeout+10*time.Second {
				t.Errorf("exec took %s", took)
			}
		})
	}
	// A caller that goes away at any moment, even while the start is in flight (an
	// exec client that disconnects under load), leaves no command running: the
	// start runs to its end and the command is killed. It failed (a process left
	// running that could neither be killed nor deleted) before the start ran outside
	// the caller's context.
	t.Run("caller gone at any moment leaves no process", func(t *testing.T) {
		c, cctx := e.client()
		ctr, err := c.LoadContainer(cctx, spec.ID)
		if err != nil {
			t.Fatal(err)
		}
		task, err := ctr.Task(cctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		// Every 4 ms up to 200 ms covers the create, the start and the wait here.
		for d := time.Duration(0); d <= 200*time.Millisecond; d += 4 * time.Millisecond {
			{
				ctx, cancel := context.WithCancel(e.ctx)
				timer := time.AfterFunc(d, cancel)
				_, err := e.rt.ExecStream(ctx, spec.ID, runtime.StreamOptions{Cmd: []string{bin, "echo=started", "sleep=inf"}, Stdout: io.Discard})
				timer.Stop()
				cancel()
				if !errors.Is(err, context.Canceled) {
					t.Errorf("cancelled after %s: %v, want context.Canceled", d, err)
				}
				testenv.EventuallyWithin(t, 15*time.Second, fmt.Sprintf("no exec left after a cancel at %s", d), func() error {
					pids, err := task.Pids(cctx)
					if err != nil {
						return err
					}
					if len(pids) != 1 {
						return fmt.Errorf("the container has %d processes, want its own only", len(pids))
					}
					return nil
				})
			}
		}
	})
	t.Run("missing executable", func(t *testing.T) {
		code, _, err := e.rt.Exec(e.ctx, spec.ID, []string{"/no/such/binary"}, 10*time.Second)
		if err == nil && code == 0 {
			t.Errorf("exec of a missing binary succeeded")
		}
	})
	if _, err := e.rt.Stop(e.ctx, spec.ID, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.rt.Exec(e.ctx, spec.ID, []string{bin, "echo=x"}, time.Second); !errors.Is(err, runtime.ErrNotRunning) {
		t.Errorf("exec in a stopped container: %v, want ErrNotRunning", err)
	}
}

func sameLines(a, b string) bool {
	la, lb := strings.Split(strings.TrimSpace(a), "\n"), strings.Split(strings.TrimSpace(b), "\n")
	if len(la) != len(lb) {
		return false
	}
	seen := map[string]int{}
	for _, l := range la {
		seen[l]++
	}
	for _, l := range lb {
		seen[l]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}

func TestCreateIsIdempotent(t *testing.T) {
	e := newEnv(t)
	img := e.image()
	spec := e.spec("app", img)
	first, err := e.rt.Create(e.ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	second, err := e.rt.Create(e.ctx, spec)
	if err != nil {
		t.Fatalf("second create: %v", err)
	}
	if !first.CreatedAt.Equal(second.CreatedAt) || first.ID != second.ID {
		t.Errorf("second create returned %+v, want the first %+v", second, first)
	}
	list, err := e.rt.List(e.ctx, map[string]string{runtime.LabelTaskUID: spec.Labels[runtime.LabelTaskUID]})
	if err != nil || len(list) != 1 {
		t.Fatalf("list: %d containers, %v; want 1", len(list), err)
	}
	diff(t, "status", runtime.StatusCreated, list[0].Status)
	diff(t, "log path", spec.LogPath, list[0].LogPath)

	other := spec
	other.Labels = map[string]string{runtime.LabelTaskUID: "someone-else"}
	if _, err := e.rt.Create(e.ctx, other); !errors.Is(err, runtime.ErrAlreadyExists) {
		t.Errorf("create with other labels: %v, want ErrAlreadyExists", err)
	}
	if err := e.rt.Delete(e.ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.rt.Delete(e.ctx, spec.ID); err != nil {
		t.Errorf("deleting again: %v", err)
	}
}

func TestCreateFailureLeavesNothing(t *testing.T) {
	e := newEnv(t)
	img := e.image()
	spec := e.spec("app", img)
	spec.User = "nobody-in-this-image" // fails after the snapshot is prepared
	if _, err := e.rt.Create(e.ctx, spec); err == nil {
		t.Fatal("create with an unknown user succeeded")
	} else {
		t.Logf("create failed as expected: %v", err)
	}
	if left := e.leftovers(); len(left) > 0 {
		t.Errorf("a failed create left %v", left)
	}
	// The same ID can be created once the spec is fixed.
	spec.User = ""
	if _, err := e.rt.Create(e.ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := e.rt.Delete(e.ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	bad := e.spec("bad", img)
	bad.ID = "not a valid id!"
	if _, err := e.rt.Create(e.ctx, bad); err == nil {
		t.Error("create with an invalid ID succeeded")
	}
}

func TestStartIsIdempotentAndRestarts(t *testing.T) {
	e := newEnv(t)
	img := e.image()
	spec := e.spec("app", img)
	if _, err := e.rt.Create(e.ctx, spec); err != nil {
		t.Fatal(err)
	}
	defer e.delete(spec.ID)
	pid1, err := e.rt.Start(e.ctx, spec.ID)
	if err != nil {
		t.Fatal(err)
	}
	pid2, err := e.rt.Start(e.ctx, spec.ID)
	if err != nil || pid2 != pid1 {
		t.Errorf("second start: pid %d, %v; want %d", pid2, err, pid1)
	}
	e.waitLog(spec, "ready")
	if _, err := e.rt.Stop(e.ctx, spec.ID, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	pid3, err := e.rt.Start(e.ctx, spec.ID)
	if err != nil || pid3 == pid1 || pid3 == 0 {
		t.Errorf("restart: pid %d, %v; want a new process", pid3, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(e.log(spec), "ready") < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := strings.Count(e.log(spec), "ready"); n != 2 {
		t.Errorf("log has %d starts, want 2 (appended):\n%s", n, e.log(spec))
	}
	if _, err := e.rt.Start(e.ctx, "no-such-container"); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("start of a missing container: %v, want ErrNotFound", err)
	}
}

func TestListByLabels(t *testing.T) {
	e := newEnv(t)
	img := e.image()
	type ctr struct{ task, name string }
	all := []ctr{{"task-a", "web"}, {"task-a", "sidecar"}, {"task-b", "web"}, {"task-b", "sidecar"}}
	var running runtime.ContainerSpec
	for _, c := range all {
		spec := e.spec(c.name, img)
		uid := "uid-" + c.task
		spec.ID = runtime.ContainerID(uid, c.name)
		spec.Labels[runtime.LabelTaskUID] = uid
		spec.Labels[runtime.LabelTask] = "team/" + c.task
		if _, err := e.rt.Create(e.ctx, spec); err != nil {
			t.Fatal(err)
		}
		defer e.delete(spec.ID)
		if c == (ctr{"task-a", "web"}) {
			running = spec
		}
	}
	if _, err := e.rt.Start(e.ctx, running.ID); err != nil {
		t.Fatal(err)
	}
	// Its SIGTERM handler is installed once it says "ready": a SIGTERM before that
	// meets a PID 1 without a handler, which the kernel drops (the stop below would
	// end in SIGKILL) or, once Go's runtime runs, makes it exit 2.
	e.waitLog(running, "ready")
	tests := []struct {
		name   string
		labels map[string]string
		want   map[string]runtime.ContainerStatus
	}{
		{name: "by task uid", labels: map[string]string{runtime.LabelTaskUID: "uid-task-a"}, want: map[string]runtime.ContainerStatus{
			"uid-task-a-web": runtime.StatusRunning, "uid-task-a-sidecar": runtime.StatusCreated}},
		{name: "by task name with a slash", labels: map[string]string{runtime.LabelTask: "team/task-b"}, want: map[string]runtime.ContainerStatus{
			"uid-task-b-web": runtime.StatusCreated, "uid-task-b-sidecar": runtime.StatusCreated}},
		{name: "by two labels", labels: map[string]string{runtime.LabelTaskUID: "uid-task-b", runtime.LabelContainer: "web"}, want: map[string]runtime.ContainerStatus{
			"uid-task-b-web": runtime.StatusCreated}},
		{name: "no match", labels: map[string]string{runtime.LabelTaskUID: "uid-task-c"}, want: map[string]runtime.ContainerStatus{}},
		{name: "everything", want: map[string]runtime.ContainerStatus{
			"uid-task-a-web": runtime.StatusRunning, "uid-task-a-sidecar": runtime.StatusCreated,
			"uid-task-b-web": runtime.StatusCreated, "uid-task-b-sidecar": runtime.StatusCreated}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			list, err := e.rt.List(e.ctx, tc.labels)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]runtime.ContainerStatus{}
			for _, c := range list {
				got[c.ID] = c.Status
				if c.Status == runtime.StatusRunning && c.Pid == 0 {
					t.Errorf("%s is running without a pid", c.ID)
				}
			}
			diff(t, "containers", tc.want, got)
		})
	}
	// A stopped container shows its exit status.
	id := runtime.ContainerID("uid-task-a", "web")
	if _, err := e.rt.Stop(e.ctx, id, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	list, err := e.rt.List(e.ctx, map[string]string{runtime.LabelTaskUID: "uid-task-a", runtime.LabelContainer: "web"})
	if err != nil || len(list) != 1 {
		t.Fatalf("list: %v, %v", list, err)
	}
	if list[0].Status != runtime.StatusStopped || list[0].Exit == nil || list[0].Exit.Code != 0 || list[0].Exit.ExitedAt.IsZero() {
		t.Errorf("stopped container: %+v", list[0])
	}
}

func TestEventsReportExits(t *testing.T) {
	e := newEnv(t)
	img := e.image()
	events, errc := e.rt.Events(e.ctx)

	long := e.spec("long", img)
	if _, err := e.rt.Create(e.ctx, long); err != nil {
		t.Fatal(err)
	}
	defer e.delete(long.ID)
	if _, err := e.rt.Start(e.ctx, long.ID); err != nil {
		t.Fatal(err)
	}
	// Exits of exec processes are not container exits.
	if code, _, err := e.rt.Exec(e.ctx, long.ID, []string{regtest.TestBinaryPath, "exit=5"}, 10*time.Second); err != nil || code != 5 {
		t.Fatalf("exec: %d, %v", code, err)
	}
	short := e.spec("short", img, "exit=7")
	if st, _ := e.run(short); st.Code != 7 {
		t.Fatalf("exit %+v", st)
	}
	if _, err := e.rt.Stop(e.ctx, long.ID, 10*time.Second); err != nil {
		t.Fatal(err)
	}

	got := map[string]int{}
	timeout := time.After(20 * time.Second)
	for len(got) < 2 {
		select {
		case ev := <-events:
			if ev.Type != runtime.EventExit {
				t.Errorf("unexpected event %+v", ev)
				continue
			}
			if _, dup := got[ev.ContainerID]; dup {
				t.Errorf("second exit event for %s", ev.ContainerID)
			}
			got[ev.ContainerID] = ev.Exit.Code
		case err := <-errc:
			t.Fatalf("event stream: %v", err)
		case <-timeout:
			t.Fatalf("exit events so far: %v", got)
		}
	}
	diff(t, "exit codes", map[string]int{short.ID: 7, long.ID: 0}, got)
}

// TestAgentRestart: a second Runtime (the agent after a restart) finds the running
// container by its labels and stops it; its output kept going to the log meanwhile.
func TestAgentRestart(t *testing.T) {
	e := newEnv(t)
	img := e.image()
	spec := e.spec("app", img, "echo=before", "sleep=300ms", "echo=after", "sleep=inf")
	if _, err := e.rt.Create(e.ctx, spec); err != nil {
		t.Fatal(err)
	}
	pid, err := e.rt.Start(e.ctx, spec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.rt.Close(); err != nil { // the agent goes away
		t.Fatal(err)
	}
	e.waitLog(spec, "after")

	rt2, err := containerd.New(e.ctx, containerd.Options{Address: daemon.Address, Namespace: e.ns,
		Snapshotter: daemon.Snapshotter, HostsDir: daemon.HostsDir, FIFODir: daemon.FIFODir, RuncRoot: daemon.RuncRoot})
	if err != nil {
		t.Fatal(err)
	}
	e.rt = rt2
	list, err := rt2.List(e.ctx, map[string]string{runtime.LabelTaskUID: spec.Labels[runtime.LabelTaskUID]})
	if err != nil || len(list) != 1 {
		t.Fatalf("list after restart: %v, %v", list, err)
	}
	got := list[0]
	if got.ID != spec.ID || got.Status != runtime.StatusRunning || got.Pid != pid || got.LogPath != spec.LogPath {
		t.Errorf("found %+v, want %s running as pid %d", got, spec.ID, pid)
	}
	for k, v := range spec.Labels {
		if got.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, got.Labels[k], v)
		}
	}
	if st, err := rt2.Stop(e.ctx, spec.ID, 10*time.Second); err != nil || st.Code != 0 {
		t.Errorf("stop after restart: %+v, %v", st, err)
	}
	if err := rt2.Delete(e.ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
}

func TestNetworking(t *testing.T) {
	e := newEnv(t)
	img := e.image()
	port := freePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)

	t.Run("host network", func(t *testing.T) {
		spec := e.spec("host", img, "serve="+strconv.Itoa(port), "echo=ready", "sleep=inf")
		spec.HostNetwork = true
		e.startAndWait(spec)
		defer e.delete(spec.ID)
		if body := httpGet(t, url); body != "ok\n" {
			t.Errorf("GET %s from the host: %q, want ok", url, body)
		}
	})

	t.Run("own network namespace, joined by another container", func(t *testing.T) {
		server := e.spec("server", img, "serve="+strconv.Itoa(port), "echo=ready", "sleep=inf")
		pid := e.startAndWait(server)
		defer e.delete(server.ID)
		if body := httpGet(t, url); body != "" {
			t.Errorf("the server in its own namespace answered the host: %q", body)
		}
		// A new network namespace has only a loopback that is down; bring it up as the
		// agent's network setup (CNI loopback) will.
		netns := fmt.Sprintf("/proc/%d/ns/net", pid)
		if out, err := exec.Command("nsenter", "--net="+netns, "ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
			testenv.Require(t, fmt.Sprintf("cannot bring up loopback with nsenter and ip (apt-get install iproute2): %v %s", err, out))
		}
		client := e.spec("client", img, "get="+url)
		client.NetNSPath = netns
		st, out := e.run(client)
		if st.Code != 0 || out != "ok\n" {
			t.Errorf("client in the server's namespace: exit %d, output %q; want ok", st.Code, out)
		}
	})
}

func (e *env) startAndWait(spec runtime.ContainerSpec) uint32 {
	e.t.Helper()
	if _, err := e.rt.Create(e.ctx, spec); err != nil {
		e.t.Fatal(err)
	}
	pid, err := e.rt.Start(e.ctx, spec.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	e.waitLog(spec, "ready")
	return pid
}

func TestDeleteRunningContainer(t *testing.T) {
	e := newEnv(t)
	img := e.image()
	spec := e.spec("app", img, "ignore-term", "echo=ready", "sleep=inf")
	e.startAndWait(spec)
	if err := e.rt.Delete(e.ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	if left := e.leftovers(); len(left) > 0 {
		t.Errorf("delete left %v", left)
	}
	if err := e.rt.Delete(e.ctx, "never-existed"); err != nil {
		t.Errorf("deleting a missing container: %v", err)
	}
	if _, err := e.rt.Wait(e.ctx, spec.ID); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("wait on a deleted container: %v, want ErrNotFound", err)
	}
}

func TestVersion(t *testing.T) {
	e := newEnv(t)
	v, err := e.rt.Version(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(v, "v2.") {
		t.Errorf("version %q, want v2.x", v)
	}
}

// TestDeleteOutlivesItsCaller: a delete whose caller is cancelled (an agent stopping
// while it cleans up) still removes the task and lets its shim exit; cut short, it
// would leave the shim running with no task to show for it.
func TestDeleteOutlivesItsCaller(t *testing.T) {
	e := newEnv(t)
	spec := e.spec("app", e.image(), "ignore-term", "echo=ready", "sleep=inf")
	e.startAndWait(spec)
	cancelled, cancel := context.WithCancel(e.ctx)
	cancel()
	if err := e.rt.Delete(cancelled, spec.ID); err != nil {
		t.Fatalf("delete with a cancelled context: %v", err)
	}
	if left := e.leftovers(); len(left) > 0 {
		t.Errorf("delete left %v", left)
	}
	testenv.EventuallyWithin(t, 10*time.Second, "the container's shim to exit", func() error {
		shims, err := localrun.Shims(daemon.Address)
		if err != nil {
			return err
		}
		for _, s := range shims {
			if s.Namespace == e.ns {
				return fmt.Errorf("shim %s still runs", s)
			}
		}
		return nil
	})
}
