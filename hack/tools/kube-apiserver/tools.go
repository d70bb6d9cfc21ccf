//go:build tools

// Package tools pins kube-apiserver for Berth's integration tests and `berth up`.
// k8s.io/kubernetes is not meant to be consumed as a module: its go.mod requires
// every staging repository at v0.0.0 and replaces it with a local path, so this
// module points each staging repository at its published v0.37.x release instead.
package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
