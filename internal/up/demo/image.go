package demo

import (
	"debug/elf"
	"fmt"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berthdev/berth/internal/up/ociimage"
)

// The demo image's repository and tag, as the samples name it (on the registry
// host the samples use).
const (
	Repository = "berth/demo"
	Tag        = "1.0"
	// BinaryPath is the demo program inside the image: the berth binary itself,
	// which runs this package when started under the name "demo".
	BinaryPath = "/" + Name
	// User runs the demo: nobody. It needs no privilege.
	User = "65534:65534"
)

// ShellPath is where the image keeps a shell, when it has one: Debian's static
// busybox (package busybox-static, which `make up` installs), so that `berth exec`
// and the console's terminal have something to run in the demo's tasks. Busybox runs
// its applets (ls, cat, ps, ...) itself when started as sh, so /bin/sh alone is a
// whole toolbox.
const ShellPath = "/bin/sh"

// HostBusybox is where Debian's busybox-static installs busybox.
const HostBusybox = "/bin/busybox"

// Image builds the demo image around binary, a static Linux executable of berth,
// and shell, a static shell for ShellPath (nil for none).
func Image(binary, shell []byte) (v1.Image, error) {
	files := map[string][]byte{BinaryPath: binary}
	if shell != nil {
		files[ShellPath] = shell
	}
	return ociimage.BuildImage(files, []string{BinaryPath},
		ociimage.WithUser(User),
		ociimage.WithLabels("org.opencontainers.image.title", "berth demo",
			"org.opencontainers.image.description", "Says which Berth task, revision and instance it runs in"))
}

// Shell returns the host's static busybox for ShellPath, or nil and the reason the
// demo image goes without a shell.
func Shell() ([]byte, string) {
	if err := checkStatic(HostBusybox); err != nil {
		return nil, fmt.Sprintf("no static busybox at %s (apt-get install busybox-static): %v", HostBusybox, err)
	}
	b, err := os.ReadFile(HostBusybox)
	if err != nil {
		return nil, err.Error()
	}
	return b, ""
}

// StaticExecutable returns the bytes of the running berth binary, which must be
// static (no ELF interpreter): the image has nothing else in it. `make build`
// builds berth with CGO_ENABLED=0, which is static.
func StaticExecutable() ([]byte, error) {
	path, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding the berth binary: %w", err)
	}
	if err := checkStatic(path); err != nil {
		return nil, err
	}
	return os.ReadFile(path)
}

func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	defer func() { _ = f.Close() }()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked, so it cannot run alone in the demo image: build it with CGO_ENABLED=0 (`make build` does)", path)
		}
	}
	return nil
}
