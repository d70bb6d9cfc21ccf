package streaming

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/access"
	"github.com/berthdev/berth/internal/kube"
)

// Reasons of the audit Events on tasks.
const (
	// ReasonExecCommand: a user's command started in a container of the task.
	ReasonExecCommand = "ExecCommand"
	// ReasonExecDenied: RBAC refused a user's exec in the task.
	ReasonExecDenied = "ExecDenied"
)

// Component is the Events' reporting controller; their reporting instance is the
// container instance, which the agent admission policy checks.
const Component = "berth-agent"

// Auditor records the exec decisions as Events on the tasks.
type Auditor struct {
	recorder    record.EventRecorder
	broadcaster record.EventBroadcaster
}

// NewAuditor records Events as instance (their source host and reporting
// instance) through cs; Start sends them.
func NewAuditor(cs kubernetes.Interface, instance string) *Auditor {
	b := record.NewBroadcaster()
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cs.CoreV1().Events("")})
	return &Auditor{broadcaster: b, recorder: b.NewRecorder(kube.Scheme, corev1.EventSource{Component: Component, Host: instance})}
}

// NewAuditorFor records through recorder (tests).
func NewAuditorFor(recorder record.EventRecorder) *Auditor { return &Auditor{recorder: recorder} }

// Shutdown flushes and stops the Events' sending.
func (a *Auditor) Shutdown() {
	if a.broadcaster != nil {
		a.broadcaster.Shutdown()
	}
}

// started records that u ran cmd in container of t.
func (a *Auditor) started(t *ecsv1alpha1.Task, u user.Info, container string, cmd []string) {
	a.recorder.Eventf(t, corev1.EventTypeNormal, ReasonExecCommand, "%s ran %s in container %s", u.GetName(), quoteCommand(cmd), container)
}

// denied records that RBAC refused u's exec in the task. t is the task if this
// agent has it, else a reference by name, so that a denial is recorded even for a
// task that is not (or no longer) here.
func (a *Auditor) denied(t *ecsv1alpha1.Task, key types.NamespacedName, u user.Info, cmd []string) {
	obj := t
	if obj == nil {
		obj = &ecsv1alpha1.Task{}
		obj.Namespace, obj.Name = key.Namespace, key.Name
	}
	a.recorder.Eventf(obj, corev1.EventTypeWarning, ReasonExecDenied, "%s may not exec in task %s (RBAC: verb %s on %s.%s): command %s refused",
		u.GetName(), key.Name, access.VerbExec, access.ResourceTasks, ecsv1alpha1.GroupVersion.Group, quoteCommand(cmd))
}

// quoteCommand shows a command as its quoted arguments, bounded: an Event's note
// is at most 1 KiB.
func quoteCommand(cmd []string) string {
	q := make([]string, len(cmd))
	for i, c := range cmd {
		q[i] = fmt.Sprintf("%q", c)
	}
	s := "[" + strings.Join(q, " ") + "]"
	if len(s) > 512 {
		s = s[:509] + "..."
	}
	return s
}
