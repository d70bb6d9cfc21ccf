package auth

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/berthdev/berth/internal/kube"
)

// TestSecretLookupReadsKeysTheCacheMisses: a key only the apiserver knows (just
// created, its watch event not in yet) is read live and works; an unknown key is not;
// and a flood of unknown keys reads live no faster than the bound.
func TestSecretLookupReadsKeysTheCacheMisses(t *testing.T) {
	ctx := context.Background()
	fresh := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "creds", Name: SecretName("AKIANEW"), Labels: map[string]string{LabelCredential: "true"}},
		Data: map[string][]byte{KeyAccessKeyID: []byte("AKIANEW"), KeySecretAccessKey: []byte("s3cr3t"),
			KeyNamespace: []byte("team"), KeyUser: []byte("carol")},
	}
	cached := fake.NewClientBuilder().WithScheme(kube.Scheme).Build()
	liveReads := 0
	live := interceptor.NewClient(fake.NewClientBuilder().WithScheme(kube.Scheme).WithObjects(fresh).Build(), interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			liveReads++
			return c.Get(ctx, key, obj, opts...)
		},
	})

	if cred, err := SecretLookup(cached, nil, "creds")(ctx, "AKIANEW"); cred != nil || err != nil {
		t.Fatalf("without a live reader the cache decides: %+v, %v", cred, err)
	}
	lookup := SecretLookup(cached, live, "creds")
	cred, err := lookup(ctx, "AKIANEW")
	if err != nil || cred == nil || cred.User != "carol" || cred.SecretAccessKey != "s3cr3t" {
		t.Fatalf("the new key read live: %+v, %v", cred, err)
	}
	liveReads = 0
	for i := range 100 {
		if cred, err := lookup(ctx, fmt.Sprintf("AKIAUNKNOWN%d", i)); cred != nil || err != nil {
			t.Fatalf("unknown key %d: %+v, %v", i, cred, err)
		}
	}
	// The burst, less the read above, plus what refilled meanwhile: far below 100.
	if liveReads > missReadsBurst+2 {
		t.Errorf("100 unknown keys in a burst read live %d times, want at most about %d", liveReads, missReadsBurst)
	}
	if liveReads == 0 {
		t.Error("no unknown key was read live")
	}
}
