package secrets

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berthdev/berth/agent/runtime"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/taskrules"
	"github.com/berthdev/berth/test/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Run(m, &env)) }

func TestEnvAndRegistryAuth(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	for _, o := range []client.Object{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"}, StringData: map[string]string{"password": "s3cret", "user": "app"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "settings"}, Data: map[string]string{"MODE": "prod", "LEVEL": "info"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "pull"}, Type: corev1.SecretTypeDockerConfigJson,
			StringData: map[string]string{corev1.DockerConfigJsonKey: `{"auths":{"127.0.0.1:5000":{"auth":"` + b64("bob:hunter2") + `"}}}`}},
	} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	spec := &ecsv1alpha1.TaskDefinitionSpec{ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{{
		Name: "app", Image: "127.0.0.1:5000/team/app:1",
		EnvironmentFiles: []ecsv1alpha1.EnvironmentFile{{Type: ecsv1alpha1.EnvironmentFileConfigMap, Value: "settings"}},
		Secrets: []ecsv1alpha1.SecretVariable{
			{Name: "DB_PASSWORD", ValueFrom: ecsv1alpha1.SecretValueSource{SecretKeyRef: &ecsv1alpha1.KeySelector{Name: "db", Key: "password"}}},
			{Name: "LEVEL", ValueFrom: ecsv1alpha1.SecretValueSource{ConfigMapKeyRef: &ecsv1alpha1.KeySelector{Name: "settings", Key: "MODE"}}},
		},
		RepositoryCredentials: &ecsv1alpha1.RepositoryCredentials{CredentialsParameter: "pull"},
	}, {Name: "plain", Image: "busybox"}}}
	read := &readsRecorder{Reader: env.Client}
	r := &Resolver{Reader: read}

	got, err := r.Env(ctx, ns, spec)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Values{"app": {"MODE": "prod", "LEVEL": "prod", "DB_PASSWORD": "s3cret"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("env (-want +got):\n%s", diff)
	}
	if s := fmt.Sprintf("%v %#v %s", got["app"], got["app"], got["app"]); strings.Contains(s, "s3cret") {
		t.Errorf("printing Values shows a secret: %s", s)
	}

	auth, err := r.RegistryAuth(ctx, ns, spec)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]*runtime.Auth{"app": {Username: "bob", Password: "hunter2"}}, auth); diff != "" {
		t.Errorf("auth (-want +got):\n%s", diff)
	}
	if strings.Contains(auth["app"].String(), "hunter2") {
		t.Errorf("Auth.String shows the password")
	}
	// What the resolver read is exactly what the manager's gateway lets an agent
	// read for this task (taskrules.References): one rule on both sides.
	if diff := cmp.Diff(taskrules.References(spec), read.refs); diff != "" {
		t.Errorf("objects read differ from taskrules.References (-references +read):\n%s", diff)
	}
}

// readsRecorder records each Secret and ConfigMap read, once, in order.
type readsRecorder struct {
	client.Reader
	refs []taskrules.Reference
}

func (r *readsRecorder) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	ref := taskrules.Reference{Kind: taskrules.KindConfigMap, Name: key.Name}
	if _, ok := obj.(*corev1.Secret); ok {
		ref.Kind = taskrules.KindSecret
	}
	if !slices.Contains(r.refs, ref) {
		r.refs = append(r.refs, ref)
	}
	return r.Reader.Get(ctx, key, obj, opts...)
}

func TestMissingReferencesNameTheField(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	if err := env.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"}, StringData: map[string]string{"user": "app"}}); err != nil {
		t.Fatal(err)
	}
	r := &Resolver{Reader: env.Client}
	cases := []struct {
		name string
		c    ecsv1alpha1.ContainerDefinition
		want string
	}{
		{"missing secret", ecsv1alpha1.ContainerDefinition{Name: "a", Secrets: []ecsv1alpha1.SecretVariable{{Name: "X",
			ValueFrom: ecsv1alpha1.SecretValueSource{SecretKeyRef: &ecsv1alpha1.KeySelector{Name: "nope", Key: "k"}}}}},
			"containerDefinitions[0].secrets[0].valueFrom.secretKeyRef: Secret " + ns + "/nope not found"},
		{"missing key", ecsv1alpha1.ContainerDefinition{Name: "a", Secrets: []ecsv1alpha1.SecretVariable{{Name: "X",
			ValueFrom: ecsv1alpha1.SecretValueSource{SecretKeyRef: &ecsv1alpha1.KeySelector{Name: "db", Key: "password"}}}}},
			`containerDefinitions[0].secrets[0].valueFrom.secretKeyRef: Secret ` + ns + `/db has no key "password"`},
		{"missing env file", ecsv1alpha1.ContainerDefinition{Name: "a", EnvironmentFiles: []ecsv1alpha1.EnvironmentFile{{Type: ecsv1alpha1.EnvironmentFileConfigMap, Value: "gone"}}},
			"containerDefinitions[0].environmentFiles[0]: ConfigMap " + ns + "/gone not found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.Env(ctx, ns, &ecsv1alpha1.TaskDefinitionSpec{ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{tc.c}})
			var missing *MissingError
			if !errors.As(err, &missing) || err.Error() != tc.want {
				t.Errorf("error %v, want MissingError %q", err, tc.want)
			}
		})
	}
}

func TestRegistryHost(t *testing.T) {
	for image, want := range map[string]string{
		"127.0.0.1:5000/a/b:1": "127.0.0.1:5000", "localhost/x": "localhost", "registry.example/x:1": "registry.example",
		"busybox": "", "library/busybox:1": "",
	} {
		if got := RegistryHost(image); got != want {
			t.Errorf("RegistryHost(%q) = %q, want %q", image, got, want)
		}
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
