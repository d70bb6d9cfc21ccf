package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/testenv"
)

// openAPITimeout bounds the wait for the apiserver to publish the CRDs' OpenAPI,
// which it does asynchronously after they are established.
const openAPITimeout = 30 * time.Second

// TestKubectlExplain checks that the API's doc comments reach users through kubectl
// explain.
func TestKubectlExplain(t *testing.T) {
	kubectl := newKubectl(t)
	ctx := t.Context()
	tests := []struct {
		args  []string
		wants []string
	}{
		{
			args:  []string{"explain", "taskdefinitions.spec.containerDefinitions.healthCheck.interval"},
			wants: []string{"KIND:", "TaskDefinition", "interval between checks, in seconds (5-300)"},
		},
		{
			// "services" alone means core Services: name the group's version.
			args: []string{"explain", "services.spec.deploymentConfiguration", "--api-version=ecs.berth.dev/v1alpha1"},
			wants: []string{
				"ecs.berth.dev",
				"deploymentConfiguration bounds rolling deployments",
				"minimumHealthyPercent", "deploymentCircuitBreaker",
			},
		},
		{
			args:  []string{"explain", "esvc.spec.desiredCount"},
			wants: []string{"desiredCount is the number of tasks a REPLICA service keeps running"},
		},
		{
			args:  []string{"explain", "tasks.status.lastStatus"},
			wants: []string{"lastStatus walks PROVISIONING, PENDING", "never moves backwards"},
		},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args[1:], " "), func(t *testing.T) {
			testenv.EventuallyWithin(t, openAPITimeout, "kubectl explain", func() error {
				out, err := kubectl.run(ctx, tc.args...)
				if err != nil {
					return err
				}
				for _, want := range tc.wants {
					if !strings.Contains(out, want) {
						return fmt.Errorf("output does not contain %q:\n%s", want, out)
					}
				}
				return nil
			})
		})
	}
}

// TestKubectlGetECSCategory checks that `kubectl get ecs` lists every Berth kind, and
// that the Service kind does not take `svc` away from core Services.
func TestKubectlGetECSCategory(t *testing.T) {
	kubectl := newKubectl(t)
	ns := env.Namespace(t)
	ctx := t.Context()
	suffix := ns // cluster-scoped names must be unique to the test

	objs := []client.Object{
		&ecsv1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "cat-" + suffix}},
		&ecsv1alpha1.ContainerInstance{
			ObjectMeta: metav1.ObjectMeta{Name: "cat-" + suffix},
			Spec:       ecsv1alpha1.ContainerInstanceSpec{Cluster: "cat-" + suffix},
		},
		&ecsv1alpha1.TaskDefinition{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cat-web"},
			Spec: ecsv1alpha1.TaskDefinitionSpec{ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{
				{Name: "app", Image: demoImage, Memory: ptr.To[int32](64)},
			}},
		},
		&ecsv1alpha1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cat-web"},
			Spec:       ecsv1alpha1.ServiceSpec{TaskDefinition: "cat-web", DesiredCount: ptr.To[int32](1)},
		},
		&ecsv1alpha1.Task{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cat-once"},
			Spec:       ecsv1alpha1.TaskSpec{TaskDefinition: "cat-web:1"},
		},
		// A core Service of the same name, which `svc` must still mean.
		&corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cat-web"},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
		},
	}
	for _, obj := range objs {
		if err := env.Client.Create(ctx, obj); err != nil {
			t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
		}
		if obj.GetNamespace() == "" {
			deleteAtCleanup(t, obj)
		}
	}
	ecsNames := []string{
		"cluster.ecs.berth.dev/cat-" + suffix,
		"containerinstance.ecs.berth.dev/cat-" + suffix,
		"taskdefinition.ecs.berth.dev/cat-web",
		"service.ecs.berth.dev/cat-web",
		"task.ecs.berth.dev/cat-once",
	}

	tests := []struct {
		name    string
		args    []string
		wants   []string
		unwants []string
	}{
		{name: "ecs all namespaces", args: []string{"get", "ecs", "-A"}, wants: ecsNames},
		{name: "ecs in namespace", args: []string{"get", "ecs", "-n", ns}, wants: ecsNames},
		{
			name:    "esvc",
			args:    []string{"get", "esvc", "-n", ns, "-o", "name"},
			wants:   []string{"service.ecs.berth.dev/cat-web"},
			unwants: []string{"service/cat-web"},
		},
		{
			// Core Services keep svc; -o name prints them without a group.
			name:    "svc",
			args:    []string{"get", "svc", "-n", ns, "-o", "name"},
			wants:   []string{"service/cat-web"},
			unwants: []string{"ecs.berth.dev"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := kubectl.run(ctx, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("kubectl %s:\n%s", strings.Join(tc.args, " "), out)
			for _, want := range tc.wants {
				if !strings.Contains(out, want) {
					t.Errorf("kubectl %s: output does not contain %q:\n%s", strings.Join(tc.args, " "), want, out)
				}
			}
			for _, unwant := range tc.unwants {
				if strings.Contains(out, unwant) {
					t.Errorf("kubectl %s: output contains %q:\n%s", strings.Join(tc.args, " "), unwant, out)
				}
			}
		})
	}

	t.Run("api-resources short names", func(t *testing.T) {
		out, err := kubectl.run(ctx, "api-resources")
		if err != nil {
			t.Fatal(err)
		}
		owners := shortNameOwners(out)
		for _, tc := range []struct{ short, want string }{
			{"svc", "services v1"},
			{"esvc", "services ecs.berth.dev/v1alpha1"},
			{"td", "taskdefinitions ecs.berth.dev/v1alpha1"},
			{"etask", "tasks ecs.berth.dev/v1alpha1"},
		} {
			if got := owners[tc.short]; len(got) != 1 || got[0] != tc.want {
				t.Errorf("short name %s belongs to %q, want only %q\n%s", tc.short, got, tc.want, out)
			}
		}
	})
}

// shortNameOwners parses `kubectl api-resources` output into short name -> "resource
// apiVersion" rows that claim it. Rows without short names have one column fewer, so
// the SHORTNAMES column is found by its position in the header.
func shortNameOwners(out string) map[string][]string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	owners := map[string][]string{}
	if len(lines) == 0 {
		return owners
	}
	shortCol := strings.Index(lines[0], "SHORTNAMES")
	versionCol := strings.Index(lines[0], "APIVERSION")
	if shortCol < 0 || versionCol < 0 {
		return owners
	}
	for _, line := range lines[1:] {
		if len(line) <= versionCol {
			continue
		}
		name := strings.TrimSpace(line[:shortCol])
		shorts := strings.TrimSpace(line[shortCol:versionCol])
		version := strings.Fields(line[versionCol:])[0]
		if shorts == "" {
			continue
		}
		for _, s := range strings.Split(shorts, ",") {
			owners[s] = append(owners[s], name+" "+version)
		}
	}
	return owners
}
