package console

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSideBySide(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b string
		want []diffRow
	}{
		{
			name: "identical",
			a:    "a\nb\n", b: "a\nb\n",
			want: []diffRow{{diffEqual, 1, 1, "a", "a"}, {diffEqual, 2, 2, "b", "b"}},
		},
		{
			name: "changed line faces its replacement",
			a:    "image: web:1\ncpu: 256\n", b: "image: web:2\ncpu: 256\n",
			want: []diffRow{{diffChanged, 1, 1, "image: web:1", "image: web:2"}, {diffEqual, 2, 2, "cpu: 256", "cpu: 256"}},
		},
		{
			name: "added and removed lines have one side",
			a:    "a\nold\nc\n", b: "a\nc\nnew\n",
			want: []diffRow{{diffEqual, 1, 1, "a", "a"}, {diffRemoved, 2, 0, "old", ""}, {diffEqual, 3, 2, "c", "c"}, {diffAdded, 0, 3, "", "new"}},
		},
		{
			name: "a longer replacement leaves the left side empty",
			a:    "x\n", b: "y\nz\n",
			want: []diffRow{{diffChanged, 1, 1, "x", "y"}, {diffChanged, 0, 2, "", "z"}},
		},
		{
			name: "empty to something",
			a:    "", b: "a\n",
			want: []diffRow{{diffAdded, 0, 1, "", "a"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, sideBySide(tc.a, tc.b)); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
		})
	}
}

// Repeated lines (a YAML list's "- name:") must stay aligned: difflib's autojunk
// would treat them as junk in long documents.
func TestSideBySideRepeatedLines(t *testing.T) {
	var a, b string
	for i := 0; i < 300; i++ {
		a += "- name: x\n"
		b += "- name: x\n"
	}
	b += "- name: y\n"
	rows := sideBySide(a, b)
	changed := 0
	for _, r := range rows {
		if r.Kind != diffEqual {
			changed++
		}
	}
	if changed != 1 {
		t.Errorf("%d changed rows, want 1 (the added line)", changed)
	}
}
