package ecsapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/ecsapi/wire"
	"github.com/berthdev/berth/internal/ecsimport"
	"github.com/berthdev/berth/internal/revision"
	"github.com/berthdev/berth/internal/validation"
)

// Task definitions are the namespace's TaskDefinitions, one per family (named
// ecsimport.KubeName of it, the ECS name kept in the ecs-name annotation); their
// revisions are the ControllerRevisions the TaskDefinition controller registers.
// RegisterTaskDefinition writes the spec `berth convert` would make of the same JSON
// and waits for the controller to register it; DeregisterTaskDefinition and
// DeleteTaskDefinitions write internal/revision's deregistration records, which the
// controller honours. An ECS revision is ACTIVE until deregistered, whatever Berth's
// own status (superseded and unused) says.

func taskDefinitionOps() map[string]handler {
	return map[string]handler{
		// Not op(): the raw body goes through ecsimport as well.
		"RegisterTaskDefinition":     registerTaskDefinition,
		"DescribeTaskDefinition":     op(describeTaskDefinition),
		"ListTaskDefinitions":        op(listTaskDefinitions),
		"ListTaskDefinitionFamilies": op(listTaskDefinitionFamilies),
		"DeregisterTaskDefinition":   op(deregisterTaskDefinition),
		"DeleteTaskDefinitions":      op(deleteTaskDefinitions),
	}
}

const (
	// registrationTimeout bounds the wait for the controller to register a revision.
	registrationTimeout = 30 * time.Second
	// maxFamilyName: a family's name labels its revisions (ecs.berth.dev/family), and
	// label values have at most 63 characters.
	maxFamilyName = 63
	// maxDeleteTaskDefinitions is DeleteTaskDefinitions' limit per call, as in ECS.
	maxDeleteTaskDefinitions = 10
)

// errRevisionMissing: a reference names no revision; each action answers it in its
// own words.
var errRevisionMissing = errors.New("no such task definition revision")

func registerTaskDefinition(ctx context.Context, c *Call, body []byte) (any, error) {
	in := &ecs.RegisterTaskDefinitionInput{}
	if err := wire.ECS.Unmarshal(body, in); err != nil {
		return nil, err
	}
	td, err := c.convertDefinition(body, in)
	if err != nil {
		return nil, err
	}
	want, err := inputShape(in)
	if err != nil {
		return nil, err
	}
	written, err := c.storeDefinition(ctx, td.Name, aws.ToString(in.Family), &td.Spec, want)
	if err != nil {
		return nil, err
	}
	family, n, err := c.awaitRevision(ctx, written)
	if err != nil {
		return nil, err
	}
	v, err := c.loadRevision(ctx, family, n)
	if err != nil {
		return nil, err
	}
	out, err := c.describe(v)
	if err != nil {
		return nil, err
	}
	return &ecs.RegisterTaskDefinitionOutput{TaskDefinition: out, Tags: specTags(v.spec)}, nil
}

// convertDefinition applies `berth convert`'s rules to the request, and the checks
// the schema cannot make, so that a refusal names the request's member before
// anything is written.
func (c *Call) convertDefinition(body []byte, in *ecs.RegisterTaskDefinitionInput) (*ecsv1alpha1.TaskDefinition, error) {
	if aws.ToBool(in.EnableFaultInjection) {
		return nil, wire.InvalidParameter("enableFaultInjection", "ECS's fault-injection endpoints do not exist here")
	}
	res, err := ecsimport.Convert(body, c.Namespace)
	var ce *ecsimport.Error
	switch {
	case errors.As(err, &ce):
		return nil, wire.Errorf(wire.InvalidParameterException, "%s", strings.ReplaceAll(ce.Error(), "\n", "; "))
	case err != nil:
		return nil, wire.Errorf(wire.InvalidParameterException, "%s", err)
	}
	td := res.TaskDefinition
	if len(td.Name) > maxFamilyName {
		return nil, wire.InvalidParameter("family", "%q makes the name %q of %d characters; Berth labels revisions with it, so at most %d",
			aws.ToString(in.Family), td.Name, len(td.Name), maxFamilyName)
	}
	if errs := validation.TaskDefinitionSpec(nil, &td.Spec); len(errs) > 0 {
		return nil, wire.Errorf(wire.InvalidParameterException, "%s", errs.ToAggregate().Error())
	}
	var scratch map[string]string
	if err := setTags(&scratch, in.Tags, nil); err != nil {
		return nil, err
	}
	return td, nil
}

