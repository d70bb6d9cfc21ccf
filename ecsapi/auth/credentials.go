package auth

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"

	"golang.org/x/time/rate"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Credentials are Kubernetes Secrets in one namespace (the API server's), one per
// access key, named after the key so that a lookup is a single read by name.
const (
	// LabelCredential marks a Secret as an ECS API credential; the server watches
	// only Secrets with it.
	LabelCredential = "ecs.berth.dev/api-credential"
	// SecretType is the credential Secrets' type.
	SecretType corev1.SecretType = "ecs.berth.dev/api-credential"

	KeyAccessKeyID     = "accessKeyId"
	KeySecretAccessKey = "secretAccessKey"
	KeyNamespace       = "namespace"
	KeyUser            = "user"
	// KeyGroups are comma-separated.
	KeyGroups = "groups"
)

// SecretName is the name of the Secret holding an access key.
func SecretName(accessKeyID string) string {
	return "ecs-api-" + strings.ToLower(accessKeyID)
}

// Reads of keys the cache does not know, through the live client: a few a second is
// plenty for keys just created, and bounds what a flood of unknown keys (anyone can
// send them) costs the apiserver.
const (
	missReadsPerSecond = 5
	missReadsBurst     = 10
)

// SecretLookup reads credentials from Secrets in namespace through cached, which
// should be a cache watching labelled Secrets there: a request costs no apiserver
// read. A key the cache does not show is read through live (when not nil), at a
// bounded rate: the key `berth api credentials create` just printed works at once,
// before the watch brings its Secret, as a script that creates a key and uses it
// expects.
func SecretLookup(cached, live client.Reader, namespace string) Lookup {
	misses := rate.NewLimiter(missReadsPerSecond, missReadsBurst)
	return func(ctx context.Context, accessKeyID string) (*Credential, error) {
		if accessKeyID == "" || len(accessKeyID) > 128 {
			return nil, nil
		}
		key := client.ObjectKey{Namespace: namespace, Name: SecretName(accessKeyID)}
		s, err := getSecret(ctx, cached, key)
		if s == nil && err == nil && live != nil && misses.Allow() {
			s, err = getSecret(ctx, live, key)
		}
		if s == nil || err != nil {
			return nil, err
		}
		return FromSecret(s)
	}
}

// getSecret reads the Secret key through r: nil when there is none.
func getSecret(ctx context.Context, r client.Reader, key client.ObjectKey) (*corev1.Secret, error) {
	var s corev1.Secret
	if err := r.Get(ctx, key, &s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading credential: %w", err)
	}
	return &s, nil
}

// FromSecret reads a credential Secret; one without the label, a namespace or a user
// is no credential.
func FromSecret(s *corev1.Secret) (*Credential, error) {
	if s.Labels[LabelCredential] != "true" {
		return nil, nil
	}
	c := &Credential{
		AccessKeyID:     string(s.Data[KeyAccessKeyID]),
		SecretAccessKey: string(s.Data[KeySecretAccessKey]),
		Namespace:       string(s.Data[KeyNamespace]),
		User:            string(s.Data[KeyUser]),
	}
	if g := strings.TrimSpace(string(s.Data[KeyGroups])); g != "" {
		for _, group := range strings.Split(g, ",") {
			c.Groups = append(c.Groups, strings.TrimSpace(group))
		}
	}
	if c.AccessKeyID == "" || c.SecretAccessKey == "" || c.Namespace == "" || c.User == "" {
		return nil, nil
	}
	return c, nil
}

// NewCredential makes a key pair for namespace and user: an access key ID of 20
// characters from AWS's alphabet (uppercase and digits, starting BKIA so that it is
// never mistaken for an AWS key) and a 40-character secret.
func NewCredential(namespace, user string, groups []string) (*Credential, error) {
	id, err := randomString(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
	if err != nil {
		return nil, err
	}
	secret, err := randomString(40, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
	if err != nil {
		return nil, err
	}
	return &Credential{AccessKeyID: "BKIA" + id, SecretAccessKey: secret, Namespace: namespace, User: user, Groups: groups}, nil
}

func randomString(n int, alphabet string) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	for i := range b {
		// 32 and 64 divide 256: no modulo bias.
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b), nil
}

// Secret is the Secret that stores c in namespace.
func (c *Credential) Secret(namespace string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:      SecretName(c.AccessKeyID),
			Namespace: namespace,
			Labels:    map[string]string{LabelCredential: "true"},
		},
		Type: SecretType,
		StringData: map[string]string{
			KeyAccessKeyID:     c.AccessKeyID,
			KeySecretAccessKey: c.SecretAccessKey,
			KeyNamespace:       c.Namespace,
			KeyUser:            c.User,
			KeyGroups:          strings.Join(c.Groups, ","),
		},
	}
}
