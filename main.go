// Command berth runs Amazon ECS semantics on Kubernetes machinery: `berth manager`
// runs the control plane's controllers, and further subcommands run the node agent
// and local tooling. See `berth --help`.
package main

import (
	"os"

	"github.com/berthdev/berth/internal/cli"
)

func main() {
	os.Exit(cli.Execute())
}