// written is a TaskDefinition as RegisterTaskDefinition wrote it.
type written struct {
	td *ecsv1alpha1.TaskDefinition
	// prevLatest is the latest revision before the write.
	prevLatest int32
}

// storeDefinition creates or updates the family's TaskDefinition with spec, and the
// records describing it as sent.
func (c *Call) storeDefinition(ctx context.Context, name, family string, spec *ecsv1alpha1.TaskDefinitionSpec, want map[string]any) (*written, error) {
	var out *written
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var err error
		out, err = c.storeOnce(ctx, name, family, spec, want)
		return err
	})
	return out, err
}

func (c *Call) storeOnce(ctx context.Context, name, family string, spec *ecsv1alpha1.TaskDefinitionSpec, want map[string]any) (*written, error) {
	td := &ecsv1alpha1.TaskDefinition{}
	err := c.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: name}, td)
	create := apierrors.IsNotFound(err)
	switch {
	case create:
		td = &ecsv1alpha1.TaskDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: c.Namespace, Name: name}}
		setECSName(&td.Annotations, name, family)
	case err != nil:
		return nil, err
	case !sameECSName(td.Annotations, td.Name, family):
		return nil, wire.InvalidParameter("family", "%q maps to the name %q of the existing family %q", family, name, ecsName(td.Annotations, td.Name))
	case td.DeletionTimestamp != nil:
		return nil, wire.Errorf(wire.ClientException, "The task definition family %s is being deleted; retry once it is gone", family)
	}
	limit := td.Spec.RevisionHistoryLimit // Berth's, not part of ECS's definition
	td.Spec = *spec.DeepCopy()
	td.Spec.RevisionHistoryLimit = limit
	// A dry run gives the spec as the apiserver stores it (its defaults applied), which
	// the records describe and the controller hashes.
	trial := td.DeepCopy()
	if err := c.writeDefinition(ctx, trial, create, true); err != nil {
		return nil, err
	}
	if err := c.recordRegistration(td, &trial.Spec, want); err != nil {
		return nil, err
	}
	prev := td.Status.LatestRevision
	if err := c.writeDefinition(ctx, td, create, false); err != nil {
		return nil, err
	}
	return &written{td: td, prevLatest: prev}, nil
}

func (c *Call) writeDefinition(ctx context.Context, td *ecsv1alpha1.TaskDefinition, create, dryRun bool) error {
	if !create {
		if dryRun {
			return c.Client.Update(ctx, td, client.DryRunAll)
		}
		return c.Client.Update(ctx, td)
	}
	var err error
	if dryRun {
		err = c.Client.Create(ctx, td, client.DryRunAll)
	} else {
		err = c.Client.Create(ctx, td)
	}
	if apierrors.IsAlreadyExists(err) {
		// Another registration created the family meanwhile: update it instead.
		return apierrors.NewConflict(ecsv1alpha1.GroupVersion.WithResource("taskdefinitions").GroupResource(), td.Name, err)
	}
	return err
}

// recordRegistration keeps, for the content hash of stored (the spec as stored),
// what describes it as sent and who sent it. When stored is the latest revision's
// content the controller registers nothing new: ECS would make a new ACTIVE revision,
// Berth answers that one, ACTIVE again if it was deregistered.
func (c *Call) recordRegistration(td *ecsv1alpha1.TaskDefinition, stored *ecsv1alpha1.TaskDefinitionSpec, want map[string]any) error {
	got, err := specShape(stored, c.ARN)
	if err != nil {
		return err
	}
	ecsDefaults(got)
	hash := revision.Hash(stored)
	reg := diffShapes(want, got)
	regs := readRegistrations(td.Annotations)
	reg.RegisteredBy = c.ARN.User(c.Identity.User)
	latest := latestHash(td) == hash
	if prev, ok := regs[hash]; ok && latest && prev.RegisteredBy != "" {
		reg.RegisteredBy = prev.RegisteredBy // the same revision: its registrant stays
	}
	regs[hash] = reg
	keep := map[string]bool{hash: true}
	for _, r := range td.Status.Revisions {
		keep[r.Hash] = true
	}
	if err := writeRegistrations(&td.Annotations, regs, keep); err != nil {
		return err
	}
	if !latest {
		return nil
	}
	deregs, err := revision.ReadDeregistrations(td)
	if err != nil {
		return err
	}
	delete(deregs, td.Status.LatestRevision)
	deregs.Forget(td)
	return deregs.Write(td)
}

