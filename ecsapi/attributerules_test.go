package ecsapi

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/ecsapi/wire"
)

func TestValidAttributeName(t *testing.T) {
	cases := map[string]bool{
		"stack":                          true,
		"team/payments_v2.shard-1":       true,
		strings.Repeat("n", 128):         true,
		"":                               false,
		strings.Repeat("n", 129):         false,
		"ecs.availability-zone":          false, // ECS's own
		"ecs.custom":                     false,
		"com.amazonaws.ecs.capability.x": false,
		`back\slash`:                     false, // ECS's grammar, not Berth's schema
		"-leading":                       false,
		"has space":                      false,
		"colon:name":                     false,
	}
	for name, ok := range cases {
		err := validAttributeName("attributes[0].name", name)
		if (err == nil) != ok {
			t.Errorf("%q: %v, want ok=%v", name, err, ok)
		}
		if err != nil {
			refusedNaming(t, err, "attributes[0].name")
		}
	}
}

func TestValidAttributeValue(t *testing.T) {
	cases := map[string]bool{
		"":                        true, // a flag attribute
		"prod":                    true,
		"user@host:/path v1.2_3-": true,
		strings.Repeat("v", 128):  true,
		strings.Repeat("v", 129):  false,
		" leading":                false,
		"trailing ":               false,
		`back\slash`:              false,
		"semi;colon":              false,
	}
	for value, ok := range cases {
		err := validAttributeValue("attributes[0].value", value)
		if (err == nil) != ok {
			t.Errorf("%q: %v, want ok=%v", value, err, ok)
		}
	}
}

func attrs(kv ...string) []ecsv1alpha1.Attribute {
	var out []ecsv1alpha1.Attribute
	for i := 0; i < len(kv); i += 2 {
		out = append(out, ecsv1alpha1.Attribute{Name: kv[i], Value: kv[i+1]})
	}
	return out
}

func TestWithAttributes(t *testing.T) {
	got, err := withAttributes(attrs("a", "1", "b", "2"), attrs("b", "3", "c", ""))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(attrs("a", "1", "b", "3", "c", ""), got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	var ten []string
	for i := range 10 {
		ten = append(ten, fmt.Sprintf("k%d", i), "v")
	}
	full := attrs(ten...)
	if _, err := withAttributes(full, attrs("k0", "new")); err != nil {
		t.Errorf("changing a value at the limit: %v", err)
	}
	_, err = withAttributes(full, attrs("k10", "v"))
	if e := wire.ECS.AsError(err); e.Type != wire.AttributeLimitExceededException {
		t.Errorf("an 11th attribute: %v, want AttributeLimitExceededException", err)
	}
	// Set past the limit by other means, an instance may still change values.
	over := append(attrs(ten...), attrs("k10", "v", "k11", "v")...)
	if _, err := withAttributes(over, attrs("k11", "w")); err != nil {
		t.Errorf("changing a value past the limit: %v", err)
	}
}

func TestWithoutAttributes(t *testing.T) {
	current := attrs("a", "1", "b", "2", "c", "3")
	got := withoutAttributes(current, []string{"b", "missing"})
	if diff := cmp.Diff(attrs("a", "1", "c", "3"), got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if len(current) != 3 || current[1].Name != "b" {
		t.Errorf("the current list was modified: %v", current)
	}
}
