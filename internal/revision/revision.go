// Package revision turns TaskDefinition specs into immutable, numbered revisions and
// resolves the references (`family`, `family:N`) that Services and Tasks use.
//
// A revision is stored as a ControllerRevision named `<family>-rev<N>` (the object
// DaemonSets and StatefulSets use for the same job): its data is the spec as JSON, and
// the apiserver keeps that data immutable.
package revision

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// Ref is a parsed task definition reference.
type Ref struct {
	// Family is the TaskDefinition's name.
	Family string
	// Revision is the pinned revision, or 0 for "the latest".
	Revision int32
}

var refPattern = regexp.MustCompile(`^([a-z0-9]([-a-z0-9.]*[a-z0-9])?)(?::([1-9][0-9]{0,8}))?$`)

// ParseRef parses `family` or `family:N`. The CRD schema enforces the same grammar;
// parsing again keeps callers honest about objects that bypassed it.
func ParseRef(s string) (Ref, error) {
	m := refPattern.FindStringSubmatch(s)
	if m == nil {
		return Ref{}, fmt.Errorf("task definition reference %q is not family or family:N with N >= 1", s)
	}
	r := Ref{Family: m[1]}
	if m[3] != "" {
		n, err := strconv.ParseInt(m[3], 10, 32)
		if err != nil {
			return Ref{}, fmt.Errorf("task definition reference %q: revision: %w", s, err)
		}
		r.Revision = int32(n)
	}
	return r, nil
}

// String formats the reference as `family` or `family:N`.
func (r Ref) String() string {
	if r.Revision == 0 {
		return r.Family
	}
	return r.Family + ":" + strconv.FormatInt(int64(r.Revision), 10)
}

// Pinned reports whether the reference names a revision number.
func (r Ref) Pinned() bool { return r.Revision > 0 }

// Hash is the content hash of a spec: what makes two applies the same revision.
// revisionHistoryLimit is left out because it manages revisions rather than being one.
func Hash(spec *ecsv1alpha1.TaskDefinitionSpec) string {
	data, err := snapshotData(spec)
	if err != nil {
		// The spec is a plain struct of JSON-safe fields; failing to marshal it is a
		// programming error, not an input error.
		panic(fmt.Sprintf("marshalling task definition spec: %v", err))
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])[:16]
}

func snapshotData(spec *ecsv1alpha1.TaskDefinitionSpec) ([]byte, error) {
	s := spec.DeepCopy()
	s.RevisionHistoryLimit = nil
	return json.Marshal(s)
}

// Snapshot builds the ControllerRevision that stores revision n of td's spec, owned by
// td so that deleting the family deletes its history.
func Snapshot(td *ecsv1alpha1.TaskDefinition, n int32) (*appsv1.ControllerRevision, error) {
	data, err := snapshotData(&td.Spec)
	if err != nil {
		return nil, fmt.Errorf("marshalling task definition %s: %w", td.Name, err)
	}
	return &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{
			Name:      ecsv1alpha1.RevisionName(td.Name, n),
			Namespace: td.Namespace,
			Labels: map[string]string{
				ecsv1alpha1.LabelFamily:   td.Name,
				ecsv1alpha1.LabelRevision: strconv.FormatInt(int64(n), 10),
			},
			Annotations: map[string]string{ecsv1alpha1.AnnotationHash: Hash(&td.Spec)},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(td,
				ecsv1alpha1.GroupVersion.WithKind("TaskDefinition"))},
		},
		Data:     runtime.RawExtension{Raw: data},
		Revision: int64(n),
	}, nil
}

// Resolved is a reference resolved to a stored revision.
type Resolved struct {
	// Ref is the reference with its revision number filled in.
	Ref Ref
	// Hash is the revision's content hash.
	Hash string
	// Spec is the revision's content. Callers must not modify it: it is shared.
	Spec *ecsv1alpha1.TaskDefinitionSpec
}

