package cli

import (
	"flag"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/berthdev/berth/internal/up"
)

func newUpCommand() *cobra.Command {
	o := up.DefaultOptions()
	zapOpts := zap.Options{}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run all of Berth on this machine: apiserver, containerd, registry, manager, agent, ECS API and the samples",
		Long: `Run the whole of Berth on this machine, in the foreground, until Ctrl-C or
` + "`berth down`" + `: etcd and a kube-apiserver with real TLS, containerd, a loopback OCI
registry, the manager and one agent registered in the "default" cluster (plus
--hollow-instances simulated ones). It installs the CRDs and RBAC, pushes the demo
image, applies the samples, waits for the sample web Service to be steady and serves
it on --web-port. It also runs Berth's ECS API (berth api) on loopback with a
credential for --namespace, and writes an AWS configuration for it in
<state-dir>/aws: the two exports it prints make 'aws ecs ...' and boto3 call it.
And it runs the web console (berth console) on --console-port with the admin
kubeconfig: the summary prints its URL with the access token, which is also kept in
<state-dir>/console-token.

Everything lives in --state-dir: the admin kubeconfig (<state-dir>/kubeconfig),
certificates, data, and one log per component in <state-dir>/logs. Running it again
reuses the state; on exit it stops every task and component and leaves no
containers, mounts or processes behind. Needs root (containers) and the tools of
` + "`make tools`" + ` next to the berth binary or in $PATH.`,
		Example: `  sudo bin/berth up --state-dir .berth
  sudo bin/berth up --hollow-instances 20 --no-samples
  sudo bin/berth down --state-dir .berth     # from another shell`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Progress goes to Out; the logger gets only what the Kubernetes
			// clients log (retries, warnings), on stderr.
			setLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
			o.Out = cmd.OutOrStdout()
			return up.Run(cmd.Context(), o)
		},
	}
	goFlags(cmd, func(fs *flag.FlagSet) { zapOpts.BindFlags(fs) })
	f := cmd.Flags()
	f.StringVar(&o.StateDir, "state-dir", o.StateDir, "Directory for all state, logs and the admin kubeconfig.")
	f.StringVar(&o.BinDir, "bin-dir", o.BinDir, "Directory of etcd, kube-apiserver, containerd, containerd-shim-runc-v2 and registry (default: the berth binary's directory, then $PATH).")
	f.IntVar(&o.APIServerPort, "apiserver-port", o.APIServerPort, "Port of the apiserver on 127.0.0.1 (a free one when taken).")
	f.IntVar(&o.WebPort, "web-port", o.WebPort, "Port on 127.0.0.1 serving the sample web Service (a free one when taken).")
	f.IntVar(&o.ConsolePort, "console-port", o.ConsolePort, "Port on 127.0.0.1 of the web console (berth console; a free one when taken); 0 runs no console.")
	f.StringVar(&o.InstanceName, "instance-name", o.InstanceName, "Name of this machine's ContainerInstance (the samples pre-register worker-1).")
	f.IntVar(&o.HollowInstances, "hollow-instances", o.HollowInstances, "Simulated extra instances (berth hollow) to try placement on; their tasks only pretend to run.")
	f.StringVar(&o.BridgeSubnet, "bridge-subnet", o.BridgeSubnet, "IPv4 range of bridge-mode task addresses (default: the agent's).")
	f.StringVar(&o.BridgeName, "bridge-name", o.BridgeName, "Host bridge of bridge-mode tasks (default: the agent's). A bridge holds one subnet: give another bridge with another subnet.")
	f.BoolVar(&o.NoSamples, "no-samples", o.NoSamples, "Do not apply the samples.")
	f.StringVar(&o.Namespace, "namespace", o.Namespace, "Namespace of the samples.")
	return cmd
}

func newDownCommand() *cobra.Command {
	o := up.DefaultOptions()
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop the berth up running on a state directory",
		Long: `Stop the ` + "`berth up`" + ` running on --state-dir, as Ctrl-C in its terminal would, and
wait until it has stopped its tasks and components. When that ` + "`berth up`" + ` was killed
and left components running, stop them and clean up. The state stays for the next
` + "`berth up`" + `; delete the directory to start afresh.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			setLogger(zap.New())
			o.Out = cmd.OutOrStdout()
			return up.Down(cmd.Context(), o)
		},
	}
	cmd.Flags().StringVar(&o.StateDir, "state-dir", o.StateDir, "State directory of the berth up to stop.")

	return cmd
}
