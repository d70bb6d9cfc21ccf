package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berthdev/berth/internal/taskrules"
)

// RESTConfig is the agent's identity cfg aimed at the gateway at url, trusting the
// CA in caFile: for the agent's cache, whose lists and watches go through the
// gateway, and for Client.
func RESTConfig(cfg *rest.Config, url, caFile string) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Host = url
	c.CAFile, c.CAData = caFile, nil
	c.ServerName, c.Insecure = "", false
	return c
}

// Client reads Secrets and ConfigMaps for an agent's tasks through the gateway.
type Client struct {
	base string
	http *http.Client
}

// NewClient connects as cfg, a RESTConfig.
func NewClient(cfg *rest.Config) (*Client, error) {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("the gateway's client: %w", err)
	}
	return &Client{base: strings.TrimSuffix(cfg.Host, "/"), http: hc}, nil
}

// ForTask reads what task ns/task references: Get of a Secret or ConfigMap in ns.
// It lists nothing.
func (c *Client) ForTask(ns, task string) client.Reader { return taskReader{c: c, ns: ns, task: task} }

type taskReader struct {
	c        *Client
	ns, task string
}

func (r taskReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	var kind string
	switch obj.(type) {
	case *corev1.Secret:
		kind = taskrules.KindSecret
	case *corev1.ConfigMap:
		kind = taskrules.KindConfigMap
	default:
		return fmt.Errorf("the gateway serves Secrets and ConfigMaps, not %T", obj)
	}
	if key.Namespace != r.ns {
		return fmt.Errorf("task %s/%s reads only its own namespace's %ss, not %s", r.ns, r.task, kind, key)
	}
	path, err := ObjectPath(r.ns, r.task, kind, key.Name)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.c.base+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := r.c.http.Do(req)
	if err != nil {
		return fmt.Errorf("reading %s %s through the manager's gateway: %w", kind, key, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return statusError(resp.StatusCode, body)
	}
	return json.Unmarshal(body, obj)
}

func (r taskReader) List(context.Context, client.ObjectList, ...client.ListOption) error {
	return errors.New("the gateway lists no Secrets or ConfigMaps")
}

// statusError turns a refusal into the apierrors.StatusError it encodes, so that
// apierrors.IsNotFound and IsForbidden work on it as on the apiserver's.
func statusError(code int, body []byte) error {
	var st metav1.Status
	if err := json.Unmarshal(body, &st); err != nil || st.Kind != "Status" {
		return apierrors.NewGenericServerResponse(code, http.MethodGet, schema.GroupResource{}, "", strings.TrimSpace(string(body)), 0, false)
	}
	return &apierrors.StatusError{ErrStatus: st}
}
