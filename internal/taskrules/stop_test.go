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
	}{
		{name: "short reason", reason: "Task stopped by USER", wantReason: "Task stopped by USER"},
		{name: "reason over the bound", reason: strings.Repeat("x", MaxReason+10), wantReason: strings.Repeat("x", MaxReason-3) + "..."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := StopPatch(ecsv1alpha1.StopUserInitiated, tc.reason)
			if p.Type() != types.MergePatchType {
				t.Fatalf("patch type %s, want a merge patch", p.Type())
			}
			raw, err := p.Data(nil)
			if err != nil {
				t.Fatal(err)
			}
			var got struct {
				Spec map[string]string `json:"spec"`
			}
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"desiredStatus": "STOPPED", "stopCode": "UserInitiated", "stopReason": tc.wantReason}
			if len(got.Spec) != len(want) {
				t.Errorf("patch sets %v, want only %v", got.Spec, want)
			}
			for k, v := range want {
				if got.Spec[k] != v {
					t.Errorf("%s = %q, want %q", k, got.Spec[k], v)
				}
			}
		})
	}
}
