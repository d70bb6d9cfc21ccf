package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/berthdev/berth/internal/ecsimport"
)

func newConvertCommand() *cobra.Command {
	var namespace string
	cmd := &cobra.Command{
		Use:   "convert [FILE]",
		Short: "Print the TaskDefinition manifest of an ECS task-definition JSON file",
		Long: `convert reads an Amazon ECS task definition as JSON (the input of
aws ecs register-task-definition --cli-input-json, or the output of
aws ecs describe-task-definition) from FILE or standard input, and prints the Berth
TaskDefinition manifest to commit for GitOps or pipe to kubectl apply -f -.

Notes go to standard error: fields dropped because ECS sets them on registration,
the Kubernetes Secrets that secret ARNs map to, and fields kept without effect here
(IAM roles, Fargate settings). Fields that cannot be converted are listed, each by
its path, and nothing is printed.`,
		Example: `  berth convert task-definition.json | kubectl apply -f -
  aws ecs describe-task-definition --task-definition web | berth convert -n prod`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := cmd.InOrStdin()
			if len(args) == 1 && args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer func() { _ = f.Close() }()
				in = f
			}
			data, err := io.ReadAll(in)
			if err != nil {
				return err
			}
			res, err := ecsimport.Convert(data, namespace)
			if err != nil {
				return fmt.Errorf("cannot convert:\n%w", err)
			}
			for _, n := range res.Notes {
				if _, err := fmt.Fprintln(cmd.ErrOrStderr(), "note:", n); err != nil {
					return err
				}
			}
			out, err := manifest(res)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "Namespace to put in the manifest (none: kubectl's current one).")
	return cmd
}

// manifest renders the TaskDefinition without status or server-set metadata.
func manifest(res *ecsimport.Result) ([]byte, error) {
	td := res.TaskDefinition
	meta := map[string]any{"name": td.Name}
	if td.Namespace != "" {
		meta["namespace"] = td.Namespace
	}
	spec, err := json.Marshal(td.Spec)
	if err != nil {
		return nil, err
	}
	var specMap map[string]any
	if err := json.Unmarshal(spec, &specMap); err != nil {
		return nil, err
	}
	return yaml.Marshal(map[string]any{"apiVersion": td.APIVersion, "kind": td.Kind, "metadata": meta, "spec": specMap})
}
