package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berthdev/berth/agent/engine"
	"github.com/berthdev/berth/agent/runtime"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/policy"
)

// The agent's side of the container policy (internal/policy, docs/container-policy.md).
// The manager refuses to place a task whose revision exceeds its cluster's level, but
// a task can reach the agent without the manager's check: created already bound to
// the instance (StartTask), placed from a cache that had not seen the policy
// tightened yet, or written by someone who can write Tasks but should not run
// privileged containers. So before it hands a task to the engine, which is before
// anything of it is created, the agent checks the revision against its own
// cluster's level, read from its cache; a violation stops the task with
// TaskFailedToStart and a stoppedReason listing the fields, and nothing is created.
// At level restricted it also checks, before the task's first container is created
// (every image is pulled by then), the image user of each container that sets no
// user: an image that runs as root, or as a name that cannot be verified, fails the
// create, and so the task, the same way.
//
// The check is made once per task, before its first start: a task the agent already
// admitted, or found containers of when it started (a previous run admitted it),
// keeps running when the policy is tightened, as Pod Security admission never evicts
// a running Pod. The level is the agent's cluster's, not the one a task names: a task
// bound to this instance runs on this cluster's machine.

// policyGuard remembers which tasks passed the check and which image users are left
// to check.
type policyGuard struct {
	mu sync.Mutex
	// admitted are the tasks this agent let start, or found containers of.
	admitted map[types.UID]bool
	// images are the image checks left, per task admitted at level restricted.
	images map[types.UID]*imageCheck
}

// imageCheck is what a task's first create must verify: the image users of its
// containers that set no user.
type imageCheck struct {
	revision, cluster string
	containers        []imageOf
	// refused is the verdict once made, so every create of the task fails alike.
	refused error
}

type imageOf struct {
	index int
	image string
}

func newPolicyGuard() *policyGuard {
	return &policyGuard{admitted: map[types.UID]bool{}, images: map[types.UID]*imageCheck{}}
}

// admitRecovered admits the tasks whose containers the runtime already has: a
// previous run of the agent started them.
func (g *policyGuard) admitRecovered(uids []types.UID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, uid := range uids {
		g.admitted[uid] = true
	}
}

func (g *policyGuard) isAdmitted(uid types.UID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.admitted[uid]
}

func (g *policyGuard) forget(uid types.UID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.admitted, uid)
	delete(g.images, uid)
}

// check admits task uid, which runs revision spec in cluster at level, or returns
// why it may not start. A task admitted before is not checked again.
func (g *policyGuard) check(uid types.UID, rev, cluster string, level ecsv1alpha1.ContainerPolicyLevel, spec *ecsv1alpha1.TaskDefinitionSpec) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.admitted[uid] {
		return nil
	}
	if errs := policy.Check(level, spec); len(errs) > 0 {
		return &startFailure{reason: ecsv1alpha1.ReasonContainerPolicyViolation + ": " + policy.Message(rev, cluster, level, errs)}
	}
	g.admitted[uid] = true
	var check imageCheck
	for i, c := range spec.ContainerDefinitions {
		// An image user of "" is root, which only restricted refuses (for a container
		// that sets no user): this finds the containers whose image user matters.
		if policy.CheckImageUser(level, i, c.User, "") != nil {
			check.containers = append(check.containers, imageOf{index: i, image: c.Image})
		}
	}
	if len(check.containers) > 0 {
		check.revision, check.cluster = rev, cluster
		g.images[uid] = &check
	}
	return nil
}

// checkImages makes the image checks left for task uid, once; it returns why the
// task's containers may not be created.
func (g *policyGuard) checkImages(ctx context.Context, uid types.UID, users runtime.Runtime) error {
	g.mu.Lock()
	check := g.images[uid]
	g.mu.Unlock()
	if check == nil {
		return nil
	}
	if check.refused != nil {
		return check.refused
	}
	var errs field.ErrorList
	for _, c := range check.containers {
		user, err := users.ImageUser(ctx, c.image)
		if err != nil {
			return fmt.Errorf("reading the user of image %s for the container policy: %w", c.image, err)
		}
		if e := policy.CheckImageUser(ecsv1alpha1.ContainerPolicyRestricted, c.index, "", user); e != nil {
			errs = append(errs, e)
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(errs) == 0 {
		delete(g.images, uid)
		return nil
	}
	check.refused = errors.New(ecsv1alpha1.ReasonContainerPolicyViolation + ": " +
		policy.Message(check.revision, check.cluster, ecsv1alpha1.ContainerPolicyRestricted, errs))
	return check.refused
}

// policyRuntime is the engine's runtime with the image user check before every
// create.
type policyRuntime struct {
	runtime.Runtime
	guard *policyGuard
}

// Create fails when the task's images run as root at level restricted; see
// runtime.Runtime.
func (p *policyRuntime) Create(ctx context.Context, spec runtime.ContainerSpec) (runtime.ContainerInfo, error) {
	if err := p.guard.checkImages(ctx, types.UID(spec.Labels[runtime.LabelTaskUID]), p.Runtime); err != nil {
		return runtime.ContainerInfo{}, err
	}
	return p.Runtime.Create(ctx, spec)
}

// admit checks task t, whose desired state is d, against the container policy of the
// instance's cluster before the engine gets it, so before anything of it starts, and
// gives d the level, which decides how its containers are confined
// (policy.ContainerHardening). A task asked to stop needs neither.
//
// The engine takes the level with the task's first desired state: a task admitted
// before keeps the level it started at. A task recovered after a restart of the
// agent takes the level of the moment, the only one known, for the containers it
// has yet to create.
func (i *Instance) admit(ctx context.Context, a *Agent, t *ecsv1alpha1.Task, d *engine.Desired) error {
	if d.Spec == nil || d.DesiredStatus == ecsv1alpha1.DesiredStopped {
		return nil
	}
	var cluster ecsv1alpha1.Cluster
	level := ecsv1alpha1.DefaultContainerPolicyLevel
	err := a.cache.Get(ctx, client.ObjectKey{Name: i.cluster}, &cluster)
	switch {
	case err == nil:
		level = ecsv1alpha1.EffectiveContainerPolicyLevel(&cluster)
	case !apierrors.IsNotFound(err):
		return fmt.Errorf("reading cluster %s for its container policy: %w", i.cluster, err)
	}
	d.ContainerPolicy = level
	if i.guard.isAdmitted(t.UID) {
		return nil
	}
	return i.guard.check(t.UID, d.Revision, i.cluster, level, d.Spec)
}
