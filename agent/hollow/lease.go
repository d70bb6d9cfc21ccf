package hollow

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// syncLease creates or renews the instance's Lease and returns when to renew next.
// Renewals are spread over the interval: the first comes after a random part of it,
// later ones every interval with a little jitter, so thousands of instances do not
// renew in step.
func (a *Agent) syncLease(ctx context.Context, name string) (time.Duration, error) {
	a.mu.Lock()
	inst := a.instances[name]
	if inst == nil || inst.disconnected || !inst.registered {
		a.mu.Unlock()
		return 0, nil // Reconnect and registration queue the Lease again
	}
	a.mu.Unlock()

	inst.apiMu.Lock()
	defer inst.apiMu.Unlock()
	a.mu.Lock()
	if inst.gone || inst.disconnected {
		a.mu.Unlock()
		return 0, nil
	}
	lease, uid := inst.lease, inst.uid
	a.mu.Unlock()

	now := metav1.NewMicroTime(time.Now())
	first := lease == nil
	var err error
	if first {
		lease, err = a.createLease(ctx, name, uid, now)
	} else {
		lease, err = a.renewLease(ctx, lease, now)
	}
	if err != nil {
		return 0, err
	}
	a.mu.Lock()
	inst.lease = lease
	a.mu.Unlock()

	interval := a.cfg.LeaseInterval
	if first {
		return time.Duration(rand.Int64N(int64(interval))) + time.Millisecond, nil
	}
	// 0.95-1.05 of the interval: keeps the spread without drifting far from it.
	return time.Duration(float64(interval) * (0.95 + 0.1*rand.Float64())), nil
}

// createLease creates the Lease, owned by the ContainerInstance so that deleting the
// instance collects it; an existing Lease (a restarted agent) is renewed instead.
func (a *Agent) createLease(ctx context.Context, name string, owner types.UID, now metav1.MicroTime) (*coordinationv1.Lease, error) {
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ecsv1alpha1.NodeLeaseNamespace,
			Name:      name,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: ecsv1alpha1.GroupVersion.String(),
				Kind:       "ContainerInstance",
				Name:       name,
				UID:        owner,
			}},
		},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity:       ptr.To(name),
			LeaseDurationSeconds: ptr.To[int32](LeaseDurationSeconds),
			AcquireTime:          &now,
			RenewTime:            &now,
		},
	}
	err := a.client.Create(ctx, lease, client.FieldOwner(ecsv1alpha1.FieldManagerAgent))
	if err == nil {
		return lease, nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("creating Lease of %s: %w", name, err)
	}
	if err := a.client.Get(ctx, client.ObjectKeyFromObject(lease), lease); err != nil {
		return nil, fmt.Errorf("reading Lease of %s: %w", name, err)
	}
	return a.renewLease(ctx, lease, now)
}

// renewLease moves renewTime forward with an Update of the last Lease the agent saw,
// as a kubelet does: one request, and a conflict means someone else wrote it.
func (a *Agent) renewLease(ctx context.Context, lease *coordinationv1.Lease, now metav1.MicroTime) (*coordinationv1.Lease, error) {
	name := lease.Name
	update := func(l *coordinationv1.Lease) error {
		l.Spec.HolderIdentity = ptr.To(name)
		l.Spec.LeaseDurationSeconds = ptr.To[int32](LeaseDurationSeconds)
		l.Spec.RenewTime = &now
		if l.Spec.AcquireTime == nil {
			l.Spec.AcquireTime = &now
		}
		return a.client.Update(ctx, l, client.FieldOwner(ecsv1alpha1.FieldManagerAgent))
	}
	l := lease.DeepCopy()
	err := update(l)
	switch {
	case err == nil:
		return l, nil
	case apierrors.IsNotFound(err):
		a.mu.Lock()
		uid := types.UID("")
		if inst := a.instances[name]; inst != nil {
			uid = inst.uid
		}
		a.mu.Unlock()
		return a.createLease(ctx, name, uid, now)
	case apierrors.IsConflict(err):
		l = &coordinationv1.Lease{}
		if err := a.client.Get(ctx, client.ObjectKeyFromObject(lease), l); err != nil {
			return nil, fmt.Errorf("reading Lease of %s: %w", name, err)
		}
		if err := update(l); err != nil {
			return nil, fmt.Errorf("renewing Lease of %s: %w", name, err)
		}
		return l, nil
	default:
		return nil, fmt.Errorf("renewing Lease of %s: %w", name, err)
	}
}
