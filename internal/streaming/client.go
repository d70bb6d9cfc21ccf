package streaming

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/streaming/pkg/httpstream"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/kube"
)

// Client execs in tasks and reads their logs through the agents' streaming servers.
type Client struct {
	cfg    *rest.Config
	reader client.Reader
}

// NewClient returns a client that connects to agents as cfg's identity (its client
// certificate or bearer token; never impersonation, which an agent does not
// honour) and reads Tasks and ContainerInstances through reader.
func NewClient(cfg *rest.Config, reader client.Reader) *Client {
	return &Client{cfg: cfg, reader: reader}
}

// ExecOptions say what to run where, with which streams.
type ExecOptions struct {
	Namespace, Task string
	// Container may be empty when the task has exactly one container.
	Container string
	Command   []string
	// TTY gives the command a terminal; its output then all comes on Stdout.
	TTY bool
	// Stdin, Stdout and Stderr are optional.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Resize delivers the terminal's size (TTY only); optional.
	Resize remotecommand.TerminalSizeQueue
}

// Exec runs o.Command in the task's container and returns when it exits: nil for
// exit code 0, an error satisfying k8s.io/client-go/util/exec.ExitError (its
// ExitStatus()) for another. A caller whom RBAC does not let exec gets an error for
// which apierrors.IsForbidden is true.
func (c *Client) Exec(ctx context.Context, o ExecOptions) error {
	if len(o.Command) == 0 || o.Command[0] == "" {
		return errors.New("exec: command must not be empty")
	}
	t, ep, err := c.endpoint(ctx, o.Namespace, o.Task)
	if err != nil {
		return err
	}
	container, err := PickContainer(t, o.Container)
	if err != nil {
		return err
	}
	rc, err := c.agentConfig(ep)
	if err != nil {
		return err
	}
	u, err := url.Parse(ep.URL + ExecPath(o.Namespace, o.Task))
	if err != nil {
		return fmt.Errorf("streaming endpoint %q: %w", ep.URL, err)
	}
	q := url.Values{ParamContainer: {container}, ParamCommand: o.Command}
	q.Set(ParamStdin, strconv.FormatBool(o.Stdin != nil))
	q.Set(ParamStdout, strconv.FormatBool(o.Stdout != nil))
	q.Set(ParamStderr, strconv.FormatBool(o.Stderr != nil && !o.TTY))
	q.Set(ParamTTY, strconv.FormatBool(o.TTY))
	u.RawQuery = q.Encode()
	exec, err := executor(rc, u)
	if err != nil {
		return err
	}
	opts := remotecommand.StreamOptions{Stdin: o.Stdin, Stdout: o.Stdout, Stderr: o.Stderr, Tty: o.TTY, TerminalSizeQueue: o.Resize}
	if o.TTY {
		opts.Stderr = nil
	}
	return statusCause(exec.StreamWithContext(ctx, opts))
}

// executor speaks websockets (v5.channel.k8s.io) and falls back to SPDY when the
// upgrade fails, as kubectl does; an answer that is a Status (401, 403, 409) is
// final, not a reason to try the other protocol.
func executor(rc *rest.Config, u *url.URL) (remotecommand.Executor, error) {
	ws, err := remotecommand.NewWebSocketExecutor(rc, http.MethodGet, u.String())
	if err != nil {
		return nil, err
	}
	spdy, err := remotecommand.NewSPDYExecutor(rc, http.MethodPost, u)
	if err != nil {
		return nil, err
	}
	return remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		var se *apierrors.StatusError
		return (httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)) && !errors.As(upgradeCause(err), &se)
	})
}

// upgradeCause is the cause of a failed upgrade.
func upgradeCause(err error) error {
	var ufe *httpstream.UpgradeFailureError
	if errors.As(err, &ufe) {
		return ufe.Cause
	}
	return nil
}

// statusCause returns the server's Status when a websocket upgrade was refused
// with one, so that apierrors.IsForbidden and friends see it.
func statusCause(err error) error {
	var se *apierrors.StatusError
	if cause := upgradeCause(err); cause != nil && errors.As(cause, &se) {
		return se
	}
	return err
}