// latestHash is the content hash of td's latest revision ("" before the first).
func latestHash(td *ecsv1alpha1.TaskDefinition) string {
	for _, r := range td.Status.Revisions {
		if r.Revision == td.Status.LatestRevision {
			return r.Hash
		}
	}
	return ""
}

// awaitRevision waits, with the call's context and at most registrationTimeout, for
// the controller to register the written spec, and returns the family as read then
// and the revision's number.
func (c *Call) awaitRevision(ctx context.Context, w *written) (*ecsv1alpha1.TaskDefinition, int32, error) {
	hash, gen := revision.Hash(&w.td.Spec), w.td.Generation
	var td *ecsv1alpha1.TaskDefinition
	var n int32
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, registrationTimeout, true, func(ctx context.Context) (bool, error) {
		td = &ecsv1alpha1.TaskDefinition{}
		if err := c.Client.Get(ctx, client.ObjectKeyFromObject(w.td), td); err != nil {
			return false, err
		}
		var done bool
		var err error
		n, done, err = registeredAs(td, gen, hash, w.prevLatest)
		return done, err
	})
	if err != nil && (wait.Interrupted(err) || errors.Is(err, context.DeadlineExceeded)) {
		return nil, 0, wire.Errorf(wire.ServerException, "the task definition controller did not register %s within %s (%s); is the Berth manager running?",
			w.td.Name, registrationTimeout, revisionedMessage(td))
	}
	return td, n, err
}

// registeredAs says which revision holds the content hash written at generation gen,
// once the controller has seen that generation: the latest when it holds it (the
// spec was new, or the latest's content again), else one registered after prevLatest
// (another registration of the family followed it).
func registeredAs(td *ecsv1alpha1.TaskDefinition, gen int64, hash string, prevLatest int32) (int32, bool, error) {
	if c := meta.FindStatusCondition(td.Status.Conditions, ecsv1alpha1.ConditionAccepted); c != nil &&
		c.Status == metav1.ConditionFalse && c.ObservedGeneration == gen {
		return 0, false, wire.Errorf(wire.InvalidParameterException, "%s", c.Message)
	}
	if td.Status.ObservedGeneration < gen {
		return 0, false, nil
	}
	if latestHash(td) == hash {
		return td.Status.LatestRevision, true, nil
	}
	for _, r := range td.Status.Revisions {
		if r.Hash == hash && r.Revision > prevLatest {
			return r.Revision, true, nil
		}
	}
	return 0, false, wire.Errorf(wire.ClientException,
		"The task definition family %s was changed by another registration before this one was registered; retry", td.Name)
}

func revisionedMessage(td *ecsv1alpha1.TaskDefinition) string {
	if td == nil {
		return "not read"
	}
	if c := meta.FindStatusCondition(td.Status.Conditions, ecsv1alpha1.TaskDefinitionConditionRevisioned); c != nil && c.Status == metav1.ConditionFalse {
		return c.Message
	}
	return fmt.Sprintf("observed generation %d of %d", td.Status.ObservedGeneration, td.Generation)
}

// revisionView is one stored revision and its family.
type revisionView struct {
	family       *ecsv1alpha1.TaskDefinition
	n            int32
	spec         *ecsv1alpha1.TaskDefinitionSpec
	hash         string
	registeredAt metav1.Time
	// annotations of the ControllerRevision: its tags once TagResource edited them.
	annotations map[string]string
}

