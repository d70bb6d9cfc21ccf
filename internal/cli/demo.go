package cli

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/berthdev/berth/internal/up/demo"
)

// newDemoCommand runs the demo web server (internal/up/demo) in the foreground; the
// demo image runs the same code as /demo.
func newDemoCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "demo [flags] | demo healthcheck [--url URL]",
		Short: "Run the demo web server that the demo image and the samples use",
		Long: `Run the demo web server: it answers on --listen (default :8080) with the task,
revision and container instance it runs in, serves /healthz, and can fail or exit on
demand (--exit-after, --exit-code, --fail-start, --unhealthy-after, POST /fail,
POST /exit?code=N). "demo healthcheck" is its container health check.`,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if code := demo.Main(args, cmd.OutOrStdout(), cmd.ErrOrStderr()); code != 0 {
				os.Exit(code)
			}
			return nil
		},
	}
}
