package access

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/client-go/kubernetes"
)

// Where the apiserver publishes the CA of the client certificates it accepts, as
// aggregated apiservers read it.
const (
	ClientCANamespace = "kube-system"
	ClientCAConfigMap = "extension-apiserver-authentication"
	clientCAKey       = "client-ca-file"
)

// Cache lifetimes of the delegated decisions: short, so a revoked RoleBinding stops
// new execs and log reads within seconds (an exec or a followed log already
// running is not cut, as with kubelet).
const (
	tokenCacheTTL  = 10 * time.Second
	allowCacheTTL  = 10 * time.Second
	denyCacheTTL   = 5 * time.Second
	webhookTimeout = 10 * time.Second
)

// webhookBackoff retries TokenReviews and SubjectAccessReviews briefly (the
// apiserver's own default for delegated auth).
func webhookBackoff() *wait.Backoff {
	return &wait.Backoff{Duration: 500 * time.Millisecond, Factor: 1.5, Jitter: 0.2, Steps: 5}
}

// Delegated is authentication and authorization by the apiserver. One is shared by
// the agent's servers, so that they share its caches and its client CA.
type Delegated struct {
	Authenticator authenticator.Request
	Authorizer    authorizer.Authorizer
	// run follows the client CA ConfigMap until ctx ends.
	run func(ctx context.Context)
	// caLoaded tells whether the client CA has been read.
	caLoaded func() bool
}

// clientCAWait bounds how long WaitForClientCA waits.
const clientCAWait = 10 * time.Second

// WaitForClientCA waits, after Run started, until the cluster's client CA is
// loaded, so that the first client certificates are not refused as missing
// credentials; false when it is not there within a few seconds (a cluster without
// one: tokens still work).
func (d *Delegated) WaitForClientCA(ctx context.Context) bool {
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, clientCAWait, true, func(context.Context) (bool, error) {
		return d.caLoaded != nil && d.caLoaded(), nil
	})
	return err == nil
}

// Run follows the cluster's client CA until ctx ends.
func (d *Delegated) Run(ctx context.Context) {
	if d.run != nil {
		d.run(ctx)
	}
}

// NewDelegated builds authentication by TokenReview and by client certificates
// against the cluster's client CA, and authorization by SubjectAccessReview. The
// client CA is read and followed by a watch once Run is called (a cluster without
// one accepts tokens only).
func NewDelegated(ctx context.Context, kube kubernetes.Interface) (*Delegated, error) {
	ca, err := dynamiccertificates.NewDynamicCAFromConfigMapController("berth-agent-client-ca", ClientCANamespace, ClientCAConfigMap, clientCAKey, kube)
	if err != nil {
		return nil, fmt.Errorf("client CA: %w", err)
	}
	authn, _, err := authenticatorfactory.DelegatingAuthenticatorConfig{
		TokenAccessReviewClient:            kube.AuthenticationV1(),
		TokenAccessReviewTimeout:           webhookTimeout,
		WebhookRetryBackoff:                webhookBackoff(),
		CacheTTL:                           tokenCacheTTL,
		ClientCertificateCAContentProvider: ca,
	}.New()
	if err != nil {
		return nil, fmt.Errorf("delegated authentication: %w", err)
	}
	authz, err := authorizerfactory.DelegatingAuthorizerConfig{
		SubjectAccessReviewClient: kube.AuthorizationV1(),
		AllowCacheTTL:             allowCacheTTL,
		DenyCacheTTL:              denyCacheTTL,
		WebhookRetryBackoff:       webhookBackoff(),
	}.New()
	if err != nil {
		return nil, fmt.Errorf("delegated authorization: %w", err)
	}
	return &Delegated{
		Authenticator: authn, Authorizer: authz,
		run:      func(ctx context.Context) { ca.Run(ctx, 1) },
		caLoaded: func() bool { _, ok := ca.VerifyOptions(); return ok },
	}, nil
}
