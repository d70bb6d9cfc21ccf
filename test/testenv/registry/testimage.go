package regtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestBinaryPath is where the test program lives inside images built by TestImage.
const TestBinaryPath = "/bin/testimage"

// SetuidBinaryPath is, in images built by SetuidTestImage, a copy of the test
// program owned by root with the setuid bit (mode 04755): run by any user, it runs
// with effective UID 0 unless no-new-privileges stops that.
const SetuidBinaryPath = "/bin/testimage-setuid"

var testBinary struct {
	once sync.Once
	data []byte
	err  error
}

// TestProgramDir is the source of the test program (package main in testdata, so
// `go build ./...` and `go vet ./...` ignore it).
func TestProgramDir() string {
	_, file, _, _ := goruntime.Caller(0)
	return filepath.Join(filepath.Dir(file), "testdata", "testimage")
}

// TestBinary compiles the test program (testdata/testimage) as a static binary, once
// per test process, and returns its bytes.
func TestBinary(t testing.TB) []byte {
	t.Helper()
	testBinary.once.Do(func() {
		dir, err := os.MkdirTemp("", "regtest-bin-")
		if err != nil {
			testBinary.err = err
			return
		}
		defer func() {
			if err := os.RemoveAll(dir); err != nil {
				t.Logf("removing the test program's build directory: %v", err)
			}
		}()
		out := filepath.Join(dir, "testimage")
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, ".")
		cmd.Dir = TestProgramDir()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
		if b, err := cmd.CombinedOutput(); err != nil {
			testBinary.err = fmt.Errorf("building the test program: %w\n%s", err, b)
			return
		}
		testBinary.data, testBinary.err = os.ReadFile(out)
	})
	if testBinary.err != nil {
		t.Fatal(testBinary.err)
	}
	return testBinary.data
}

// TestImage returns an image whose entrypoint is the test program (see
// testdata/testimage/main.go for its actions) plus extra files, for example
// "etc/passwd". With no command it prints "ready" and sleeps until SIGTERM.
func TestImage(t testing.TB, extra map[string][]byte, opts ...ImageOption) v1.Image {
	t.Helper()
	files := map[string][]byte{TestBinaryPath: TestBinary(t)}
	for k, v := range extra {
		files[k] = v
	}
	img, err := BuildImage(files, []string{TestBinaryPath}, opts...)
	if err != nil {
		t.Fatalf("building test image: %v", err)
	}
	return img
}

// SetuidTestImage is TestImage with a setuid-root copy of the test program at
// SetuidBinaryPath, for tests of what stops a process from gaining privileges.
func SetuidTestImage(t testing.TB, opts ...ImageOption) v1.Image {
	t.Helper()
	bin := TestBinary(t)
	img, err := BuildImageWithModes(map[string][]byte{TestBinaryPath: bin, SetuidBinaryPath: bin},
		map[string]int64{SetuidBinaryPath: 0o4755}, []string{TestBinaryPath}, opts...)
	if err != nil {
		t.Fatalf("building the setuid test image: %v", err)
	}
	return img
}
