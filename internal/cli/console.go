package cli

import (
	"context"
	"flag"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/berthdev/berth/console"
	"github.com/berthdev/berth/internal/kube"
	"github.com/berthdev/berth/internal/streaming"
)

// consoleAgent reaches the agents for the console (exec and container logs)
// through internal/streaming with the caller's identity, so each agent authorizes
// the console's user as it does `berth exec`. The console reads Tasks and
// ContainerInstances from its own cache.
func consoleAgent(cfg *rest.Config, s *console.Server) (console.Agent, error) {
	return streamingAgent{streaming.NewClient(cfg, s.Reader())}, nil
}

// streamingAgent adapts the streaming client to console.Agent: the request types
// have the same fields, so one converts to the other.
type streamingAgent struct{ c *streaming.Client }

func (a streamingAgent) Exec(ctx context.Context, r console.ExecRequest) error {
	return a.c.Exec(ctx, streaming.ExecOptions(r))
}

func (a streamingAgent) Logs(ctx context.Context, namespace, task, container string, tail int) ([]byte, error) {
	return a.c.Logs(ctx, namespace, task, container, tail)
}

func newConsoleCommand() *cobra.Command {
	o := console.RunOptions{Address: console.DefaultAddress}
	var kubeconfig string
	zapOpts := zap.Options{}
	cmd := &cobra.Command{
		Use:   "console",
		Short: "Serve a web console for Berth on loopback, acting with your kubeconfig's identity",
		Long: `Serve a web console: clusters and instances, services with their deployments,
events and utilization, tasks with their containers and recent log lines, task
definition revisions side by side, the usual actions (scale, force a new
deployment, stop a task, drain an instance) and a terminal into a task's containers
(ECS Exec).

Every read and write is made with your kubeconfig's identity, so RBAC decides what
the console shows and does. The console listens on loopback only and prints a URL
with a one-time access token; open that URL in your browser. docs/console.md
describes the pages and the security model.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Refuse a bad address before reading any credentials.
			if err := console.ValidateAddress(o.Address); err != nil {
				return err
			}
			log := zap.New(zap.UseFlagOptions(&zapOpts))
			setLogger(log)
			cfg, err := kube.RESTConfig(kubeconfig, 50, 100)
			if err != nil {
				return err
			}
			o.Config, o.Out, o.Log, o.NewAgent = cfg, cmd.OutOrStdout(), log, consoleAgent
			return console.Run(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&kubeconfig, "kubeconfig", "", "Path to a kubeconfig file: the identity the console acts as. Without it: $KUBECONFIG, the in-cluster configuration, then ~/.kube/config.")
	f.StringVar(&o.Address, "address", o.Address, "host:port to listen on; the host must be a loopback address (127.0.0.1, ::1 or localhost).")
	f.StringVar(&o.TokenFile, "token-file", "", "Also write the access token to this file (mode 0600).")
	goFlags(cmd, func(fs *flag.FlagSet) { zapOpts.BindFlags(fs) })
	return cmd
}
