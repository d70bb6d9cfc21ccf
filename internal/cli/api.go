package cli

import (
	"encoding/json"
	"flag"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/berthdev/berth/ecsapi"
	"github.com/berthdev/berth/ecsapi/auth"
	"github.com/berthdev/berth/internal/kube"
	"github.com/berthdev/berth/internal/version"
)

// DefaultCredentialsNamespace holds the ECS API's credential Secrets unless
// --credentials-namespace says otherwise (the chart uses its release namespace).
const DefaultCredentialsNamespace = "berth-system"

func newAPICommand() *cobra.Command {
	o := ecsapi.RunOptions{
		Config: ecsapi.Config{Region: "us-east-1", AccountID: "000000000000"},
		QPS:    200, Burst: 400, Listen: ":8080", Auth: ecsapi.AuthSigV4,
		CredentialsNamespace: DefaultCredentialsNamespace,
	}
	zapOpts := zap.Options{}
	cmd := &cobra.Command{
		Use:   "api",
		Short: "Serve Amazon ECS's API (for the aws CLI and the AWS SDKs) over Berth's resources",
		Long: `Serve Amazon ECS's API: the aws CLI, boto3 and the AWS SDKs call it as they call ECS.
Every call is authenticated with AWS Signature Version 4 against a credential (a
Secret made by 'berth api credentials create') that names a namespace and a
Kubernetes user; the call acts as that user (impersonation), so RBAC decides as for
kubectl. The server keeps no state: run as many replicas as you like.
docs/ecs-api.md lists the actions and fields served.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := zap.New(zap.UseFlagOptions(&zapOpts))
			setLogger(log)
			log.Info("berth api", "version", version.Version, "commit", version.GitCommit)
			return ecsapi.Run(ctrl.LoggerInto(cmd.Context(), log), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Listen, "listen", o.Listen, "Address to serve the API on.")
	f.StringVar(&o.Region, "region", o.Region, "Region in ARNs; the only signing region accepted.")
	f.StringVar(&o.AccountID, "account-id", o.AccountID, "12-digit account ID in ARNs.")
	f.StringVar(&o.Auth, "auth", o.Auth, "sigv4 (verify signatures against credential Secrets) or none (every call acts as the server, in --namespace; local experiments only).")
	f.StringVar(&o.CredentialsNamespace, "credentials-namespace", o.CredentialsNamespace, "Namespace of the credential Secrets.")
	f.StringVar(&o.Namespace, "namespace", o.Namespace, "With --auth=none: the namespace every call acts in.")
	f.StringVar(&o.TLSCertFile, "tls-cert-file", o.TLSCertFile, "Serve TLS with this certificate (PEM).")
	f.StringVar(&o.TLSKeyFile, "tls-private-key-file", o.TLSKeyFile, "The certificate's private key (PEM).")
	f.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "Path to a kubeconfig file. Without it: $KUBECONFIG, the in-cluster configuration, then ~/.kube/config.")
	f.Float64Var(&o.QPS, "kube-api-qps", o.QPS, "Sustained requests per second to the apiserver.")
	f.IntVar(&o.Burst, "kube-api-burst", o.Burst, "Request burst to the apiserver.")
	goFlags(cmd, func(fs *flag.FlagSet) { zapOpts.BindFlags(fs) })
	cmd.AddCommand(newAPICredentialsCommand())
	return cmd
}

func newAPICredentialsCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "credentials", Short: "Manage the ECS API's credentials (Secrets)"}
	var (
		namespace, user, credNS, kubeconfig, format string
		groups                                      []string
	)
	create := &cobra.Command{
		Use:   "create --namespace NS --user NAME",
		Short: "Make an access key for a namespace and a Kubernetes user; prints it once",
		Long: `Make an ECS API access key: calls signed with it act in --namespace as the
Kubernetes user --user (and --group), whose RBAC decides what they may do. The secret
is printed once; it is kept only in the Secret ecs-api-<key id> of
--credentials-namespace. Delete that Secret to revoke the key.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if namespace == "" || user == "" {
				return fmt.Errorf("--namespace and --user are required")
			}
			cred, err := auth.NewCredential(namespace, user, groups)
			if err != nil {
				return err
			}
			cfg, err := kube.RESTConfig(kubeconfig, 20, 40)
			if err != nil {
				return err
			}
			c, err := client.New(cfg, client.Options{Scheme: kube.Scheme})
			if err != nil {
				return err
			}
			if err := c.Create(cmd.Context(), cred.Secret(credNS)); err != nil {
				return fmt.Errorf("storing the credential in namespace %s: %w", credNS, err)
			}
			return printCredential(cmd, cred, format)
		},
	}
	create.Flags().StringVar(&namespace, "namespace", "", "Namespace the key's calls act in (its account).")
	create.Flags().StringVar(&user, "user", "", "Kubernetes user the key's calls act as.")
	create.Flags().StringSliceVar(&groups, "group", nil, "Kubernetes groups of that user (repeat or comma-separate).")
	create.Flags().StringVar(&credNS, "credentials-namespace", DefaultCredentialsNamespace, "Namespace of the credential Secrets (berth api's --credentials-namespace).")
	create.Flags().StringVar(&kubeconfig, "kubeconfig", "", "Path to a kubeconfig file.")
	create.Flags().StringVar(&format, "output", "env", "env (export lines), credentials (an AWS credentials file profile) or json.")
	cmd.AddCommand(create)
	return cmd
}

func printCredential(cmd *cobra.Command, c *auth.Credential, format string) error {
	var out string
	switch strings.ToLower(format) {
	case "env":
		out = fmt.Sprintf("export AWS_ACCESS_KEY_ID=%s\nexport AWS_SECRET_ACCESS_KEY=%s\n", c.AccessKeyID, c.SecretAccessKey)
	case "credentials":
		out = fmt.Sprintf("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n", c.AccessKeyID, c.SecretAccessKey)
	case "json":
		raw, err := json.Marshal(map[string]string{"AccessKeyId": c.AccessKeyID, "SecretAccessKey": c.SecretAccessKey, "Namespace": c.Namespace, "User": c.User})
		if err != nil {
			return err
		}
		out = string(raw) + "\n"
	default:
		return fmt.Errorf("--output must be env, credentials or json, got %q", format)
	}
	_, err := fmt.Fprint(cmd.OutOrStdout(), out)
	return err
}
