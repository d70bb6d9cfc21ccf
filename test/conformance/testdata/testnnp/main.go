// Command testnnp stands in for the ECS suite's amazon/testnnp image (misc/testnnp
// in aws/amazon-ecs-agent): installed setuid root and run as user 1000, it exits 1
// when the setuid bit made it root and 42 when it did not, as with
// no-new-privileges. Built static by the conformance suite (testdata is not part of
// the module's packages).
package main

import "os"

func main() {
	if os.Geteuid() == 0 {
		os.Exit(1)
	}
	os.Exit(42)
}
