//go:build tools

// Package tools pins registry for Berth's toolchain (see hack/tools.sh).
package tools

import (
	_ "github.com/distribution/distribution/v3/cmd/registry"
)
