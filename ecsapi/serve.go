package ecsapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/berthdev/berth/ecsapi/auth"
	"github.com/berthdev/berth/internal/kube"
)

// Auth modes of `berth api`.
const (
	AuthSigV4 = "sigv4"
	AuthNone  = "none"
)

// RunOptions are `berth api`'s flags.
type RunOptions struct {
	Config
	Kubeconfig string
	QPS        float64
	Burst      int
	// Listen is the address to serve on; TLS when both files are set.
	Listen      string
	TLSCertFile string
	TLSKeyFile  string
	// Auth is sigv4 (the default) or none.
	Auth string
	// CredentialsNamespace holds the credential Secrets (sigv4).
	CredentialsNamespace string
	// Namespace is every call's namespace with --auth=none.
	Namespace string
	// Ready, when set, is called with the address served once it listens (tests and
	// `berth up` listen on port 0).
	Ready func(addr string)
}

var accountPattern = regexp.MustCompile(`^[0-9]{12}$`)

// Validate checks the options, naming the flag at fault.
func (o *RunOptions) Validate() error {
	switch {
	case o.Region == "":
		return errors.New("--region must not be empty")
	case !accountPattern.MatchString(o.AccountID):
		return fmt.Errorf("--account-id must be 12 digits, as AWS account IDs are; got %q", o.AccountID)
	case o.Auth != AuthSigV4 && o.Auth != AuthNone:
		return fmt.Errorf("--auth must be %s or %s, got %q", AuthSigV4, AuthNone, o.Auth)
	case o.Auth == AuthSigV4 && o.CredentialsNamespace == "":
		return errors.New("--credentials-namespace must name the namespace of the credential Secrets")
	case o.Auth == AuthNone && o.Namespace == "":
		return errors.New("--namespace must name the namespace calls act in with --auth=none")
	case (o.TLSCertFile == "") != (o.TLSKeyFile == ""):
		return errors.New("--tls-cert-file and --tls-private-key-file go together")
	}
	return nil
}

// Run serves the API until ctx ends.
func Run(ctx context.Context, o RunOptions) error {
	if err := o.Validate(); err != nil {
		return err
	}
	logger := log.FromContext(ctx).WithName("ecs-api")
	cfg, err := kube.RESTConfig(o.Kubeconfig, o.QPS, o.Burst)
	if err != nil {
		return err
	}
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return err
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, httpClient)
	if err != nil {
		return fmt.Errorf("discovering the apiserver's resources: %w", err)
	}
	self, err := client.New(cfg, client.Options{Scheme: kube.Scheme, Mapper: mapper, HTTPClient: httpClient})
	if err != nil {
		return err
	}
	opts := Options{Config: o.Config, RESTConfig: cfg, Self: self, Mapper: mapper, AnonymousNamespace: o.Namespace, Log: logger}
	if o.Auth == AuthSigV4 {
		// Credentials come from a watch of the labelled Secrets of one namespace:
		// a request reads the cache, and a revoked key stops working as soon as
		// its Secret's deletion is seen; a key the cache does not know yet is read
		// through the API's own client, at a bounded rate.
		secrets, err := cache.New(cfg, cache.Options{
			Scheme: kube.Scheme, Mapper: mapper,
			DefaultNamespaces: map[string]cache.Config{o.CredentialsNamespace: {}},
			ByObject: map[client.Object]cache.ByObject{&corev1.Secret{}: {
				Label: labels.SelectorFromSet(labels.Set{auth.LabelCredential: "true"}),
			}},
		})
		if err != nil {
			return err
		}
		go func() { _ = secrets.Start(ctx) }()
		if _, err := secrets.GetInformer(ctx, &corev1.Secret{}); err != nil {
			return err
		}
		if !secrets.WaitForCacheSync(ctx) {
			return errors.New("credential Secrets never synced")
		}
		opts.Lookup = auth.SecretLookup(secrets, self, o.CredentialsNamespace)
	} else {
		logger.Info("authentication is off (--auth=none): every call acts as the server's own identity", "namespace", o.Namespace)
	}
	srv := New(opts)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.Handle("GET /metrics", srv.MetricsHandler())
	mux.Handle("/", srv)
	lis, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	logger.Info("serving the ECS API", "address", lis.Addr().String(), "tls", o.TLSCertFile != "", "auth", o.Auth,
		"region", o.Region, "account", o.AccountID)
	if o.Ready != nil {
		o.Ready(lis.Addr().String())
	}
	errc := make(chan error, 1)
	go func() {
		if o.TLSCertFile != "" {
			errc <- hs.ServeTLS(lis, o.TLSCertFile, o.TLSKeyFile)
		} else {
			errc <- hs.Serve(lis)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return hs.Shutdown(shutdown)
	}
}
