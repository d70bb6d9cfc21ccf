//go:build tools

// Package tools pins controller-gen for Berth's toolchain (see hack/tools.sh).
package tools

import (
	_ "sigs.k8s.io/controller-tools/cmd/controller-gen"
)
