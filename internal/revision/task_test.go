package revision

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

func TestOfTask(t *testing.T) {
	for _, tc := range []struct {
		name       string
		ref        string
		annotation string
		status     int32
		want       int32
	}{
		{name: "family reference not yet placed", ref: "web"},
		{name: "pinned reference", ref: "web:3", want: 3},
		{name: "resolved at binding", ref: "web", annotation: "4", want: 4},
		{name: "reported by the agent", ref: "web", annotation: "4", status: 4, want: 4},
		{name: "status wins over the annotation", ref: "web", annotation: "4", status: 5, want: 5},
		{name: "a malformed annotation is ignored", ref: "web", annotation: "four"},
		{name: "a malformed annotation leaves the pinned reference", ref: "web:2", annotation: "-1", want: 2},
		{name: "invalid reference", ref: "web:x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			task := &ecsv1alpha1.Task{Spec: ecsv1alpha1.TaskSpec{TaskDefinition: tc.ref}}
			task.Status.TaskDefinitionRevision = tc.status
			if tc.annotation != "" {
				task.ObjectMeta = metav1.ObjectMeta{Annotations: map[string]string{ecsv1alpha1.AnnotationTaskDefinitionRevision: tc.annotation}}
			}
			if got := OfTask(task); got != tc.want {
				t.Errorf("OfTask = %d, want %d", got, tc.want)
			}
			ref, err := TaskRef(task)
			if err == nil && ref.Revision != tc.want {
				t.Errorf("TaskRef revision = %d, want %d", ref.Revision, tc.want)
			}
		})
	}
}
