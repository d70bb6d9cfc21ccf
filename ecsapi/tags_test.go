package ecsapi

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

func tagMap(tags []types.Tag) map[string]string {
	out := map[string]string{}
	for _, t := range tags {
		out[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return out
}

func tag(k, v string) types.Tag { return types.Tag{Key: aws.String(k), Value: aws.String(v)} }

// TestRevisionTags: a task definition revision's tags are its registered spec.tags
// until an edit, which starts from them; removing every tag leaves none rather than
// the registered ones coming back.
func TestRevisionTags(t *testing.T) {
	registered := []ecsv1alpha1.Tag{{Key: "team", Value: "payments"}, {Key: "tier", Value: "web"}}
	tests := []struct {
		name   string
		edits  [][2][]string // each edit: keys=values to add, keys to remove
		wantKV map[string]string
	}{
		{name: "never edited: the registered tags", wantKV: map[string]string{"team": "payments", "tier": "web"}},
		{name: "a tag added keeps the registered ones", edits: [][2][]string{{{"env=prod"}, nil}},
			wantKV: map[string]string{"team": "payments", "tier": "web", "env": "prod"}},
		{name: "a registered tag overwritten", edits: [][2][]string{{{"team=search"}, nil}},
			wantKV: map[string]string{"team": "search", "tier": "web"}},
		{name: "a registered tag removed stays removed", edits: [][2][]string{{nil, {"tier"}}, {{"env=prod"}, nil}},
			wantKV: map[string]string{"team": "payments", "env": "prod"}},
		{name: "every tag removed: none, not the registered ones", edits: [][2][]string{{nil, {"team", "tier"}}},
			wantKV: map[string]string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var annotations map[string]string
			for _, e := range tc.edits {
				var add []types.Tag
				for _, kv := range e[0] {
					k, v, _ := strings.Cut(kv, "=")
					add = append(add, tag(k, v))
				}
				if err := editRevisionTags(&annotations, registered, add, e[1]); err != nil {
					t.Fatal(err)
				}
			}
			got := tagMap(revisionTags(annotations, registered))
			if len(got) != len(tc.wantKV) {
				t.Fatalf("tags = %v, want %v", got, tc.wantKV)
			}
			for k, v := range tc.wantKV {
				if got[k] != v {
					t.Errorf("tag %s = %q, want %q (all: %v)", k, got[k], v, got)
				}
			}
		})
	}
}

func TestInCluster(t *testing.T) {
	tests := []struct {
		object, arn string
		want        bool
	}{
		{object: "prod", arn: "", want: true},
		{object: "prod", arn: "prod", want: true},
		{object: "prod-eu", arn: "Prod_EU", want: true},
		{object: "prod", arn: "staging", want: false},
	}
	for _, tc := range tests {
		if got := inCluster(tc.object, tc.arn); got != tc.want {
			t.Errorf("inCluster(%q, %q) = %t, want %t", tc.object, tc.arn, got, tc.want)
		}
	}
}
