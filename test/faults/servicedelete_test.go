package faults_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	ctrtest "github.com/berthdev/berth/test/testenv/containerd"
	"github.com/berthdev/berth/test/testobj"
)

// TestServiceDeletedWhileAgentOffline: a Service deleted while the agent of its
// instance is stopped. The manager releases the Service once the instance is
// disconnected, and the garbage collector deletes its tasks (as kube-controller-
// manager does; the test plays it, envtest has none). When the agent returns it
// stops and removes the containers of the tasks that no longer exist: no container,
// shim, snapshot or log directory is left.
func TestServiceDeletedWhileAgentOffline(t *testing.T) {
	sc := newScenario(t, "Service deleted while its agent is offline")
	s := newStack(t)
	startManager(t, 5*time.Second)
	agent := s.startAgent(t)
	s.taskDefinition(t, "web", nil)
	create(t, testobj.Service(s.ns, "web", "web", 3).Cluster(s.cluster).Obj())
	steady(t, s.ns, "web", 3, 90*time.Second)
	before := s.pids(t)
	if len(before) != 3 {
		t.Fatalf("%d running containers, want 3", len(before))
	}

	agent.stop(t)
	var svc ecsv1alpha1.Service
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: s.ns, Name: "web"}, &svc); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Delete(context.Background(), &svc); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the Service released once its instance is disconnected", func() error {
		err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: s.ns, Name: "web"}, &ecsv1alpha1.Service{})
		switch {
		case apierrors.IsNotFound(err):
			return nil
		case err != nil:
			return err
		}
		return fmt.Errorf("still there")
	})
	collectGarbage(t, s.ns, svc.UID)
	if after := s.pids(t); !samePIDs(before, after) {
		t.Fatalf("containers changed while no agent ran: %v, then %v", before, after)
	}

	agent.start(t)
	gone := waitFor(t, 60*time.Second, "every container removed", func() error {
		if inv := s.inventory(t); len(inv) > 0 {
			return fmt.Errorf("%d containers left", len(inv))
		}
		return nil
	})
	sc.recovered(gone, "agent restart to no container left")
	for _, pid := range before {
		if alive(pid) {
			t.Errorf("process %d still runs", pid)
		}
	}
	if orphans := s.orphanSnapshots(t, nil); len(orphans) > 0 {
		t.Errorf("snapshots left: %v", orphans)
	}
	if shims, _ := ctrtest.ShimPIDs(s.ctr.Address); len(shims) > 0 {
		t.Errorf("%d shims left", len(shims))
	}
	logs, _ := os.ReadDir(filepath.Join(s.stateDir("node-"+s.ns), "logs"))
	if len(logs) > 0 {
		t.Errorf("log directories left: %v", logs)
	}
	if n := len(listTasks(t, s.ns)); n != 0 {
		t.Errorf("%d tasks left", n)
	}
}

// collectGarbage deletes the tasks whose controller is the deleted object uid, as
// Kubernetes' garbage collector does in a cluster with kube-controller-manager.
func collectGarbage(t *testing.T, ns string, uid types.UID) {
	t.Helper()
	for _, task := range listTasks(t, ns) {
		if ref := metav1.GetControllerOf(&task); ref == nil || ref.UID != uid {
			continue
		}
		if err := env.Client.Delete(context.Background(), &task); client.IgnoreNotFound(err) != nil {
			t.Fatal(err)
		}
	}
}
