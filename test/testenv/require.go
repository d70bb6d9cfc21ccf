package testenv

// What a test needs of the machine.
//
// A test that needs root, a binary or files says so with Require; a TestMain that
// decides for its whole package uses RequireMain. When something is missing, the
// test fails with the reason in CI (CI set, as .ci/run does, or
// BERTH_REQUIRE_ROOT=1) and is skipped everywhere else, so a run can never report
// ok in CI for a suite the machine could not run. A developer's quick run
// (testing.Short) is an explicit choice, not a missing requirement: callers keep
// skipping it themselves.

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Strict reports whether a missing requirement fails rather than skips: CI is set
// to anything but "", "0" or "false", or BERTH_REQUIRE_ROOT is 1.
func Strict() bool {
	return strict(os.Getenv("CI"), os.Getenv("BERTH_REQUIRE_ROOT"))
}

func strict(ci, requireRoot string) bool {
	switch strings.ToLower(strings.TrimSpace(ci)) {
	case "", "0", "false":
		return requireRoot == "1"
	}
	return true
}

// Require fails the test in CI, and skips it elsewhere, when any of missing is not
// empty. Each entry says what is missing and how to get it; "" means satisfied:
//
//	testenv.Require(t, testenv.MissingRoot(), testenv.MissingBinary("iptables", "apt-get install iptables"))
func Require(t testing.TB, missing ...string) {
	t.Helper()
	reason := joinMissing(missing)
	switch {
	case reason == "":
	case Strict():
		t.Fatal(failMessage(reason))
	default:
		t.Skip(skipMessage(reason))
	}
}

// RequireMain is Require for a TestMain that decides for its whole package. When
// something is missing it prints the reason and returns stop with the exit code:
// 1 in CI, 0 elsewhere.
//
//	if code, stop := testenv.RequireMain(ctrtest.SkipReason()); stop {
//		os.Exit(code)
//	}
func RequireMain(missing ...string) (code int, stop bool) {
	return requireMain(os.Stdout, os.Stderr, missing)
}

func requireMain(stdout, stderr io.Writer, missing []string) (code int, stop bool) {
	reason := joinMissing(missing)
	switch {
	case reason == "":
		return 0, false
	case Strict():
		_, _ = fmt.Fprintln(stderr, "FAIL:", failMessage(reason))
		return 1, true
	default:
		_, _ = fmt.Fprintln(stdout, skipMessage(reason))
		return 0, true
	}
}

// MissingRoot says that root is needed unless the process runs as root.
func MissingRoot() string {
	if uid := os.Geteuid(); uid != 0 {
		return fmt.Sprintf("needs root (running as uid %d)", uid)
	}
	return ""
}

// MissingBinary says that name is not on PATH and how to get it (hint), or "".
func MissingBinary(name, hint string) string {
	if _, err := exec.LookPath(name); err != nil {
		return fmt.Sprintf("%s not found in PATH (%s)", name, hint)
	}
	return ""
}

// MissingFiles says which of names are not in dir and how to get them (hint), or "".
func MissingFiles(dir string, names []string, hint string) string {
	var absent []string
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			absent = append(absent, n)
		}
	}
	if len(absent) == 0 {
		return ""
	}
	return fmt.Sprintf("%s not found in %s (%s)", strings.Join(absent, ", "), dir, hint)
}

func joinMissing(missing []string) string {
	var reasons []string
	for _, m := range missing {
		if m != "" {
			reasons = append(reasons, m)
		}
	}
	return strings.Join(reasons, "; ")
}

func failMessage(reason string) string {
	return fmt.Sprintf("cannot run here: %s\n(this fails instead of skipping because CI=%q BERTH_REQUIRE_ROOT=%q; without either it would skip)",
		reason, os.Getenv("CI"), os.Getenv("BERTH_REQUIRE_ROOT"))
}

func skipMessage(reason string) string {
	return fmt.Sprintf("skipping: %s (in CI, or with BERTH_REQUIRE_ROOT=1, this fails)", reason)
}
