package cli

import (
	"flag"

	"github.com/spf13/cobra"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/berthdev/berth/internal/manager"
	"github.com/berthdev/berth/internal/version"
)

func newManagerCommand() *cobra.Command {
	opts := manager.DefaultOptions()
	zapOpts := zap.Options{}
	cmd := &cobra.Command{
		Use:   "manager",
		Short: "Run the Berth control plane (controllers for every ECS kind)",
		Long: `Run the Berth control plane against a Kubernetes apiserver: the controllers that
register task definition revisions, place tasks, converge services and roll out new
revisions. Run it in a cluster (in-cluster configuration) or anywhere with --kubeconfig.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := zap.New(zap.UseFlagOptions(&zapOpts))
			setLogger(log)
			log.Info("berth manager", "version", version.Version, "commit", version.GitCommit)
			return manager.Run(ctrl.LoggerInto(cmd.Context(), log), opts)
		},
	}
	goFlags(cmd, func(fs *flag.FlagSet) {
		opts.BindFlags(fs)
		zapOpts.BindFlags(fs)
	})
	return cmd
}
