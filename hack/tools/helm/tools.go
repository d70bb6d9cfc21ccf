//go:build tools

// Package tools pins helm for Berth's toolchain (see hack/tools.sh).
package tools

import (
	_ "helm.sh/helm/v3/cmd/helm"
)
