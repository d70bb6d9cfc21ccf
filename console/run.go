package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// DefaultAddress is where `berth console` listens unless told otherwise.
const DefaultAddress = "127.0.0.1:8484"

// RunOptions configures Run.
type RunOptions struct {
	// Config is the caller's identity (their kubeconfig).
	Config *rest.Config
	// Address is host:port to listen on; the host must be a loopback address.
	Address string
	// TokenFile, when set, receives the access token (mode 0600), for scripts and
	// `berth up`.
	TokenFile string
	// NewAgent builds the agent client from the caller's identity and the console's
	// cache; nil runs without exec and container logs.
	NewAgent func(cfg *rest.Config, s *Server) (Agent, error)
	// Out receives the console's URL.
	Out io.Writer
	Log logr.Logger
}

// ValidateAddress refuses any address but a loopback one: the console acts with
// the caller's credentials and must not be reachable from other machines.
func ValidateAddress(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--address: %q is not host:port: %w", addr, err)
	}
	if port == "" {
		return fmt.Errorf("--address: %q has no port", addr)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--address: %q is not a loopback address: the console acts with your Kubernetes credentials, so it only listens on 127.0.0.1, ::1 or localhost (reach it from elsewhere through an SSH tunnel)", host)
	}
	return nil
}

// Run serves the console until ctx ends.
func Run(ctx context.Context, o RunOptions) error {
	if err := ValidateAddress(o.Address); err != nil {
		return err
	}
	token, err := NewToken()
	if err != nil {
		return err
	}
	s, err := New(ctx, Options{Config: o.Config, Token: token, Log: o.Log})
	if err != nil {
		return err
	}
	if o.NewAgent != nil {
		if s.agent, err = o.NewAgent(o.Config, s); err != nil {
			return fmt.Errorf("creating the agent client: %w", err)
		}
	}
	ln, err := net.Listen("tcp", o.Address)
	if err != nil {
		return fmt.Errorf("--address: %w", err)
	}
	if o.TokenFile != "" {
		if err := writeTokenFile(o.TokenFile, token); err != nil {
			_ = ln.Close()
			return err
		}
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	_, _ = fmt.Fprintf(o.Out, "Berth console: http://%s/?token=%s\n", ln.Addr().String(), token)
	o.Log.Info("serving the console", "address", ln.Addr().String())
	go func() {
		<-ctx.Done()
		shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutCtx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return ctx.Err()
}

// Reader is the console's informer cache, for an agent client that needs to read
// Tasks and ContainerInstances (internal/streaming finds a task's agent that way).
func (s *Server) Reader() client.Reader { return s.reader }

func writeTokenFile(path, token string) error {
	// Remove first so an existing file's wider mode is not kept.
	_ = os.Remove(path)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("--token-file: %w", err)
	}
	if _, err := f.WriteString(token + "\n"); err != nil {
		_ = f.Close()
		return fmt.Errorf("--token-file: %w", err)
	}
	return f.Close()
}
