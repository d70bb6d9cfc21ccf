package conformance

import "testing"

// TestTwoTasksSharedLocalVolume is the ECS suite's test of that name
// (functionaltests_unix_test.go l.1010-1033, tests.md rows 43-44): a task writes to a
// shared, autoprovisioned Docker volume and exits 42; then a second task, whose
// volume does not autoprovision (so it must find the first one's), reads what the
// first wrote and exits 42. Each must stop within two minutes.
func TestTwoTasksSharedLocalVolume(t *testing.T) {
	s := newStack(t)
	for _, name := range []string{"task-shared-vol-write", "task-shared-vol-read"} {
		s.runSimpleTest(t, name, simpleTest{TaskDefinition: name, Timeout: "2m", ExitCodes: map[string]int32{name: 42}})
		if t.Failed() {
			return
		}
	}
}
