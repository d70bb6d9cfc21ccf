// Package cli is the `berth` command line: one cobra command per subcommand, each a
// thin layer that parses flags and calls the package that does the work.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/berthdev/berth/agent/logdriver"
	"github.com/berthdev/berth/agent/pause"
	"github.com/berthdev/berth/internal/up/demo"
)

// Execute runs the berth command and returns the process exit code.
func Execute() int {
	// The demo image holds this binary as /demo: run the demo server there.
	if filepath.Base(os.Args[0]) == demo.Name {
		return demo.Main(os.Args[1:], os.Stdout, os.Stderr)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := NewRootCommand().ExecuteContext(ctx); err != nil {
		var exit *exitCodeError
		if errors.As(err, &exit) {
			return exit.code // the remote command's own (berth exec); it said why itself
		}
		if !errors.Is(err, context.Canceled) {
			fmt.Fprintln(os.Stderr, "Error:", err)
		}
		return 1
	}
	return 0
}

// NewRootCommand builds the berth command tree.
func NewRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "berth",
		Short: "Amazon ECS semantics on Kubernetes machinery",
		Long: `Berth runs containers with Amazon ECS semantics (clusters, container instances,
task definitions, services and tasks) as Kubernetes custom resources, reconciled by
controllers and run by node agents on containerd.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newManagerCommand(), newAgentCommand(), newVersionCommand())
	root.AddCommand(newHollowCommand(), newUpCommand(), newDownCommand(), newDemoCommand(), newConvertCommand())
	root.AddCommand(newAPICommand(), newConsoleCommand(), newExecCommand())
	root.AddCommand(newPauseCommand(), newLogDriverCommand())
	return root
}

// newPauseCommand is the process of a task's pause container, which the agent runs
// from its own binary; hidden, as people never run it.
func newPauseCommand() *cobra.Command {
	return &cobra.Command{
		Use:    pause.Command + " [STDIN-PIPE...]",
		Short:  "Hold a task's shared PID and IPC namespaces, and its containers' stdin pipes, until signalled (run by the agent)",
		Hidden: true,
		RunE:   func(cmd *cobra.Command, args []string) error { return pause.Run(cmd.Context(), args) },
	}
}

// newLogDriverCommand is the logging binary containerd's shim runs for containers
// with a terminal; hidden, as people never run it.
func newLogDriverCommand() *cobra.Command {
	return &cobra.Command{
		Use:    logdriver.Command + " LOG-PATH",
		Short:  "Append a container's terminal output to its log file (run by containerd's shim)",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE:   func(_ *cobra.Command, args []string) error { return logdriver.Run(args[0]) },
	}
}

// goFlags adapts a standard library FlagSet (used by controller-runtime's zap options)
// to a cobra command.
func goFlags(cmd *cobra.Command, register func(*flag.FlagSet)) {
	fs := flag.NewFlagSet(cmd.Name(), flag.ContinueOnError)
	register(fs)
	cmd.Flags().AddGoFlagSet(fs)
}