// Logs returns the container's log, its last tail lines (all of it when tail is
// negative). A caller without get on tasks/log gets an error for which
// apierrors.IsForbidden is true.
func (c *Client) Logs(ctx context.Context, namespace, task, container string, tail int) ([]byte, error) {
	t, ep, err := c.endpoint(ctx, namespace, task)
	if err != nil {
		return nil, err
	}
	if container, err = PickContainer(t, container); err != nil {
		return nil, err
	}
	rc, err := c.agentConfig(ep)
	if err != nil {
		return nil, err
	}
	hc, err := rest.HTTPClientFor(rc)
	if err != nil {
		return nil, err
	}
	u := ep.URL + LogsPath(namespace, task, container)
	if tail >= 0 {
		u += "?" + url.Values{ParamTail: {strconv.Itoa(tail)}}.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reading the log of container %s of task %s/%s: %w", container, namespace, task, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, responseError(resp.StatusCode, body)
	}
	return body, nil
}

// responseError is the Status the agent answered with, or a generic error.
func responseError(code int, body []byte) error {
	st := &metav1.Status{}
	codecs := serializer.NewCodecFactory(kube.Scheme)
	if obj, _, err := codecs.UniversalDeserializer().Decode(body, nil, st); err == nil {
		if s, ok := obj.(*metav1.Status); ok && s.Status == metav1.StatusFailure {
			return &apierrors.StatusError{ErrStatus: *s}
		}
	}
	return apierrors.NewGenericServerResponse(code, http.MethodGet, ecsv1alpha1.GroupVersion.WithResource("tasks").GroupResource(), "", string(body), 0, false)
}

// Containers lists the names of the task's containers.
func (c *Client) Containers(ctx context.Context, namespace, task string) ([]string, error) {
	t := &ecsv1alpha1.Task{}
	if err := c.reader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: task}, t); err != nil {
		return nil, err
	}
	return ContainerNames(t), nil
}

// endpoint reads the task and the streaming endpoint of the instance it runs on.
func (c *Client) endpoint(ctx context.Context, namespace, task string) (*ecsv1alpha1.Task, *ecsv1alpha1.StreamingEndpoint, error) {
	t := &ecsv1alpha1.Task{}
	if err := c.reader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: task}, t); err != nil {
		return nil, nil, err
	}
	if t.Spec.ContainerInstance == "" {
		return nil, nil, fmt.Errorf("task %s/%s is not placed on a container instance yet", namespace, task)
	}
	ci := &ecsv1alpha1.ContainerInstance{}
	if err := c.reader.Get(ctx, types.NamespacedName{Name: t.Spec.ContainerInstance}, ci); err != nil {
		return nil, nil, fmt.Errorf("container instance %s of task %s/%s: %w", t.Spec.ContainerInstance, namespace, task, err)
	}
	ep := ci.Status.StreamingEndpoint
	if ep == nil || ep.URL == "" {
		return nil, nil, fmt.Errorf("container instance %s publishes no streaming endpoint: its agent runs without --streaming-address "+
			"(or is a hollow agent, which never serves exec)", ci.Name)
	}
	return t, ep, nil
}

// agentConfig is cfg's credentials aimed at the agent, trusting only the CA bundle
// the agent published.
func (c *Client) agentConfig(ep *ecsv1alpha1.StreamingEndpoint) (*rest.Config, error) {
	if c.cfg.Impersonate.UserName != "" || len(c.cfg.Impersonate.Groups) > 0 {
		return nil, errors.New("exec and logs go to the agent as the caller's own identity; impersonation is not supported")
	}
	return &rest.Config{
		Host:      ep.URL,
		UserAgent: c.cfg.UserAgent,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   []byte(ep.CABundle),
			CertFile: c.cfg.CertFile, KeyFile: c.cfg.KeyFile, CertData: c.cfg.CertData, KeyData: c.cfg.KeyData,
		},
		BearerToken: c.cfg.BearerToken, BearerTokenFile: c.cfg.BearerTokenFile,
		ExecProvider: c.cfg.ExecProvider, AuthProvider: c.cfg.AuthProvider, AuthConfigPersister: c.cfg.AuthConfigPersister,
		WrapTransport: c.cfg.WrapTransport,
		QPS:           c.cfg.QPS, Burst: c.cfg.Burst,
	}, nil
}
