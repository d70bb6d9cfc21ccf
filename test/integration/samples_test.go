package integration

import (
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	berthconfig "github.com/berthdev/berth/config"
)

// demoImage is the image every sample runs.
const demoImage = "localhost:5000/berth/demo:1.0"

// sampleFiles lists the manifests of config/samples and checks that kustomization.yaml
// lists exactly them, so `kubectl apply -k config/samples` applies what this test
// checks.
func sampleFiles(t *testing.T) []string {
	t.Helper()
	dir := repoPath("config", "samples")
	paths, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, p := range paths {
		if filepath.Base(p) != "kustomization.yaml" {
			files = append(files, filepath.Base(p))
		}
	}
	order, err := berthconfig.SampleFiles()
	if err != nil {
		t.Fatal(err)
	}
	listed := make([]string, len(order))
	for i, p := range order {
		listed[i] = path.Base(p)
	}
	slices.Sort(listed)
	if !slices.Equal(listed, files) {
		t.Fatalf("kustomization.yaml lists %v, but config/samples holds %v", listed, files)
	}
	for i := range files {
		files[i] = filepath.Join(dir, files[i])
	}
	return files
}

// TestSamplesAccepted creates every object of config/samples and reads some back to
// check that the schema's defaults were applied.
func TestSamplesAccepted(t *testing.T) {
	ns := env.Namespace(t)
	ctx := t.Context()
	coreService := corev1.SchemeGroupVersion.WithKind("Service")

	// kubectl, through kustomize, sends the same objects: check it is accepted too.
	t.Run("kubectl apply -k --dry-run=server", func(t *testing.T) {
		kubectl := newKubectl(t)
		out, err := kubectl.run(ctx, "apply", "-k", repoPath("config", "samples"), "-n", ns, "--dry-run=server")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "service.ecs.berth.dev/web created") || !strings.Contains(out, "service/web created") {
			t.Errorf("kubectl apply -k output lacks the ECS or the core Service web:\n%s", out)
		}
	})

	// names maps each sample object to the name it got in the test (cluster-scoped
	// objects get a suffix).
	names := map[objectKey]string{}
	for _, path := range sampleFiles(t) {
		for _, u := range readManifests(t, path) {
			key := keyOf(u)
			gvk := key.gvk
			if gvk.GroupVersion() != ecsv1alpha1.GroupVersion && gvk != coreService {
				t.Errorf("%s: %s %s: samples use %s (and core v1 Services only)", filepath.Base(path), gvk, u.GetName(), ecsv1alpha1.GroupVersion)
			}
			if gvk.Kind == "TaskDefinition" {
				checkSampleImages(t, u)
			}
			placeObject(t, u, ns, ns)
			if err := createObject(ctx, t, u); err != nil {
				t.Errorf("%s: creating %s %s: %v", filepath.Base(path), gvk.Kind, key.name, err)
				continue
			}
			names[key] = u.GetName()
		}
	}

	ecs := func(kind string) schema.GroupVersionKind { return ecsv1alpha1.GroupVersion.WithKind(kind) }
	required := []objectKey{
		{ecs("Cluster"), "default"},
		{ecs("TaskDefinition"), "web"},
		{ecs("TaskDefinition"), "node-exporter"},
		{ecs("TaskDefinition"), "migrate"},
		{ecs("Service"), "web"},
		{ecs("Service"), "node-exporter"},
		{ecs("Task"), "migrate-once"},
		{coreService, "web"},
	}
	for _, k := range required {
		if _, ok := names[k]; !ok {
			t.Errorf("samples lack an accepted %s %q", k.gvk.Kind, k.name)
		}
	}
	instances := 0
	for k := range names {
		if k.gvk == ecs("ContainerInstance") {
			instances++
		}
	}
	if instances == 0 {
		t.Error("samples lack a ContainerInstance")
	}
	if t.Failed() {
		t.FailNow()
	}

	get := func(obj client.Object, name string) {
		t.Helper()
		key := client.ObjectKey{Name: name}
		if _, clusterScoped := obj.(*ecsv1alpha1.Cluster); !clusterScoped {
			key.Namespace = ns
		}
		if err := env.Client.Get(ctx, key, obj); err != nil {
			t.Fatalf("reading back %T %s: %v", obj, name, err)
		}
	}

	var web ecsv1alpha1.TaskDefinition
	get(&web, "web")
	app := container(t, &web, "app")
	if app.HealthCheck == nil || len(app.PortMappings) == 0 {
		t.Fatalf("taskdefinition web: container app needs a healthCheck and a portMapping")
	}
	sidecar := container(t, &web, "log-router")
	var svc ecsv1alpha1.Service
	get(&svc, "web")
	var daemon ecsv1alpha1.Service
	get(&daemon, "node-exporter")
	var task ecsv1alpha1.Task
	get(&task, "migrate-once")
	var cluster ecsv1alpha1.Cluster
	get(&cluster, names[objectKey{ecs("Cluster"), "default"}])

	checks := []struct {
		field     string
		got, want any
	}{
		{"taskdefinition web: spec.networkMode", web.Spec.NetworkMode, ecsv1alpha1.NetworkModeBridge},
		{"taskdefinition web: app.essential", deref(app.Essential), true},
		{"taskdefinition web: app.stopTimeout", deref(app.StopTimeout), int32(30)},
		{"taskdefinition web: app.portMappings[0].protocol", app.PortMappings[0].Protocol, ecsv1alpha1.ProtocolTCP},
		{"taskdefinition web: app.portMappings[0].hostPort", deref(app.PortMappings[0].HostPort), int32(0)},
		{"taskdefinition web: app.healthCheck.interval (set: 10)", deref(app.HealthCheck.Interval), int32(10)},
		{"taskdefinition web: app.healthCheck.timeout", deref(app.HealthCheck.Timeout), int32(5)},
		{"taskdefinition web: app.healthCheck.retries", deref(app.HealthCheck.Retries), int32(3)},
		{"taskdefinition web: log-router.essential", deref(sidecar.Essential), false},
		{"taskdefinition web: log-router.stopTimeout", deref(sidecar.StopTimeout), int32(30)},
		{"service web: deploymentConfiguration.minimumHealthyPercent", deref(svc.Spec.DeploymentConfiguration.MinimumHealthyPercent), int32(100)},
		{"service web: deploymentConfiguration.maximumPercent", deref(svc.Spec.DeploymentConfiguration.MaximumPercent), int32(200)},
		{"service web: schedulingStrategy", svc.Spec.SchedulingStrategy, ecsv1alpha1.SchedulingReplica},
		{"service web: desiredCount", deref(svc.Spec.DesiredCount), int32(3)},
		{"service web: circuit breaker rollback", svc.Spec.DeploymentConfiguration.DeploymentCircuitBreaker != nil && svc.Spec.DeploymentConfiguration.DeploymentCircuitBreaker.Rollback, true},
		{"service node-exporter: schedulingStrategy", daemon.Spec.SchedulingStrategy, ecsv1alpha1.SchedulingDaemon},
		{"service node-exporter: desiredCount set", daemon.Spec.DesiredCount != nil, false},
		{"task migrate-once: desiredStatus", task.Spec.DesiredStatus, ecsv1alpha1.DesiredRunning},
		{"task migrate-once: cluster", task.Spec.Cluster, ecsv1alpha1.DefaultClusterName},
		{"cluster default: instanceUnreachableGracePeriodSeconds", deref(cluster.Spec.InstanceUnreachableGracePeriodSeconds), int32(300)},
		{"cluster default: stoppedTaskRetentionSeconds", deref(cluster.Spec.StoppedTaskRetentionSeconds), int32(86400)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.field, c.got, c.want)
		}
	}
}

// checkSampleImages checks that every container of a sample TaskDefinition runs the
// demo image.
func checkSampleImages(t *testing.T, u *unstructured.Unstructured) {
	t.Helper()
	containers, _, err := unstructured.NestedSlice(u.Object, "spec", "containerDefinitions")
	if err != nil {
		t.Fatalf("taskdefinition %s: %v", u.GetName(), err)
	}
	for _, c := range containers {
		m, _ := c.(map[string]any)
		if m["image"] != demoImage {
			t.Errorf("taskdefinition %s: container %v runs image %v, want %s", u.GetName(), m["name"], m["image"], demoImage)
		}
	}
}

// container returns the named container of td, failing the test without it.
func container(t *testing.T, td *ecsv1alpha1.TaskDefinition, name string) *ecsv1alpha1.ContainerDefinition {
	t.Helper()
	for i := range td.Spec.ContainerDefinitions {
		if c := &td.Spec.ContainerDefinitions[i]; c.Name == name {
			return c
		}
	}
	t.Fatalf("taskdefinition %s has no container %q", td.Name, name)
	return nil
}

// deref returns *p, or nil (so that it differs from every wanted value) when p is nil.
func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}
