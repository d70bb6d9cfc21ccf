package ecsapi

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ECS keeps a deleted service visible as INACTIVE for a while: `aws ecs wait
// services-inactive` polls DescribeServices until the status says INACTIVE, and a
// MISSING answer fails it. A deleted Service object is gone, so DeleteService leaves
// an INACTIVE record: a small ConfigMap in the service's namespace holding the
// service's last description. The server writes it with its own identity, after the
// caller's own delete was allowed (the caller owns no such object and needs no RBAC
// on ConfigMaps), and DescribeServices reads it only for the caller's namespace and
// only after the caller's own read of the Service answered NotFound. A record
// expires after inactiveServiceTTL; it is deleted when read expired, when
// CreateService reuses the name, and when another service of the namespace is
// deleted (a sweep of the expired ones).

// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;list;create;update;delete

const (
	// inactiveServiceTTL is how long a deleted service describes as INACTIVE. ECS
	// gives no figure ("for a while"); an hour covers every waiter's default.
	inactiveServiceTTL = time.Hour
	// labelInactiveService marks the records; its value is the Service's name.
	labelInactiveService = "ecs.berth.dev/inactive-service"
	inactiveServiceKey   = "service.json"
)

// inactiveService is the record of a deleted service.
type inactiveService struct {
	// UID of the deleted Service object.
	UID string `json:"uid"`
	// DeletedAt starts the record's lifetime.
	DeletedAt time.Time `json:"deletedAt"`
	// Service is its description when it was deleted, with its tags.
	Service types.Service `json:"service"`
}

// inactiveServiceName is the ConfigMap holding the record of the Service name.
func inactiveServiceName(serviceName string) string { return "ecs-inactive-service." + serviceName }

// newInactiveRecord builds the ConfigMap recording a deleted service.
func newInactiveRecord(namespace, serviceName string, rec inactiveService) (*corev1.ConfigMap, error) {
	raw, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("encoding the INACTIVE record of service %s: %w", serviceName, err)
	}
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name: inactiveServiceName(serviceName), Namespace: namespace,
			Labels: map[string]string{labelInactiveService: serviceName},
		},
		Data: map[string]string{inactiveServiceKey: string(raw)},
	}, nil
}

// readInactiveRecord decodes a record; a ConfigMap that is not one is an error.
func readInactiveRecord(cm *corev1.ConfigMap) (inactiveService, error) {
	var rec inactiveService
	raw, ok := cm.Data[inactiveServiceKey]
	if !ok {
		return rec, fmt.Errorf("ConfigMap %s/%s has no %s", cm.Namespace, cm.Name, inactiveServiceKey)
	}
	if err := json.Unmarshal([]byte(raw), &rec); err != nil {
		return rec, fmt.Errorf("decoding ConfigMap %s/%s: %w", cm.Namespace, cm.Name, err)
	}
	return rec, nil
}

// expired reports whether the record has outlived inactiveServiceTTL.
func (r inactiveService) expired(now time.Time) bool {
	return !now.Before(r.DeletedAt.Add(inactiveServiceTTL))
}

// describe is the INACTIVE service as ECS describes one: nothing runs, no deployment
// is left.
func (r inactiveService) describe(withTags bool) types.Service {
	out := r.Service
	out.Status = aws.String("INACTIVE")
	out.DesiredCount, out.RunningCount, out.PendingCount = 0, 0, 0
	out.Deployments = []types.Deployment{}
	out.Events = []types.ServiceEvent{}
	if !withTags {
		out.Tags = nil
	}
	return out
}

// writeInactiveRecord records a deleted service (replacing an older record of the
// name).
func (c *Call) writeInactiveRecord(ctx context.Context, serviceName string, rec inactiveService) error {
	cm, err := newInactiveRecord(c.Namespace, serviceName, rec)
	if err != nil {
		return err
	}
	err = c.Self.Create(ctx, cm)
	if !apierrors.IsAlreadyExists(err) {
		return err
	}
	var old corev1.ConfigMap
	if err := c.Self.Get(ctx, client.ObjectKeyFromObject(cm), &old); err != nil {
		return err
	}
	old.Labels, old.Data = cm.Labels, cm.Data
	return c.Self.Update(ctx, &old)
}

// inactiveService reads the record of a deleted service in the caller's namespace:
// nil when there is none or it expired (then it is deleted).
func (c *Call) inactiveService(ctx context.Context, serviceName string) (*inactiveService, error) {
	var cm corev1.ConfigMap
	if err := c.Self.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: inactiveServiceName(serviceName)}, &cm); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	if cm.Labels[labelInactiveService] != serviceName {
		return nil, nil // not a record: a ConfigMap of the user's that happens to have the name
	}
	rec, err := readInactiveRecord(&cm)
	if err != nil {
		c.Log.Error(err, "unreadable INACTIVE service record; it is replaced when the service is deleted again")
		return nil, nil
	}
	if rec.expired(c.Now) {
		c.deleteInactiveRecord(ctx, &cm)
		return nil, nil
	}
	return &rec, nil
}

// forgetInactiveService deletes the record of a name that is in use again.
func (c *Call) forgetInactiveService(ctx context.Context, serviceName string) {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: c.Namespace, Name: inactiveServiceName(serviceName)}}
	c.deleteInactiveRecord(ctx, cm)
}

// sweepInactiveServices deletes the expired records of the caller's namespace, so
// records of names never read again do not pile up.
func (c *Call) sweepInactiveServices(ctx context.Context) {
	var list corev1.ConfigMapList
	if err := c.Self.List(ctx, &list, client.InNamespace(c.Namespace), client.HasLabels{labelInactiveService}); err != nil {
		c.Log.Error(err, "listing INACTIVE service records")
		return
	}
	for i := range list.Items {
		if rec, err := readInactiveRecord(&list.Items[i]); err == nil && !rec.expired(c.Now) {
			continue
		}
		c.deleteInactiveRecord(ctx, &list.Items[i])
	}
}

// deleteInactiveRecord deletes a record; a failure only delays the cleanup, so it
// is logged rather than failing the call.
func (c *Call) deleteInactiveRecord(ctx context.Context, cm *corev1.ConfigMap) {
	var opts []client.DeleteOption
	if cm.UID != "" {
		// Not a record rewritten since it was read.
		opts = append(opts, client.Preconditions{UID: &cm.UID, ResourceVersion: &cm.ResourceVersion})
	}
	if err := c.Self.Delete(ctx, cm, opts...); client.IgnoreNotFound(err) != nil && !apierrors.IsConflict(err) {
		c.Log.Error(err, "deleting an INACTIVE service record", "configMap", cm.Name)
	}
}