// parseRevisionRef reads a reference (family, family:revision or an ARN); pinned
// requires a revision, as deregistering and deleting do.
func (c *Call) parseRevisionRef(member, ref string, pinned bool) (string, int32, error) {
	family, n, err := c.ARN.TaskDefinitionRef(member, ref)
	if err != nil {
		return "", 0, err
	}
	if pinned && n == 0 {
		return "", 0, wire.InvalidParameter(member, "%q names no revision: give family:revision or the task definition's ARN", ref)
	}
	return family, n, nil
}

// getFamily reads a family's TaskDefinition, or errRevisionMissing.
func (c *Call) getFamily(ctx context.Context, family string) (*ecsv1alpha1.TaskDefinition, error) {
	name := ecsimport.FamilyName(family)
	if name == "" {
		return nil, errRevisionMissing
	}
	td := &ecsv1alpha1.TaskDefinition{}
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: name}, td); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, errRevisionMissing
		}
		return nil, err
	}
	if !sameECSName(td.Annotations, td.Name, family) {
		return nil, errRevisionMissing
	}
	return td, nil
}

// runnableRevision is the revision a new task or deployment runs.
type runnableRevision struct {
	// Name is the TaskDefinition's object name, Family its ECS name.
	Name, Family string
	Revision     int32
	Spec         *ecsv1alpha1.TaskDefinitionSpec
}

// runnable resolves the taskDefinition member of RunTask, StartTask, CreateService
// and UpdateService at call time, as ECS does: `family` is its latest ACTIVE
// revision, and the caller records family:N so that a later registration never
// changes what it runs. A deregistered revision starts nothing new.
func (c *Call) runnable(ctx context.Context, member, ref string) (*runnableRevision, error) {
	if ref == "" {
		return nil, wire.InvalidParameter(member, "is required")
	}
	family, n, err := c.parseRevisionRef(member, ref, false)
	if err != nil {
		return nil, err
	}
	v, err := c.findRevision(ctx, family, n)
	if errors.Is(err, errRevisionMissing) {
		return nil, wire.Errorf(wire.ClientException, "TaskDefinition not found.")
	}
	if err != nil {
		return nil, err
	}
	deregs, err := revision.ReadDeregistrations(v.family)
	if err != nil {
		return nil, err
	}
	if deregs.Lifecycle(v.n) != revision.LifecycleActive {
		return nil, wire.Errorf(wire.ClientException, "TaskDefinition is inactive")
	}
	return &runnableRevision{Name: v.family.Name, Family: ecsName(v.family.Annotations, v.family.Name), Revision: v.n, Spec: v.spec}, nil
}

// findRevision reads revision n of a family, or its latest ACTIVE revision for n 0
// (what a bare family means in ECS).
func (c *Call) findRevision(ctx context.Context, family string, n int32) (*revisionView, error) {
	td, err := c.getFamily(ctx, family)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		if n, err = latestActive(td); err != nil {
			return nil, err
		}
	}
	return c.loadRevision(ctx, td, n)
}

func latestActive(td *ecsv1alpha1.TaskDefinition) (int32, error) {
	deregs, err := revision.ReadDeregistrations(td)
	if err != nil {
		return 0, err
	}
	var n int32
	for _, r := range td.Status.Revisions {
		if r.Revision > n && deregs.Lifecycle(r.Revision) == revision.LifecycleActive {
			n = r.Revision
		}
	}
	if n == 0 {
		return 0, errRevisionMissing
	}
	return n, nil
}

// loadRevision reads revision n's ControllerRevision.
func (c *Call) loadRevision(ctx context.Context, td *ecsv1alpha1.TaskDefinition, n int32) (*revisionView, error) {
	cr := &appsv1.ControllerRevision{}
	key := client.ObjectKey{Namespace: td.Namespace, Name: ecsv1alpha1.RevisionName(td.Name, n)}
	if err := c.Client.Get(ctx, key, cr); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, errRevisionMissing
		}
		return nil, err
	}
	if !metav1.IsControlledBy(cr, td) {
		return nil, errRevisionMissing // left by an earlier family of the same name
	}
	spec := &ecsv1alpha1.TaskDefinitionSpec{}
	if err := json.Unmarshal(cr.Data.Raw, spec); err != nil {
		return nil, fmt.Errorf("decoding ControllerRevision %s: %w", key, err)
	}
	return &revisionView{family: td, n: n, spec: spec, hash: cr.Annotations[ecsv1alpha1.AnnotationHash], registeredAt: cr.CreationTimestamp,
		annotations: cr.Annotations}, nil
}

