package integration

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/validation"
	"github.com/berthdev/berth/test/testenv"
	"github.com/berthdev/berth/test/testobj"
)

// Tests of the TaskDefinition warnings (config/warnings): the apiserver warns about
// every field Berth keeps but cannot honour, exactly the fields
// internal/validation.NotHonoured names for the Honoured condition, and denies
// nothing.

// warningCollector keeps the warnings the apiserver sends.
type warningCollector struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warningCollector) HandleWarningHeader(_ int, _ string, msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, msg)
}

func (w *warningCollector) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.msgs
	w.msgs = nil
	sort.Strings(out)
	return out
}

// warningsManifests are config/warnings' objects, in kustomization order.
func warningsManifests(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	for _, r := range kustomizationFiles(t, "warnings") {
		objs = append(objs, decodeDocuments(t, r.text)...)
	}
	return objs
}

// notHonouredField is how a warning names a field NotHonoured names: container
// indexes as [*] and no map key (the warning lists the containers and keys).
var indexOrKey = regexp.MustCompile(`\[[^\]]*\]`)

// policyWarning is how the apiserver words a warning of a Warn binding.
var policyWarning = regexp.MustCompile(`^Validation failed for ValidatingAdmissionPolicy 'berth-taskdefinition-warnings' with binding 'berth-taskdefinition-warnings': (.*)$`)

func notHonouredField(f string) string {
	f = indexOrKey.ReplaceAllString(f, "[*]")
	return strings.TrimSuffix(f, "[*]")
}

func TestTaskDefinitionWarnings(t *testing.T) {
	ctx := t.Context()
	for _, u := range warningsManifests(t) {
		if err := testenv.Apply(ctx, env.Client, u, "berth-test"); err != nil {
			t.Fatalf("applying %s %s: %v", u.GetKind(), u.GetName(), err)
		}
		t.Cleanup(func() { _ = env.Client.Delete(ctx, u) })
	}
	collector := &warningCollector{}
	cfg := rest.CopyConfig(env.Config)
	cfg.WarningHandler = collector
	c := clientFor(t, cfg)
	ns := env.Namespace(t)

	awslogs := func(opts map[string]string) func(*ecsv1alpha1.ContainerDefinition) {
		return func(c *ecsv1alpha1.ContainerDefinition) {
			c.LogConfiguration = &ecsv1alpha1.LogConfiguration{LogDriver: ecsv1alpha1.LogDriverAWSLogs, Options: opts}
		}
	}
	tests := []struct {
		name string
		edit func(*ecsv1alpha1.TaskDefinition)
	}{
		{"nothing kept without effect", func(*ecsv1alpha1.TaskDefinition) {}},
		{"roles", func(td *ecsv1alpha1.TaskDefinition) {
			td.Spec.TaskRoleArn = "arn:aws:iam::123456789012:role/app"
			td.Spec.ExecutionRoleArn = "arn:aws:iam::123456789012:role/ecsTaskExecutionRole"
		}},
		{"ephemeral storage", func(td *ecsv1alpha1.TaskDefinition) {
			td.Spec.EphemeralStorage = &ecsv1alpha1.EphemeralStorage{SizeInGiB: 30}
		}},
		{"awslogs with CloudWatch options in two containers", func(td *ecsv1alpha1.TaskDefinition) {
			awslogs(map[string]string{"awslogs-group": "/ecs/web", "awslogs-region": "eu-west-1", "awslogs-stream-prefix": "web"})(&td.Spec.ContainerDefinitions[0])
			awslogs(map[string]string{"awslogs-create-group": "true"})(&td.Spec.ContainerDefinitions[1])
		}},
		{"awslogs without CloudWatch options", func(td *ecsv1alpha1.TaskDefinition) {
			awslogs(map[string]string{"awslogs-group": "/ecs/web", "awslogs-stream-prefix": "web"})(&td.Spec.ContainerDefinitions[0])
		}},
		{"log secret options", func(td *ecsv1alpha1.TaskDefinition) {
			awslogs(nil)(&td.Spec.ContainerDefinitions[1])
			td.Spec.ContainerDefinitions[1].LogConfiguration.SecretOptions = []ecsv1alpha1.SecretVariable{{Name: "token", ValueFrom: ecsv1alpha1.SecretValueSource{SecretKeyRef: &ecsv1alpha1.KeySelector{Name: "logs", Key: "token"}}}}
		}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			td := testobj.TaskDefinition(ns, fmt.Sprintf("warn-%d", i)).Container("app", "app:1").Container("side", "side:1").Obj()
			td.Spec.ContainerDefinitions[1].Essential = ptr.To(false)
			tc.edit(td)
			collector.take()
			// The policy is learnt from a watch: retry until the expected warnings come
			// (a dry run writes nothing).
			want := map[string]bool{}
			for _, ig := range validation.NotHonoured(field.NewPath("spec"), &td.Spec) {
				want[notHonouredField(ig.Field)] = true
			}
			var got []string
			testenv.Eventually(t, "the warnings", func() error {
				if err := c.Create(ctx, td.DeepCopy(), client.DryRunAll); err != nil {
					return fmt.Errorf("a dry run was refused (warnings must never deny): %w", err)
				}
				got = collector.take()
				if len(got) != len(want) {
					return fmt.Errorf("%d warnings %q, want one for each of %v", len(got), got, want)
				}
				return nil
			})
			fields := map[string]bool{}
			for _, w := range got {
				m := policyWarning.FindStringSubmatch(w)
				if m == nil {
					t.Errorf("warning %q is not the policy's", w)
					continue
				}
				w = m[1]
				f, _, ok := strings.Cut(w, " ")
				if !ok || !strings.Contains(w, "is kept but not honoured: ") {
					t.Errorf("warning %q does not name a field and say why", w)
				}
				fields[f] = true
			}
			if diff := cmp.Diff(want, fields); diff != "" {
				t.Errorf("the warnings and NotHonoured name different fields (-NotHonoured +warnings):\n%s\nwarnings: %q", diff, got)
			}
			if err := c.Create(ctx, td); err != nil {
				t.Fatalf("a TaskDefinition with kept fields was refused: %v", err)
			}
		})
	}
}

// TestTaskDefinitionWarningsInChart: the chart renders config/warnings with its own
// names, and not when taskDefinitionWarnings.enabled is false.
func TestTaskDefinitionWarningsInChart(t *testing.T) {
	want := map[string]map[string]any{}
	for _, u := range warningsManifests(t) {
		u.SetName("edge-berth-taskdefinition-warnings")
		if u.GetKind() == "ValidatingAdmissionPolicyBinding" {
			_ = unstructured.SetNestedField(u.Object, "edge-berth-taskdefinition-warnings", "spec", "policyName")
		}
		want[u.GetKind()] = u.Object
	}
	for _, enabled := range []bool{true, false} {
		out := runHelmInput(t, fmt.Sprintf("taskDefinitionWarnings: {enabled: %t}", enabled), "template", "edge", chartPath, "--namespace", "ops", "--values", "-")
		got := map[string]map[string]any{}
		for _, u := range decodeDocuments(t, out) {
			if strings.HasSuffix(u.GetName(), "-taskdefinition-warnings") {
				u.SetLabels(nil)
				got[u.GetKind()] = u.Object
			}
		}
		if !enabled {
			if len(got) != 0 {
				t.Errorf("taskDefinitionWarnings.enabled=false renders %d objects", len(got))
			}
			continue
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("the chart's warnings differ from config/warnings (run `make manifests`) (-want +got):\n%s", diff)
		}
	}
}
