package agent

import (
	"debug/elf"
	"fmt"
)

// staticBinary checks that the berth binary at path can be a pause container's
// process: the pause container runs it from an empty root filesystem, without the
// host's dynamic loader and libraries, so it must be statically linked (as
// `make build` and the images build it, with CGO_ENABLED=0).
func staticBinary(path string) error {
	if path == "" {
		return fmt.Errorf("--berth-binary: empty")
	}
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("--berth-binary %s: %w", path, err)
	}
	defer func() { _ = f.Close() }()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("--berth-binary %s is dynamically linked, and a pause container runs it without the host's libraries: build berth with CGO_ENABLED=0 (make build)", path)
		}
	}
	return nil
}
