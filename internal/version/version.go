// Package version holds the build's version, stamped by the Makefile with -ldflags.
package version

import (
	"fmt"
	"runtime"
)

// Set at build time with -ldflags "-X github.com/berthdev/berth/internal/version.Version=...".
var (
	// Version is the release version, or a git describe of the build.
	Version = "v0.0.0-dev"
	// GitCommit is the commit the binary was built from.
	GitCommit = "unknown"
)

// String describes the build in one line.
func String() string {
	return fmt.Sprintf("berth %s (commit %s, %s, %s/%s)", Version, GitCommit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
