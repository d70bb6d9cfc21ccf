package placement

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

func TestParseConstraints(t *testing.T) {
	testCases := []struct {
		name    string
		in      []ecsv1alpha1.PlacementConstraint
		want    []string // type, then expression for memberOf
		wantErr string
	}{
		{
			name: "both kinds",
			in: []ecsv1alpha1.PlacementConstraint{
				{Type: ecsv1alpha1.PlacementConstraintDistinctInstance},
				{Type: ecsv1alpha1.PlacementConstraintMemberOf, Expression: "attribute:az in [a,b]"},
			},
			want: []string{"distinctInstance", "memberOf attribute:az in [a, b]"},
		},
		{
			name: "syntax error names the index",
			in: []ecsv1alpha1.PlacementConstraint{
				{Type: ecsv1alpha1.PlacementConstraintDistinctInstance},
				{Type: ecsv1alpha1.PlacementConstraintMemberOf, Expression: "in == x"},
			},
			wantErr: `placementConstraints[1].expression: position 0: unknown subject "in"; want attribute:<name>, instanceId or task:group`,
		},
		{
			name: "memberOf without expression",
			in: []ecsv1alpha1.PlacementConstraint{
				{Type: ecsv1alpha1.PlacementConstraintMemberOf},
			},
			wantErr: "placementConstraints[0].expression: position 0: expression is empty",
		},
		{
			name: "distinctInstance with expression",
			in: []ecsv1alpha1.PlacementConstraint{
				{Type: ecsv1alpha1.PlacementConstraintDistinctInstance, Expression: "attribute:a exists"},
			},
			wantErr: "placementConstraints[0].expression: a distinctInstance constraint takes no expression",
		},
		{
			name: "unknown type",
			in: []ecsv1alpha1.PlacementConstraint{
				{Type: "sameZone"},
			},
			wantErr: `placementConstraints[0].type: unsupported placement constraint type "sameZone"`,
		},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseConstraints(tc.in)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseConstraints succeeded, want error %q", tc.wantErr)
				}
				if diff := cmp.Diff(tc.wantErr, err.Error()); diff != "" {
					t.Errorf("ParseConstraints error (-want +got):\n%s", diff)
				}
				var fe *FieldError
				if !errors.As(err, &fe) {
					t.Errorf("ParseConstraints error is %T, want *FieldError", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseConstraints: %v", err)
			}
			var gotStrings []string
			for _, c := range got {
				s := string(c.Type)
				if c.Expression != nil {
					s += " " + c.Expression.String()
				}
				gotStrings = append(gotStrings, s)
			}
			if diff := cmp.Diff(tc.want, gotStrings); diff != "" {
				t.Errorf("ParseConstraints (-want +got):\n%s", diff)
			}
		})
	}
}

func TestConstraintSyntaxErrorIsReachable(t *testing.T) {
	_, err := ParseTaskDefinitionConstraints([]ecsv1alpha1.TaskDefinitionPlacementConstraint{
		{Type: ecsv1alpha1.PlacementConstraintMemberOf, Expression: "attribute:a =="},
	})
	var se *SyntaxError
	if !errors.As(err, &se) {
		t.Fatalf("error %v does not wrap a *SyntaxError", err)
	}
	if diff := cmp.Diff(&SyntaxError{Pos: 14, Msg: "expected a value after '=='"}, se); diff != "" {
		t.Errorf("SyntaxError (-want +got):\n%s", diff)
	}
}

func TestValidateStrategies(t *testing.T) {
	testCases := []struct {
		name    string
		in      []ecsv1alpha1.PlacementStrategy
		wantErr string
	}{
		{name: "none"},
		{
			name: "all valid",
			in: []ecsv1alpha1.PlacementStrategy{
				{Type: ecsv1alpha1.PlacementStrategyBinpack, Field: "cpu"},
				{Type: ecsv1alpha1.PlacementStrategyBinpack, Field: "memory"},
				{Type: ecsv1alpha1.PlacementStrategySpread, Field: "instanceId"},
				{Type: ecsv1alpha1.PlacementStrategySpread, Field: "host"},
				{Type: ecsv1alpha1.PlacementStrategySpread, Field: "attribute:ecs.availability-zone"},
				{Type: ecsv1alpha1.PlacementStrategyRandom},
			},
		},
		{
			name:    "binpack on disk",
			in:      []ecsv1alpha1.PlacementStrategy{{Type: ecsv1alpha1.PlacementStrategyRandom}, {Type: ecsv1alpha1.PlacementStrategyBinpack, Field: "disk"}},
			wantErr: `placementStrategy[1].field: binpack needs field cpu or memory, not "disk"`,
		},
		{
			name:    "spread on an empty attribute",
			in:      []ecsv1alpha1.PlacementStrategy{{Type: ecsv1alpha1.PlacementStrategySpread, Field: "attribute:"}},
			wantErr: `placementStrategy[0].field: spread needs field instanceId, host or attribute:<name>, not "attribute:"`,
		},
		{
			name:    "random with a field",
			in:      []ecsv1alpha1.PlacementStrategy{{Type: ecsv1alpha1.PlacementStrategyRandom, Field: "cpu"}},
			wantErr: "placementStrategy[0].field: random takes no field",
		},
		{
			name:    "unknown type",
			in:      []ecsv1alpha1.PlacementStrategy{{Type: "pack"}},
			wantErr: `placementStrategy[0].type: unsupported placement strategy type "pack"`,
		},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateStrategies(tc.in)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if diff := cmp.Diff(tc.wantErr, gotErr); diff != "" {
				t.Errorf("ValidateStrategies error (-want +got):\n%s", diff)
			}
		})
	}
}
