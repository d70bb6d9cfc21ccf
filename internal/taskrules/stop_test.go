package taskrules

import (
	"encoding/json"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/types"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

func TestStopPatch(t *testing.T) {
	for _, tc := range []struct {
		name, reason, wantReason string
		deleteWhenStopped        bool
	}{
		{name: "short reason", reason: "Task stopped by USER", wantReason: "Task stopped by USER"},
		{name: "reason over the bound", reason: strings.Repeat("x", MaxReason+10), wantReason: strings.Repeat("x", MaxReason-3) + "..."},
		{name: "deleted when stopped", reason: "Scaling in", wantReason: "Scaling in", deleteWhenStopped: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := StopPatch(ecsv1alpha1.StopUserInitiated, tc.reason)
			if tc.deleteWhenStopped {
				p = StopAndDeletePatch(ecsv1alpha1.StopUserInitiated, tc.reason)
			}
			if p.Type() != types.MergePatchType {
				t.Fatalf("patch type %s, want a merge patch", p.Type())
			}
			raw, err := p.Data(nil)
			if err != nil {
				t.Fatal(err)
			}
			var got struct {
				Spec map[string]any `json:"spec"`
			}
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatal(err)
			}
			want := map[string]any{"desiredStatus": "STOPPED", "stopCode": "UserInitiated", "stopReason": tc.wantReason}
			if tc.deleteWhenStopped {
				want["deleteWhenStopped"] = true
			}
			if len(got.Spec) != len(want) {
				t.Errorf("patch sets %v, want only %v", got.Spec, want)
			}
			for k, v := range want {
				if got.Spec[k] != v {
					t.Errorf("%s = %v, want %v", k, got.Spec[k], v)
				}
			}
		})
	}
}

func TestDeletedWhenStopped(t *testing.T) {
	for _, tc := range []struct {
		name    string
		spec    ecsv1alpha1.TaskSpec
		deleted bool
	}{
		{name: "running", spec: ecsv1alpha1.TaskSpec{DesiredStatus: ecsv1alpha1.DesiredRunning}},
		{name: "stopped, kept in the history", spec: ecsv1alpha1.TaskSpec{DesiredStatus: ecsv1alpha1.DesiredStopped}},
		{name: "stopped, not kept", spec: ecsv1alpha1.TaskSpec{DesiredStatus: ecsv1alpha1.DesiredStopped, DeleteWhenStopped: true}, deleted: true},
		// The CRD refuses this; the agent must not delete a task asked to run either way.
		{name: "marked but running", spec: ecsv1alpha1.TaskSpec{DesiredStatus: ecsv1alpha1.DesiredRunning, DeleteWhenStopped: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := DeletedWhenStopped(&ecsv1alpha1.Task{Spec: tc.spec}); got != tc.deleted {
				t.Errorf("DeletedWhenStopped = %v, want %v", got, tc.deleted)
			}
		})
	}
}
