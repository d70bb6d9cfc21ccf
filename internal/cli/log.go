package cli

import (
	"github.com/go-logr/logr"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
)

// setLogger makes log the process's one logger: controller-runtime's, and klog's,
// which the Kubernetes libraries log through (client-go's retries, the agent's
// delegated authentication), so their lines are structured like Berth's own.
func setLogger(log logr.Logger) {
	ctrl.SetLogger(log)
	klog.SetLogger(log)
}
