package cli

import (
	"flag"

	"github.com/spf13/cobra"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/berthdev/berth/agent"
	"github.com/berthdev/berth/internal/version"
)

func newAgentCommand() *cobra.Command {
	opts := agent.DefaultOptions()
	zapOpts := zap.Options{}
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the node agent: register this machine and run its tasks with containerd",
		Long: `Run the Berth node agent on this machine: it registers the machine as a
ContainerInstance of --cluster, renews its heartbeat, runs the tasks the control plane
binds to it with containerd, and reports their status. Containers keep running while
the agent restarts; a restarted agent adopts them.`,
		Example: `  berth agent --kubeconfig /etc/berth/kubeconfig --cluster default \
    --containerd-address /run/containerd/containerd.sock --state-dir /var/lib/berth`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := opts.Validate(); err != nil {
				return err
			}
			log := zap.New(zap.UseFlagOptions(&zapOpts))
			setLogger(log)
			log.Info("berth agent", "version", version.Version, "commit", version.GitCommit)
			return agent.Run(ctrl.LoggerInto(cmd.Context(), log), opts)
		},
	}
	goFlags(cmd, func(fs *flag.FlagSet) {
		opts.BindFlags(fs)
		zapOpts.BindFlags(fs)
	})
	return cmd
}
