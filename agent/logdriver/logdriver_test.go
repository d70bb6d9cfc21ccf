package logdriver

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMain runs Run when the test binary is started as the shim starts the log
// driver, so the test drives it through containerd's protocol: descriptors 3, 4
// and 5.
func TestMain(m *testing.M) {
	if p, ok := os.LookupEnv("BERTH_LOGDRIVER_PATH"); ok {
		if err := Run(p); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestRunAppendsBothStreams: the driver signals ready, appends stdout and stderr to
// the log file after what it held (rotation truncates it in place), and exits when
// the container's streams close.
func TestRunAppendsBothStreams(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "app.log")
	if err := os.WriteFile(logPath, []byte("before\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	outR, outW := pipe(t)
	errR, errW := pipe(t)
	readyR, readyW := pipe(t)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "BERTH_LOGDRIVER_PATH="+logPath)
	cmd.ExtraFiles = []*os.File{outR, errR, readyW}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []*os.File{outR, errR, readyW} {
		_ = f.Close()
	}
	if _, err := io.ReadAll(readyR); err != nil {
		t.Fatalf("waiting for ready: %v", err)
	}
	if _, err := outW.WriteString("to stdout\n"); err != nil {
		t.Fatal(err)
	}
	if err := outW.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := errW.WriteString("to stderr\n"); err != nil {
		t.Fatal(err)
	}
	if err := errW.Close(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("log driver: %v", err)
	}
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	if !strings.HasPrefix(got, "before\n") || !strings.Contains(got, "to stdout\n") || !strings.Contains(got, "to stderr\n") {
		t.Errorf("log file = %q, want the old content then both streams", got)
	}
}

func pipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close(); _ = w.Close() })
	return r, w
}
