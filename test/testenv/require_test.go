package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestStrict(t *testing.T) {
	tests := []struct {
		ci, requireRoot string
		want            bool
	}{
		{want: false},
		{ci: "true", want: true},
		{ci: "1", want: true},
		{ci: "yes", want: true},
		{ci: "TRUE", want: true},
		{ci: "false", want: false},
		{ci: "False", want: false},
		{ci: "0", want: false},
		{requireRoot: "1", want: true},
		{requireRoot: "0", want: false},
		{ci: "false", requireRoot: "1", want: true},
		{ci: "true", requireRoot: "0", want: true},
	}
	for _, tc := range tests {
		if got := strict(tc.ci, tc.requireRoot); got != tc.want {
			t.Errorf("strict(CI=%q, BERTH_REQUIRE_ROOT=%q) = %v, want %v", tc.ci, tc.requireRoot, got, tc.want)
		}
	}
}

// recorder is a testing.TB that records Fatal and Skip instead of ending the test.
type recorder struct {
	testing.TB
	failed, skipped string
}

func (r *recorder) Helper()           {}
func (r *recorder) Fatal(args ...any) { r.failed = fmt.Sprint(args...) }
func (r *recorder) Skip(args ...any)  { r.skipped = fmt.Sprint(args...) }

func TestRequire(t *testing.T) {
	tests := []struct {
		name            string
		ci, requireRoot string
		missing         []string
		wantFail        bool
		wantSkip        bool
		wantCode        int
	}{
		{name: "satisfied in CI", ci: "true", missing: []string{"", ""}},
		{name: "satisfied locally", missing: nil},
		{name: "missing in CI", ci: "true", missing: []string{"needs root"}, wantFail: true, wantCode: 1},
		{name: "missing with BERTH_REQUIRE_ROOT", requireRoot: "1", missing: []string{"needs root"}, wantFail: true, wantCode: 1},
		{name: "missing locally", missing: []string{"", "needs root"}, wantSkip: true},
		{name: "missing with CI=false", ci: "false", missing: []string{"needs root"}, wantSkip: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			t.Setenv("BERTH_REQUIRE_ROOT", tc.requireRoot)
			r := &recorder{TB: t}
			Require(r, tc.missing...)
			if got := r.failed != ""; got != tc.wantFail {
				t.Errorf("failed = %v (%q), want %v", got, r.failed, tc.wantFail)
			}
			if got := r.skipped != ""; got != tc.wantSkip {
				t.Errorf("skipped = %v (%q), want %v", got, r.skipped, tc.wantSkip)
			}
			for _, msg := range []string{r.failed, r.skipped} {
				if msg != "" && !strings.Contains(msg, "needs root") {
					t.Errorf("message %q does not say what is missing", msg)
				}
			}
			var stdout, stderr strings.Builder
			code, stop := requireMain(&stdout, &stderr, tc.missing)
			if wantStop := tc.wantFail || tc.wantSkip; stop != wantStop || code != tc.wantCode {
				t.Errorf("RequireMain = (%d, %v), want (%d, %v)", code, stop, tc.wantCode, wantStop)
			}
			if tc.wantFail && !strings.Contains(stderr.String(), "needs root") {
				t.Errorf("RequireMain failing printed %q to stderr, want the reason", stderr.String())
			}
			if tc.wantSkip && !strings.Contains(stdout.String(), "skipping: needs root") {
				t.Errorf("RequireMain skipping printed %q to stdout, want the reason", stdout.String())
			}
		})
	}
}

func TestMissingHelpers(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bridge"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	if got := MissingFiles(dir, []string{"bridge"}, "hint"); got != "" {
		t.Errorf("MissingFiles with the file present = %q, want \"\"", got)
	}
	got := MissingFiles(dir, []string{"bridge", "portmap", "loopback"}, "apt-get install x")
	for _, want := range []string{"portmap, loopback", dir, "apt-get install x"} {
		if !strings.Contains(got, want) {
			t.Errorf("MissingFiles = %q, want it to mention %q", got, want)
		}
	}
	if got := MissingBinary("go", "hint"); got != "" {
		t.Errorf("MissingBinary(go) = %q, want \"\" (go runs this test)", got)
	}
	if got := MissingBinary("berth-no-such-tool", "apt-get install y"); !strings.Contains(got, "berth-no-such-tool") || !strings.Contains(got, "apt-get install y") {
		t.Errorf("MissingBinary of an absent tool = %q, want its name and the hint", got)
	}
}

// TestNonRootRunFailsInCI is the done-when, for real: the test binaries of a
// root-only suite deciding in TestMain (test/e2e) and of one requiring root per test
// (test/testenv/containerd), run as an unprivileged user, fail naming root when CI
// is set and skip, exiting 0, when it is not.
func TestNonRootRunFailsInCI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the end-to-end test binary")
	}
	// Dropping privileges to another user needs them in the first place.
	Require(t, MissingRoot())

	// A directory the unprivileged user can enter and execute from (t.TempDir's is
	// private to root).
	dir, err := os.MkdirTemp("", "berth-require-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "test", "-c", "-o", dir+"/", "./test/e2e", "./test/testenv/containerd")
	build.Dir = RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go test -c: %v\n%s", err, out)
	}

	const nobody = 65534
	for _, bin := range []string{"e2e.test", "containerd.test"} {
		for _, ci := range []string{"true", ""} {
			t.Run(fmt.Sprintf("%s CI=%q", bin, ci), func(t *testing.T) {
				cmd := exec.Command(filepath.Join(dir, bin), "-test.v")
				cmd.Dir = dir
				cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "CI=" + ci}
				cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
				out, err := cmd.CombinedOutput()
				code := 0
				var exit *exec.ExitError
				if errors.As(err, &exit) {
					code = exit.ExitCode()
				} else if err != nil {
					t.Fatalf("running %s as uid %d: %v", bin, nobody, err)
				}
				t.Logf("exit code %d:\n%s", code, out)
				if want := fmt.Sprintf("needs root (running as uid %d)", nobody); !strings.Contains(string(out), want) {
					t.Errorf("output does not name what is missing (%q):\n%s", want, out)
				}
				if ci != "" {
					if code == 0 {
						t.Errorf("exit code 0 with CI=%s as a non-root user, want a failure:\n%s", ci, out)
					}
					return
				}
				if code != 0 || !strings.Contains(string(out), "skip") {
					t.Errorf("without CI: exit code %d, want 0 and a skip message:\n%s", code, out)
				}
			})
		}
	}
}
