package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/util/exec"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berthdev/berth/internal/kube"
	"github.com/berthdev/berth/internal/streaming"
)

// exitCodeError makes berth exit with the remote command's exit code, as kubectl
// exec does, without printing anything more.
type exitCodeError struct{ code int }

func (e *exitCodeError) Error() string {
	return fmt.Sprintf("command terminated with exit code %d", e.code)
}

// newExecCommand is `berth exec`: ECS Exec through the task's agent.
func newExecCommand() *cobra.Command {
	var (
		kubeconfig, namespace, container string
		stdin, tty                       bool
	)
	cmd := &cobra.Command{
		Use:   "exec TASK [-c CONTAINER] [-i] [-t] -- COMMAND [ARGS...]",
		Short: "Run a command in a container of a task (ECS Exec)",
		Long: `Run a command in a running container of a task, through the agent of its container
instance, as your own Kubernetes identity. The task must have been run with
enableExecuteCommand, and you need the exec verb on tasks.ecs.berth.dev in its
namespace (see docs/exec.md). Every exec is recorded as an Event on the task.
berth exits with the command's exit code.`,
		Example: `  berth exec web-7f9c -- cat /etc/hostname
  berth exec web-7f9c -c app -it -- sh`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() != 1 {
				return errors.New("usage: berth exec TASK [flags] -- COMMAND [ARGS...]")
			}
			ctx := cmd.Context()
			cfg, ns, err := execConfig(kubeconfig, namespace)
			if err != nil {
				return err
			}
			c, err := client.New(cfg, client.Options{Scheme: kube.Scheme})
			if err != nil {
				return err
			}
			o := streaming.ExecOptions{
				Namespace: ns, Task: args[0], Container: container, Command: args[1:], TTY: tty,
				Stdout: cmd.OutOrStdout(), Stderr: cmd.ErrOrStderr(),
			}
			if stdin {
				o.Stdin = cmd.InOrStdin()
			}
			return runExec(ctx, streaming.NewClient(cfg, c), o)
		},
	}
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "Path to a kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).")
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "Namespace of the task (default: the kubeconfig context's).")
	cmd.Flags().StringVarP(&container, "container", "c", "", "Container to run in; may be left out when the task has one container.")
	cmd.Flags().BoolVarP(&stdin, "stdin", "i", false, "Pass standard input to the command.")
	cmd.Flags().BoolVarP(&tty, "tty", "t", false, "Give the command a terminal (standard input must be one).")
	return cmd
}

// execConfig loads the kubeconfig and the namespace its context names.
func execConfig(kubeconfig, namespace string) (*rest.Config, string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("loading kubeconfig: %w", err)
	}
	if namespace == "" {
		if namespace, _, err = cc.Namespace(); err != nil {
			return nil, "", fmt.Errorf("namespace of the kubeconfig context: %w", err)
		}
	}
	return cfg, namespace, nil
}

// runExec runs the exec, with the local terminal raw when a terminal is asked.
func runExec(ctx context.Context, c *streaming.Client, o streaming.ExecOptions) error {
	if o.TTY {
		in, ok := o.Stdin.(*os.File)
		if !ok || !term.IsTerminal(int(in.Fd())) {
			return errors.New("-t needs -i and standard input to be a terminal")
		}
		state, err := term.MakeRaw(int(in.Fd()))
		if err != nil {
			return fmt.Errorf("making the terminal raw: %w", err)
		}
		defer func() { _ = term.Restore(int(in.Fd()), state) }()
		sizes := newTerminalSizes(ctx, in)
		defer sizes.stop()
		o.Resize = sizes
	}
	err := c.Exec(ctx, o)
	var ee exec.ExitError
	if errors.As(err, &ee) {
		return &exitCodeError{code: ee.ExitStatus()}
	}
	return err
}

// terminalSizes is the local terminal's size, sent at start and on every SIGWINCH.
type terminalSizes struct {
	sizes chan remotecommand.TerminalSize
	stop  func()
}

func newTerminalSizes(ctx context.Context, f *os.File) *terminalSizes {
	ctx, cancel := context.WithCancel(ctx)
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	t := &terminalSizes{sizes: make(chan remotecommand.TerminalSize, 1), stop: func() { signal.Stop(winch); cancel() }}
	send := func() {
		if w, h, err := term.GetSize(int(f.Fd())); err == nil {
			select {
			case t.sizes <- remotecommand.TerminalSize{Width: uint16(w), Height: uint16(h)}:
			default: // the queue holds the latest size not yet sent
			}
		}
	}
	send()
	go func() {
		for {
			select {
			case <-ctx.Done():
				close(t.sizes)
				return
			case <-winch:
				send()
			}
		}
	}()
	return t
}

// Next is remotecommand.TerminalSizeQueue's: nil once the exec is over.
func (t *terminalSizes) Next() *remotecommand.TerminalSize {
	sz, ok := <-t.sizes
	if !ok {
		return nil
	}
	return &sz
}
