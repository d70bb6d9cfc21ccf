package engine

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/types"

	"github.com/berthdev/berth/agent/runtime"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// reasonNetworkFailed begins the stoppedReason of a task whose network could not be
// set up.
const reasonNetworkFailed = "ResourceInitializationError: failed to set up the task's network: "

// networkUp sets up the task's network (bridge or awsvpc) and points its containers
// at it. A failure stops the task with TaskFailedToStart. An awsvpc task publishes
// nothing on the instance: its ports are reached at its own address.
func (w *worker) networkUp(ctx context.Context) {
	var mappings []ecsv1alpha1.PortMapping
	if isBridge(w.in.spec) {
		mappings = portMappings(w.in.spec)
	}
	path, ip, bindings, err := w.e.cfg.Network.Setup(ctx, w.uid, mappings)
	if ctx.Err() != nil {
		return
	}
	var byName map[string][]ecsv1alpha1.NetworkBinding
	if err == nil && isBridge(w.in.spec) {
		byName, err = bindingsByContainer(w.in.spec, bindings)
	}
	var temporary interface{ Temporary() bool }
	if errors.As(err, &temporary) && temporary.Temporary() {
		// A static host port still held by a stopping task: wait for it, PENDING,
		// as ECS does, rather than fail the task.
		w.log.Info("waiting for the task's network", logReason, err.Error())
		w.backOff()
		return
	}
	if err != nil {
		w.log.Info("network setup failed", logReason, err.Error())
		w.invalid = reasonNetworkFailed + err.Error()
		return
	}
	w.in.netns, w.in.ip, w.bindings, w.net = path, ip, byName, netUp
	if w.in.spec.NetworkMode == ecsv1alpha1.NetworkModeAWSVPC {
		w.ip = ip
	}
	w.log.V(1).Info("task network set up", logNetNS, path)
}

// networkDown tears the task's bridge network down once its containers stopped. A
// failure is logged and does not hold the task in STOPPING: Cleanup and Forget tear
// the network down again.
func (w *worker) networkDown(ctx context.Context) {
	err := w.e.cfg.Network.Teardown(ctx, w.uid)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		w.log.Error(err, "tearing down the task's network; retried when the task is cleaned up")
	}
	w.net = netReleased
}

// networkInterfaces are the addresses of a running container of an awsvpc task: the
// task's own, as ECS reports its elastic network interface.
func (w *worker) networkInterfaces() []ecsv1alpha1.NetworkInterface {
	if w.ip == "" {
		return nil
	}
	return []ecsv1alpha1.NetworkInterface{{PrivateIPv4Address: w.ip}}
}

// networkBindings are the ports the running container name publishes.
func (w *worker) networkBindings(name string) []ecsv1alpha1.NetworkBinding {
	if w.net != netNone {
		return append([]ecsv1alpha1.NetworkBinding(nil), w.bindings[name]...)
	}
	if def := findDef(w.in.spec, name); def != nil {
		return networkBindings(w.in.spec, def)
	}
	return nil
}

// seedBindings takes the bindings the API showed for a bridge task learnt after a
// restart, until its network is found again, so that finding it reports nothing new.
func (w *worker) seedBindings(st *ecsv1alpha1.TaskStatus) {
	if w.net == netNone {
		return
	}
	w.bindings = map[string][]ecsv1alpha1.NetworkBinding{}
	for _, cs := range st.Containers {
		if len(cs.NetworkBindings) > 0 {
			w.bindings[cs.Name] = append([]ecsv1alpha1.NetworkBinding(nil), cs.NetworkBindings...)
		}
		if len(cs.NetworkInterfaces) > 0 {
			w.ip = cs.NetworkInterfaces[0].PrivateIPv4Address
		}
	}
}

// recoverNetworks adds to groups (Recover's containers by task) the tasks that have
// a network, so a task whose containers are gone but whose network is not is still
// found: claimed by its Update, or forgotten (and torn down) by the agent.
func (e *Engine) recoverNetworks(ctx context.Context, groups map[types.UID][]runtime.ContainerInfo) error {
	if e.cfg.Network == nil {
		return nil
	}
	uids, err := e.cfg.Network.Recover(ctx)
	if err != nil {
		return fmt.Errorf("recovering task networks: %w", err)
	}
	for _, uid := range uids {
		if _, ok := groups[uid]; !ok {
			groups[uid] = nil
		}
	}
	return nil
}
