// Package controllers wires Berth's controllers into a manager. Each kind has its own
// package below this one; shared machinery (placement, revisions, indexes) lives in
// internal/.
package controllers

import (
	"context"
	"fmt"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/berthdev/berth/controllers/taskdefinition"
	"github.com/berthdev/berth/internal/index"
)

// Options tune the controllers.
type Options struct{}

// Setup registers the cache indexes and every controller with mgr.
func Setup(ctx context.Context, mgr ctrl.Manager, _ Options) error {
	if err := index.Setup(ctx, mgr.GetFieldIndexer()); err != nil {
		return fmt.Errorf("registering cache indexes: %w", err)
	}
	if err := (&taskdefinition.Reconciler{
		Client:   mgr.GetClient(),
		Recorder: mgr.GetEventRecorder("berth-taskdefinition"),
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the taskdefinition controller: %w", err)
	}
	return nil
}