// NotFoundError says a reference names no stored revision. Retrying does not help
// until the TaskDefinition (or revision) is created, so callers report it as a
// condition rather than failing the reconcile.
type NotFoundError struct {
	Ref    Ref
	Reason string
	// Pending is set when the TaskDefinition exists and its spec is yet to be
	// registered (RegistrationPending): a task that names it is early, not wrong.
	Pending bool
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("task definition %s not found: %s", e.Ref, e.Reason)
}

// IsPending reports whether err is a NotFoundError for a TaskDefinition whose
// registration is pending: worth waiting for, not a failure.
func IsPending(err error) bool {
	var nf *NotFoundError
	return errors.As(err, &nf) && nf.Pending
}

// IsNotFound reports whether err is (or wraps) a NotFoundError.
func IsNotFound(err error) bool {
	var nf *NotFoundError
	return errors.As(err, &nf)
}

// Resolver resolves references and caches decoded revisions. ControllerRevision data
// is immutable, so a decoded spec is cached by the object's UID until the object is
// deleted: whoever makes a Resolver registers ForgetOnDelete with the informer its
// reader uses, or the cache grows with every revision ever resolved.
type Resolver struct {
	Reader client.Reader

	mu      sync.Mutex
	decoded map[types.UID]*Resolved
}

// NewResolver returns a Resolver reading through r (usually a cached client).
func NewResolver(r client.Reader) *Resolver {
	return &Resolver{Reader: r, decoded: map[types.UID]*Resolved{}}
}

// Resolve finds the revision a reference names in a namespace: the pinned one, or the
// TaskDefinition's latest.
func (r *Resolver) Resolve(ctx context.Context, namespace string, ref Ref) (*Resolved, error) {
	if !ref.Pinned() {
		var td ecsv1alpha1.TaskDefinition
		// Read-only uses below, so no deep copy of the cached object.
		if err := r.Reader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: ref.Family}, &td, client.UnsafeDisableDeepCopy); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, &NotFoundError{Ref: ref, Reason: fmt.Sprintf("no TaskDefinition %q in namespace %q", ref.Family, namespace)}
			}
			return nil, fmt.Errorf("reading TaskDefinition %s/%s: %w", namespace, ref.Family, err)
		}
		if td.Status.LatestRevision == 0 {
			return nil, &NotFoundError{Ref: ref, Reason: "the TaskDefinition has no registered revision yet", Pending: RegistrationPending(&td)}
		}
		ref.Revision = td.Status.LatestRevision
	}
	var cr appsv1.ControllerRevision
	name := ecsv1alpha1.RevisionName(ref.Family, ref.Revision)
	if err := r.Reader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &cr, client.UnsafeDisableDeepCopy); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, &NotFoundError{Ref: ref, Reason: fmt.Sprintf("no revision %d (ControllerRevision %s/%s)", ref.Revision, namespace, name)}
		}
		return nil, fmt.Errorf("reading ControllerRevision %s/%s: %w", namespace, name, err)
	}
	return r.decode(&cr, ref)
}

func (r *Resolver) decode(cr *appsv1.ControllerRevision, ref Ref) (*Resolved, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if res, ok := r.decoded[cr.UID]; ok {
		return res, nil
	}
	spec := &ecsv1alpha1.TaskDefinitionSpec{}
	if err := json.Unmarshal(cr.Data.Raw, spec); err != nil {
		return nil, fmt.Errorf("decoding ControllerRevision %s/%s: %w", cr.Namespace, cr.Name, err)
	}
	res := &Resolved{Ref: ref, Hash: cr.Annotations[ecsv1alpha1.AnnotationHash], Spec: spec}
	r.decoded[cr.UID] = res
	return res, nil
}

// Forget drops a cached revision, for example when its ControllerRevision is deleted
// (ForgetOnDelete calls it then).
func (r *Resolver) Forget(uid types.UID) {
	r.mu.Lock()
	delete(r.decoded, uid)
	r.mu.Unlock()
}