// describe answers a revision as ECS's TaskDefinition.
func (c *Call) describe(v *revisionView) (*types.TaskDefinition, error) {
	var reg *registration
	if r, ok := readRegistrations(v.family.Annotations)[v.hash]; ok {
		reg = &r
	}
	out, err := describeShape(v.spec, reg, c.ARN)
	if err != nil {
		return nil, err
	}
	family := ecsName(v.family.Annotations, v.family.Name)
	out.Family = aws.String(family)
	out.Revision = v.n
	out.TaskDefinitionArn = aws.String(c.ARN.TaskDefinition(family, v.n))
	out.RegisteredAt = aws.Time(v.registeredAt.Time)
	if reg != nil && reg.RegisteredBy != "" {
		out.RegisteredBy = aws.String(reg.RegisteredBy)
	}
	deregs, err := revision.ReadDeregistrations(v.family)
	if err != nil {
		return nil, err
	}
	out.Status = types.TaskDefinitionStatus(deregs.Lifecycle(v.n))
	if d, ok := deregs[v.n]; ok {
		out.DeregisteredAt = aws.Time(d.DeregisteredAt.Time)
		if d.DeleteRequestedAt != nil {
			out.DeleteRequestedAt = aws.Time(d.DeleteRequestedAt.Time)
		}
	}
	return out, nil
}

// specTags are a revision's ECS tags.
func specTags(spec *ecsv1alpha1.TaskDefinitionSpec) []types.Tag {
	out := make([]types.Tag, len(spec.Tags))
	for i, t := range spec.Tags {
		out[i] = types.Tag{Key: aws.String(t.Key), Value: aws.String(t.Value)}
	}
	return out
}

func describeTaskDefinition(ctx context.Context, c *Call, in *ecs.DescribeTaskDefinitionInput) (*ecs.DescribeTaskDefinitionOutput, error) {
	family, n, err := c.parseRevisionRef("taskDefinition", aws.ToString(in.TaskDefinition), false)
	if err != nil {
		return nil, err
	}
	v, err := c.findRevision(ctx, family, n)
	if errors.Is(err, errRevisionMissing) {
		return nil, wire.Errorf(wire.ClientException, "Unable to describe task definition.")
	}
	if err != nil {
		return nil, err
	}
	td, err := c.describe(v)
	if err != nil {
		return nil, err
	}
	out := &ecs.DescribeTaskDefinitionOutput{TaskDefinition: td}
	if includes(in.Include, types.TaskDefinitionFieldTags) {
		// The same tags ListTagsForResource answers for the revision's ARN.
		out.Tags = revisionTags(v.annotations, v.spec.Tags)
	}
	return out, nil
}

// familyView is a family as the List actions read it.
type familyView struct {
	name    string // ECS's
	td      *ecsv1alpha1.TaskDefinition
	deregis revision.Deregistrations
}

func (c *Call) listFamilies(ctx context.Context) ([]familyView, error) {
	var list ecsv1alpha1.TaskDefinitionList
	if err := c.Client.List(ctx, &list, client.InNamespace(c.Namespace)); err != nil {
		return nil, err
	}
	out := make([]familyView, 0, len(list.Items))
	for i := range list.Items {
		td := &list.Items[i]
		d, err := revision.ReadDeregistrations(td)
		if err != nil {
			return nil, err
		}
		out = append(out, familyView{name: ecsName(td.Annotations, td.Name), td: td, deregis: d})
	}
	return out, nil
}

