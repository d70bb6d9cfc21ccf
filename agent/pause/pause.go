// Package pause is `berth pause`, the process of a task's pause container: the
// holder of the PID and IPC namespaces that the task's containers join with pidMode
// and ipcMode task, as the ECS agent's ~internal~ecs~pause container holds them for
// Docker. It runs the agent's own (static) binary from a root filesystem the agent
// prepares, so tasks need no pause image from a registry.
//
// In a shared PID namespace the pause process is PID 1: the processes that other
// containers leave behind are reparented to it, so it reaps them, as an init must.
// When it exits the kernel kills every process of the namespace, which is why the
// agent stops it after the task's containers.
package pause

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// Command is the berth subcommand that runs Run.
const Command = "pause"

// Run sleeps until ctx ends (the command's SIGTERM or SIGINT), reaping the children
// that are reparented to it meanwhile. It holds the named pipes at pipes open for
// writing all along: they are the stdin of the task's interactive containers
// without a terminal, which ends only when no writer is left (Docker's daemon holds
// them for ECS; the pause process outlives the agent's restarts as the daemon does).
func Run(ctx context.Context, pipes []string) error {
	for _, p := range pipes {
		// O_RDWR never blocks on a named pipe, whether its reader is there yet or not.
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("holding stdin %s: %w", p, err)
		}
		defer func() { _ = f.Close() }()
	}
	children := make(chan os.Signal, 1)
	signal.Notify(children, syscall.SIGCHLD)
	defer signal.Stop(children)
	for {
		select {
		case <-ctx.Done():
			reap()
			return nil
		case <-children:
			reap()
		}
	}
}

// reap collects every child that has exited, without blocking.
func reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
	}
}
