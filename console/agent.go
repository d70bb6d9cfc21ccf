package console

import (
	"context"
	"io"

	"k8s.io/client-go/tools/remotecommand"
)

// ExecRequest is one command to run in a container of a task. Its fields are those
// of internal/streaming's ExecOptions, so an adapter is a field-by-field copy.
type ExecRequest struct {
	Namespace, Task, Container string
	Command                    []string
	TTY                        bool
	Stdin                      io.Reader
	Stdout, Stderr             io.Writer
	// Resize carries terminal size changes while TTY is set; nil otherwise.
	Resize remotecommand.TerminalSizeQueue
}

// Agent reaches the agent of a task's instance: exec and recent container logs. The
// console never talks to agents itself; `berth console` injects the streaming client
// (internal/streaming), which authenticates with the caller's identity so the
// agent's own authorization (RBAC's exec verb on tasks) applies as for `berth exec`.
//
// Exec returns an error satisfying k8s.io/client-go/util/exec.ExitError when the
// command ran and exited non-zero, and one satisfying apierrors.IsForbidden when RBAC
// refused it.
type Agent interface {
	Exec(ctx context.Context, r ExecRequest) error
	Logs(ctx context.Context, namespace, task, container string, tail int) ([]byte, error)
}