func listTaskDefinitions(ctx context.Context, c *Call, in *ecs.ListTaskDefinitionsInput) (*ecs.ListTaskDefinitionsOutput, error) {
	status := in.Status
	if status == "" {
		status = types.TaskDefinitionStatusActive
	}
	if !includes(types.TaskDefinitionStatus("").Values(), status) {
		return nil, wire.InvalidParameter("status", "must be ACTIVE, INACTIVE or DELETE_IN_PROGRESS, not %q", status)
	}
	desc, err := descending(in.Sort)
	if err != nil {
		return nil, err
	}
	families, err := c.listFamilies(ctx)
	if err != nil {
		return nil, err
	}
	arns := map[string]string{}
	for _, f := range families {
		// ECS's familyPrefix here is a whole family name.
		if p := aws.ToString(in.FamilyPrefix); p != "" && f.name != p {
			continue
		}
		for _, r := range f.td.Status.Revisions {
			if string(f.deregis.Lifecycle(r.Revision)) == string(status) {
				arns[revisionKey(f.name, r.Revision, desc)] = c.ARN.TaskDefinition(f.name, r.Revision)
			}
		}
	}
	keys := make([]string, 0, len(arns))
	for k := range arns {
		keys = append(keys, k)
	}
	keys, next, err := page(keys, in.NextToken, in.MaxResults, defaultPage, 100)
	if err != nil {
		return nil, err
	}
	out := &ecs.ListTaskDefinitionsOutput{TaskDefinitionArns: make([]string, len(keys)), NextToken: next}
	for i, k := range keys {
		out.TaskDefinitionArns[i] = arns[k]
	}
	return out, nil
}

func descending(order types.SortOrder) (bool, error) {
	switch order {
	case "", types.SortOrderAsc:
		return false, nil
	case types.SortOrderDesc:
		return true, nil
	}
	return false, wire.InvalidParameter("sort", "must be ASC or DESC, not %q", order)
}

// revisionKey orders revisions as ECS lists them, by family then number (or the
// reverse), under page()'s plain string order: a family never holds the NUL byte and
// the number is zero-padded; every byte inverted reverses the order.
func revisionKey(family string, n int32, desc bool) string {
	k := []byte(family + "\x00" + fmt.Sprintf("%010d", n))
	if desc {
		for i := range k {
			k[i] = 0xff - k[i]
		}
	}
	return string(k)
}

func listTaskDefinitionFamilies(ctx context.Context, c *Call, in *ecs.ListTaskDefinitionFamiliesInput) (*ecs.ListTaskDefinitionFamiliesOutput, error) {
	status := in.Status
	if status == "" {
		status = types.TaskDefinitionFamilyStatusAll
	}
	if !includes(types.TaskDefinitionFamilyStatus("").Values(), status) {
		return nil, wire.InvalidParameter("status", "must be ACTIVE, INACTIVE or ALL, not %q", status)
	}
	families, err := c.listFamilies(ctx)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, f := range families {
		// A family without a registered revision is not one ECS would know.
		if len(f.td.Status.Revisions) == 0 || !strings.HasPrefix(f.name, aws.ToString(in.FamilyPrefix)) {
			continue
		}
		if familyMatches(f, status) {
			names = append(names, f.name)
		}
	}
	names, next, err := page(names, in.NextToken, in.MaxResults, defaultPage, 100)
	if err != nil {
		return nil, err
	}
	if names == nil {
		names = []string{}
	}
	return &ecs.ListTaskDefinitionFamiliesOutput{Families: names, NextToken: next}, nil
}

// familyMatches: an ACTIVE family has an ACTIVE revision, an INACTIVE one none.
func familyMatches(f familyView, status types.TaskDefinitionFamilyStatus) bool {
	active := false
	for _, r := range f.td.Status.Revisions {
		active = active || f.deregis.Lifecycle(r.Revision) == revision.LifecycleActive
	}
	switch status {
	case types.TaskDefinitionFamilyStatusActive:
		return active
	case types.TaskDefinitionFamilyStatusInactive:
		return !active
	}
	return true
}

func deregisterTaskDefinition(ctx context.Context, c *Call, in *ecs.DeregisterTaskDefinitionInput) (*ecs.DeregisterTaskDefinitionOutput, error) {
	family, n, err := c.parseRevisionRef("taskDefinition", aws.ToString(in.TaskDefinition), true)
	if err != nil {
		return nil, err
	}
	var v *revisionView
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var err error
		v, err = c.deregisterOnce(ctx, family, n)
		return err
	})
	if errors.Is(err, errRevisionMissing) {
		return nil, wire.Errorf(wire.ClientException, "Unable to deregister task definition.")
	}
	if err != nil {
		return nil, err
	}
	td, err := c.describe(v)
	if err != nil {
		return nil, err
	}
	return &ecs.DeregisterTaskDefinitionOutput{TaskDefinition: td}, nil
}

