package runtime

import (
	"context"
	"io"
)

// Execer is implemented by runtimes that run interactive commands in a container
// with the caller's streams attached (ECS Exec, `berth exec`). It is apart from
// Runtime because only a real runtime serves it: the in-memory runtime of hollow
// agents does not, and those agents publish no streaming endpoint.
type Execer interface {
	// ExecStream runs o.Cmd in the running container id, as its process's user,
	// environment and working directory, with o's streams attached, until the
	// command exits (its exit code is returned, 128+N when signal N killed it) or
	// ctx ends (the command is killed). A container whose process is not running is
	// an error wrapping ErrNotRunning.
	ExecStream(ctx context.Context, id string, o StreamOptions) (exitCode int, err error)
}

// StreamOptions are the command and streams of Execer.ExecStream.
type StreamOptions struct {
	// Cmd is the command and its arguments; it must not be empty.
	Cmd []string
	// TTY gives the command a terminal: Stdout receives what it writes to it and
	// Stderr is unused.
	TTY bool
	// Stdin, Stdout and Stderr are optional; a nil Stdin gives the command none.
	// With TTY, the end of Stdin reaches the command as a typed end-of-file
	// (Ctrl-D), not as a hang-up.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Resize delivers the terminal's size whenever it changes (TTY only); optional.
	Resize <-chan TerminalSize
}

// TerminalSize is a terminal's width and height in characters.
type TerminalSize struct {
	Width, Height uint16
}
