package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/certwatcher"

	"github.com/berthdev/berth/internal/access"
)

// Files of the serving certificate in a certificate directory, as
// kubernetes.io/tls Secrets name them.
const (
	CertFile = "tls.crt"
	KeyFile  = "tls.key"
)

// Listener serves a Server over TLS. It is a controller-runtime Runnable that runs
// on every manager replica, not only the leader: agents read through any of them.
type Listener struct {
	ln      net.Listener
	certDir string
	handler http.Handler
	auth    *access.Delegated
}

// Listen binds addr now, so that a port taken fails the manager's start and ":0"
// has its port known (Addr).
func Listen(addr, certDir string, handler http.Handler, auth *access.Delegated) (*Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--gateway-bind-address %s: %w", addr, err)
	}
	return &Listener{ln: ln, certDir: certDir, handler: handler, auth: auth}, nil
}

// Addr is the bound address.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// NeedLeaderElection is false: every replica serves.
func (l *Listener) NeedLeaderElection() bool { return false }

// Start serves until ctx ends. The certificate is read again when its files change
// (a renewed Secret mounted in the manager's pod).
func (l *Listener) Start(ctx context.Context) error {
	cw, err := certwatcher.New(filepath.Join(l.certDir, CertFile), filepath.Join(l.certDir, KeyFile))
	if err != nil {
		_ = l.ln.Close()
		return fmt.Errorf("the gateway's certificate (--gateway-cert-dir %s): %w", l.certDir, err)
	}
	go func() { _ = cw.Start(ctx) }()
	go l.auth.Run(ctx)
	l.auth.WaitForClientCA(ctx)
	srv := &http.Server{
		Handler:           l.handler,
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: cw.GetCertificate,
			// Agents with a client certificate present it; tokens need none.
			ClientAuth: tls.RequestClientCert,
		},
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.ServeTLS(l.ln, "", ""); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	<-done
	return nil
}