// deregisterOnce records the deregistration of a revision; deregistering one already
// INACTIVE changes nothing, as in ECS.
func (c *Call) deregisterOnce(ctx context.Context, family string, n int32) (*revisionView, error) {
	v, err := c.findRevision(ctx, family, n)
	if err != nil {
		return nil, err
	}
	deregs, err := revision.ReadDeregistrations(v.family)
	if err != nil {
		return nil, err
	}
	switch deregs.Lifecycle(n) {
	case revision.LifecycleDeleteInProgress:
		return nil, wire.Errorf(wire.ClientException, "The task definition could not be deregistered because it is in the process of being deleted.")
	case revision.LifecycleInactive:
		return v, nil
	}
	deregs.Forget(v.family)
	deregs[n] = revision.Deregistration{Revision: n, DeregisteredAt: metav1.NewTime(c.Now)}
	if err := deregs.Write(v.family); err != nil {
		return nil, err
	}
	return v, c.Client.Update(ctx, v.family)
}

// ECS's failure reasons of DeleteTaskDefinitions.
const (
	deleteInvalidReason = "The specified task definition identifier is invalid. Specify a valid name or ARN and try again."
	deleteMissingReason = "The specified task definition does not exist. Specify a valid account, family, revision and try again."
	deleteActiveReason  = "The specified task definition is still in ACTIVE status. Please deregister the target and try again."
)

func deleteTaskDefinitions(ctx context.Context, c *Call, in *ecs.DeleteTaskDefinitionsInput) (*ecs.DeleteTaskDefinitionsOutput, error) {
	if n := len(in.TaskDefinitions); n == 0 || n > maxDeleteTaskDefinitions {
		return nil, wire.InvalidParameter("taskDefinitions", "must name 1 to %d task definitions, not %d", maxDeleteTaskDefinitions, n)
	}
	out := &ecs.DeleteTaskDefinitionsOutput{TaskDefinitions: []types.TaskDefinition{}, Failures: []types.Failure{}}
	for _, ref := range in.TaskDefinitions {
		arn, v, reason, err := c.deleteOne(ctx, ref)
		if err != nil {
			return nil, err
		}
		if reason != "" {
			out.Failures = append(out.Failures, types.Failure{Arn: aws.String(arn), Reason: aws.String(reason)})
			continue
		}
		td, err := c.describe(v)
		if err != nil {
			return nil, err
		}
		out.TaskDefinitions = append(out.TaskDefinitions, *td)
	}
	return out, nil
}

// deleteOne asks for the deletion of one INACTIVE revision (the controller deletes it
// once nothing uses it), or gives ECS's reason for not doing so and the ARN it
// concerns.
func (c *Call) deleteOne(ctx context.Context, ref string) (string, *revisionView, string, error) {
	family, n, err := c.parseRevisionRef("taskDefinitions", ref, true)
	if err != nil {
		return ref, nil, deleteInvalidReason, nil
	}
	arn := c.ARN.TaskDefinition(family, n)
	var v *revisionView
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var err error
		v, err = c.findRevision(ctx, family, n)
		if err != nil {
			return err
		}
		deregs, err := revision.ReadDeregistrations(v.family)
		if err != nil {
			return err
		}
		rec, ok := deregs[n]
		if !ok || rec.DeleteRequestedAt != nil {
			return nil // ACTIVE (refused below) or already asked for
		}
		now := metav1.NewTime(c.Now)
		rec.DeleteRequestedAt = &now
		deregs.Forget(v.family)
		deregs[n] = rec
		if err := deregs.Write(v.family); err != nil {
			return err
		}
		return c.Client.Update(ctx, v.family)
	})
	switch {
	case errors.Is(err, errRevisionMissing):
		return arn, nil, deleteMissingReason, nil
	case err != nil:
		return arn, nil, "", err
	}
	if d, _ := revision.ReadDeregistrations(v.family); d.Lifecycle(n) == revision.LifecycleActive {
		return arn, nil, deleteActiveReason, nil
	}
	return arn, v, "", nil
}
