// Package kube is how every Berth process talks to the apiserver: the one scheme of
// the types Berth reads and writes, and the client configuration loaded from a
// kubeconfig with Berth's rate limits. The manager, the agent, `berth hollow`,
// `berth up` and the test harnesses all use it, so that none of them depends on
// another's package for it (the agent never imports the controllers).
package kube

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// Scheme holds the core Kubernetes types and Berth's. It is built once and only
// read afterwards, as client-go's own scheme.Scheme is.
var Scheme = newScheme()

func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	// Registration fails only for conflicting type names, a programming error.
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := ecsv1alpha1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// RESTConfig loads the client configuration from a kubeconfig path, or from the
// standard locations when the path is empty ($KUBECONFIG, in-cluster, then
// ~/.kube/config), and applies the client-side rate limits.
func RESTConfig(kubeconfig string, qps float64, burst int) (*rest.Config, error) {
	var (
		cfg *rest.Config
		err error
	)
	if kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	} else {
		cfg, err = ctrl.GetConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = float32(qps), burst
	return cfg, nil
}
