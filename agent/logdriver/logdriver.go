// Package logdriver is `berth log-driver`, the logging binary containerd's shim runs
// for a container with a terminal. The shim copies a terminal's output only to
// FIFOs (read by the client, so lost while the agent is down) or to a logging
// binary that it starts as its own child; this is that binary. It appends what the
// container writes to the container's log file, the file a container without a
// terminal has the shim append to, so logs, rotation and the agent's logs endpoint
// work the same for both.
//
// containerd's protocol for logging binaries: file descriptor 3 carries stdout,
// 4 stderr, and 5 is closed once the binary is ready; the binary exits when both
// pipes are closed (the container's process ended).
package logdriver

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// Command is the berth subcommand that runs Run; the shim calls
// `berth log-driver <log path>` (an empty path discards the output).
const Command = "log-driver"

// Run copies the container's stdout and stderr, from the descriptors the shim
// passes, to the file at logPath, appending as the shim does (the agent's rotation
// truncates the file in place and relies on it).
func Run(logPath string) error {
	stdout, stderr, ready := os.NewFile(3, "stdout"), os.NewFile(4, "stderr"), os.NewFile(5, "ready")
	if stdout == nil || stderr == nil || ready == nil {
		return errors.New("log-driver is run by containerd's shim, with the container's output on file descriptors 3 and 4")
	}
	out := io.Discard
	if logPath != "" {
		f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			_ = ready.Close()
			return fmt.Errorf("opening the log file: %w", err)
		}
		defer func() { _ = f.Close() }()
		out = f
	}
	if err := ready.Close(); err != nil {
		return fmt.Errorf("signalling the shim: %w", err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, in := range []*os.File{stdout, stderr} {
		wg.Go(func() {
			// Each read is one write with O_APPEND, so the two streams interleave by
			// chunk, as the shim's own copy does.
			_, errs[i] = io.Copy(out, in)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
