// Package faults_test is Berth's fault suite: real components (kube-apiserver and
// etcd, containerd with runc, a loopback registry, the manager and `berth agent` as
// processes) broken on purpose, each test asserting that nothing is lost and nothing
// is duplicated, by reading containerd directly (containers, their labels and task
// PIDs) as well as the API:
//
//   - kill -9 of the agent during an image pull, between a container's create and
//     its start, and during a stop;
//   - containerd restarted three times under 20 running tasks;
//   - the manager killed in the middle of a scale-up, then two managers at once;
//   - a Service deleted while its agent is offline;
//   - the apiserver unreachable from the agent for 60 s.
//
// The suite takes minutes, so it runs only with BERTH_FAULTS=1 (`make test-faults`);
// like test/e2e it needs root and the tools of `make tools`, and without them fails in
// CI and skips elsewhere (testenv.RequireMain).
// It prints a table of the outcomes and recovery times at the end, and writes it to
// $BERTH_FAULTS_REPORT when that is set.
package faults_test

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthdev/berth/test/testenv"
	ctrtest "github.com/berthdev/berth/test/testenv/containerd"
	regtest "github.com/berthdev/berth/test/testenv/registry"
)

var (
	env *testenv.Env
	// berthBin is the berth binary the suite runs as agent and manager processes.
	berthBin string
)

func TestMain(m *testing.M) {
	flag.Parse()
	if reason := skipReason(); reason != "" {
		fmt.Println("skipping the fault suite:", reason)
		os.Exit(0)
	}
	if code, stop := testenv.RequireMain(missing()); stop {
		os.Exit(code)
	}
	dir, err := os.MkdirTemp("", "berth-faults-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	berthBin = filepath.Join(dir, "berth")
	build := exec.Command("go", "build", "-o", berthBin, ".")
	build.Dir = testenv.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := testenv.Run(m, &env)
	_ = os.RemoveAll(dir)
	if err := writeResults(); err != nil {
		fmt.Fprintln(os.Stderr, "writing the results:", err)
	}
	os.Exit(code)
}

// skipReason says why the suite was not asked for: an opt-in, not a missing
// requirement (`make test` runs it again with BERTH_FAULTS=1).
func skipReason() string {
	switch {
	case os.Getenv("BERTH_FAULTS") == "":
		return "set BERTH_FAULTS=1 (make test-faults)"
	case testing.Short():
		return "-short"
	}
	return ""
}

// missing says what the suite needs and this machine lacks: a failure in CI, a skip
// elsewhere.
func missing() string {
	if reason := ctrtest.SkipReason(); reason != "" {
		return reason
	}
	if _, err := os.Stat(regtest.BinaryPath()); err != nil {
		return "registry not built: run `make tools`"
	}
	return ""
}

// scenario is one row of the results table. Its outcome is decided when the test
// ends: PASS with the notes the test made, or FAIL.
type scenario struct {
	name     string
	recovery string
	notes    []string
}

var results struct {
	sync.Mutex
	rows []string
}

// newScenario starts the test's row. Call it first, so that its cleanup runs last
// and sees every failure.
func newScenario(t *testing.T, name string) *scenario {
	t.Helper()
	s := &scenario{name: name, recovery: "-"}
	start := time.Now()
	t.Cleanup(func() {
		outcome := "PASS"
		if t.Failed() {
			outcome = "FAIL"
		}
		if len(s.notes) > 0 {
			outcome += ": " + strings.Join(s.notes, "; ")
		}
		row := fmt.Sprintf("| %s | %s | %s | %s |", s.name, outcome, s.recovery, time.Since(start).Round(time.Second))
		results.Lock()
		results.rows = append(results.rows, row)
		results.Unlock()
	})
	return s
}

// recovered records how long recovery took, measured from the repair.
func (s *scenario) recovered(d time.Duration, what string) {
	s.recovery = fmt.Sprintf("%s (%s)", d.Round(100*time.Millisecond), what)
}

func (s *scenario) note(format string, args ...any) {
	s.notes = append(s.notes, fmt.Sprintf(format, args...))
}

// writeResults prints the table and writes it to $BERTH_FAULTS_REPORT if set.
func writeResults() error {
	results.Lock()
	defer results.Unlock()
	if len(results.rows) == 0 {
		return nil
	}
	table := "| Scenario | Outcome | Recovery | Test time |\n|---|---|---|---|\n" + strings.Join(results.rows, "\n") + "\n"
	fmt.Print("\nFault suite results:\n\n" + table)
	if p := os.Getenv("BERTH_FAULTS_REPORT"); p != "" {
		return os.WriteFile(p, []byte(table), 0o644)
	}
	return nil
}
