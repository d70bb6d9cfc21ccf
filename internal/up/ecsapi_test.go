package up

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/berthdev/berth/ecsapi/auth"
	"github.com/berthdev/berth/internal/kube"
)

// TestEnsureCredentialReusesItsOwn: a restarted `up` finds the key it made before
// (the same key, no second Secret); a key it did not make, or for another user, is
// not taken; another namespace gets a key of its own.
func TestEnsureCredentialReusesItsOwn(t *testing.T) {
	ctx := context.Background()
	// Made by hand (`berth api credentials create`), for the same namespace and user.
	byHand, err := auth.NewCredential("default", ECSUser, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithScheme(kube.Scheme).WithObjects(stored(byHand.Secret(CredentialsNamespace))).
		WithInterceptorFuncs(interceptor.Funcs{
			// As the apiserver does, and the fake client does not.
			Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
				if s, ok := obj.(*corev1.Secret); ok {
					stored(s)
				}
				return c.Create(ctx, obj, opts...)
			},
		}).Build()

	first, err := ensureCredential(ctx, c, "default")
	if err != nil {
		t.Fatal(err)
	}
	if first.AccessKeyID == byHand.AccessKeyID {
		t.Errorf("up took over a credential it did not make")
	}
	if first.Namespace != "default" || first.User != ECSUser || len(first.Groups) != 0 {
		t.Errorf("credential = %s/%s %v, want default/%s without groups", first.Namespace, first.User, first.Groups, ECSUser)
	}
	again, err := ensureCredential(ctx, c, "default")
	if err != nil {
		t.Fatal(err)
	}
	if again.AccessKeyID != first.AccessKeyID || again.SecretAccessKey != first.SecretAccessKey {
		t.Errorf("the second up made key %s, want the first one's %s again", again.AccessKeyID, first.AccessKeyID)
	}
	other, err := ensureCredential(ctx, c, "team-a")
	if err != nil {
		t.Fatal(err)
	}
	if other.AccessKeyID == first.AccessKeyID || other.Namespace != "team-a" {
		t.Errorf("namespace team-a got %s in %s, want a key of its own", other.AccessKeyID, other.Namespace)
	}

	var secrets corev1.SecretList
	if err := c.List(ctx, &secrets, client.InNamespace(CredentialsNamespace)); err != nil {
		t.Fatal(err)
	}
	if len(secrets.Items) != 3 {
		t.Errorf("%d credential Secrets, want 3: the hand-made one and one per namespace", len(secrets.Items))
	}
}

// stored is s as the apiserver keeps it: StringData moved into Data.
func stored(s *corev1.Secret) *corev1.Secret {
	if s.Data == nil {
		s.Data = map[string][]byte{}
	}
	for k, v := range s.StringData {
		s.Data[k] = []byte(v)
	}
	s.StringData = nil
	return s
}
