//go:build tools

// Package tools pins etcd for Berth's toolchain (see hack/tools.sh).
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
)
