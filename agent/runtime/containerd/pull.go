package containerd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	ctrd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/core/remotes/docker/config"
	remoteerrors "github.com/containerd/containerd/v2/core/remotes/errors"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/go-logr/logr"

	"github.com/berthdev/berth/agent/runtime"
)

// imageLabelPulled marks image records that this agent pulled itself (its value is
// the time of the pull), which is what PullOnce trusts.
const imageLabelPulled = runtime.LabelPrefix + "pulled-at"

// NormalizeRef returns the full form of an image reference
// (nginx -> docker.io/library/nginx:latest), or a *runtime.ReferenceError.
func NormalizeRef(ref string) (reference.Named, error) {
	named, err := reference.ParseDockerRef(ref)
	if err != nil {
		return nil, &runtime.ReferenceError{Ref: ref, Err: err}
	}
	return named, nil
}

// Pull makes ref available according to policy; see runtime.PullPolicy.
func (r *Runtime) Pull(ctx context.Context, ref string, policy runtime.PullPolicy, auth *runtime.Auth) (runtime.Image, error) {
	if !policy.Valid() {
		return runtime.Image{}, fmt.Errorf("unknown pull policy %q", policy)
	}
	if policy == "" {
		policy = runtime.PullDefault
	}
	named, err := NormalizeRef(ref)
	if err != nil {
		return runtime.Image{}, err
	}
	ctx = r.withNamespace(ctx)
	log := logr.FromContextOrDiscard(ctx).WithValues(logImage, named.String(), logPullPolicy, string(policy))
	name := named.String()
	// The lease keeps what the pull (or the unpack of a cached image) writes until
	// the image record references it.
	ctx, done, err := r.withLease(ctx)
	if err != nil {
		return runtime.Image{}, err
	}
	defer func() { _ = done(context.WithoutCancel(ctx)) }()

	cached, haveCached := r.cachedImage(ctx, name)
	if haveCached && !r.creds.mayReuse(name, cached.Labels(), auth) {
		// Pulled with other credentials: only a pull with this task's own may
		// serve it, and a failed one must not fall back to the cache.
		log.V(1).Info("cached image was pulled with other credentials: pulling")
		haveCached = false
	}
	switch {
	case policy == runtime.PullPreferCached && haveCached,
		policy == runtime.PullOnce && haveCached && cached.Labels()[imageLabelPulled] != "":
		log.V(1).Info("using cached image")
		return r.imageInfo(cached, true, nil), nil
	}

	start := time.Now()
	img, err := r.pull(ctx, named, auth)
	if err == nil {
		r.creds.remember(name, auth)
		log.V(1).Info("pulled image", logDigest, img.Target().Digest.String(), logDuration, time.Since(start).String())
		return r.imageInfo(img, false, nil), nil
	}
	if policy == runtime.PullDefault && haveCached {
		log.Info("pull failed, using the cached image", logReason, err.Error())
		return r.imageInfo(cached, true, err), nil
	}
	return runtime.Image{}, err
}

func (r *Runtime) imageInfo(img ctrd.Image, cached bool, pullErr error) runtime.Image {
	r.used.mark(img.Name())
	return runtime.Image{
		Ref:       img.Name(),
		Digest:    img.Target().Digest.String(),
		Cached:    cached,
		PullError: pullErr,
	}
}

// cachedImage returns the local image name if it exists and is unpacked (or can be
// unpacked) for the runtime's snapshotter.
func (r *Runtime) cachedImage(ctx context.Context, name string) (ctrd.Image, bool) {
	img, err := r.client.GetImage(ctx, name)
	if err != nil {
		return nil, false
	}
	if ok, err := img.IsUnpacked(ctx, r.snapshotter); err == nil && ok {
		return img, true
	}
	// The record exists but its layers are not unpacked (or content is missing): try
	// once, and treat failure as "not cached".
	if err := img.Unpack(ctx, r.snapshotter); err != nil {
		logr.FromContextOrDiscard(ctx).V(1).Info("cached image is not usable", logImage, name, logReason, err.Error())
		return nil, false
	}
	return img, true
}

// pull fetches and unpacks named from its registry.
func (r *Runtime) pull(ctx context.Context, named reference.Named, auth *runtime.Auth) (ctrd.Image, error) {
	name := named.String()
	rec := &recorder{}
	labels := map[string]string{imageLabelPulled: time.Now().UTC().Format(time.RFC3339)}
	if auth != nil {
		labels[imageLabelPrivate] = "true"
	}
	// The labels replace the record's: an anonymous pull that succeeds makes the
	// image public again.
	img, err := r.client.Pull(ctx, name,
		ctrd.WithResolver(r.resolver(ctx, auth, rec)),
		ctrd.WithPullUnpack,
		ctrd.WithPullSnapshotter(r.snapshotter),
		ctrd.WithPullLabels(labels),
	)
	if err != nil {
		return nil, classifyPullError(ctx, name, err, rec)
	}
	return img, nil
}

// resolver resolves and fetches through containerd's docker resolver with host
// configuration from HostsDir. A resolver serves one pull, so the registry hosts it
// asks credentials for are the image's registry and the mirrors that the operator's
// hosts.toml lists for that registry, never anything else.
func (r *Runtime) resolver(ctx context.Context, auth *runtime.Auth, rec *recorder) remotes.Resolver {
	opts := config.HostOptions{
		HostDir: config.HostDirFromRoot(r.hostsDir),
		Credentials: func(string) (string, string, error) {
			if auth == nil {
				return "", "", nil
			}
			return auth.Username, auth.Password, nil
		},
		UpdateClient: func(c *http.Client) error {
			c.Transport = rec.wrap(c.Transport)
			return nil
		},
	}
	return docker.NewResolver(docker.ResolverOptions{Hosts: config.ConfigureHosts(ctx, opts)})
}

// recorder remembers the last registry response with an error status, so a failed
// pull can say what the registry answered. Responses to HEAD have no body; for those
// the request is kept so that describe can repeat it as a GET.
type recorder struct {
	mu   sync.Mutex
	last *failedResponse
}

type failedResponse struct {
	req    *http.Request // kept in memory only: its headers can carry credentials
	via    http.RoundTripper
	status string
	code   int
	body   []byte
}

func (rec *recorder) wrap(next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := next.RoundTrip(req)
		if err != nil || resp.StatusCode < 400 {
			return resp, err
		}
		f := &failedResponse{req: req, via: next, status: resp.Status, code: resp.StatusCode}
		if req.Method != http.MethodHead && resp.Body != nil {
			// Keep the body for the caller too.
			f.body, _ = io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			_ = resp.Body.Close()
			resp.Body = io.NopCloser(bytes.NewReader(f.body))
		}
		rec.mu.Lock()
		rec.last = f
		rec.mu.Unlock()
		return resp, nil
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// describe returns "401 Unauthorized: authentication required" for the last failed
// response, repeating a failed HEAD as a GET (once, and only after the pull has
// failed) to read the registry's error message.
func (rec *recorder) describe(ctx context.Context) (code int, reason string) {
	rec.mu.Lock()
	f := rec.last
	rec.mu.Unlock()
	if f == nil {
		return 0, ""
	}
	body := f.body
	if f.req.Method == http.MethodHead && f.req.URL != nil {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.req.URL.String(), nil)
		if err == nil {
			req.Header = f.req.Header.Clone()
			c := &http.Client{Transport: f.via, Timeout: 10 * time.Second}
			if resp, err := c.Do(req); err == nil {
				if resp.StatusCode == f.code {
					body, _ = io.ReadAll(io.LimitReader(resp.Body, 64<<10))
				}
				_ = resp.Body.Close() // a read-only body: nothing is lost if closing fails
			}
		}
	}
	reason = f.status
	if msg := registryMessage(body); msg != "" {
		reason += ": " + msg
	}
	return f.code, reason
}

// registryMessage extracts the messages of a distribution error body
// {"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown",...}]}.
func registryMessage(body []byte) string {
	var e struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if len(body) == 0 || json.Unmarshal(body, &e) != nil {
		return ""
	}
	var msgs []string
	for _, x := range e.Errors {
		m := x.Message
		if m == "" {
			m = strings.ToLower(strings.ReplaceAll(x.Code, "_", " "))
		}
		if m != "" {
			msgs = append(msgs, m)
		}
	}
	return strings.Join(msgs, "; ")
}

// classifyPullError turns a containerd pull error into a *runtime.ImageError whose
// Reason is what the registry (or the network) said.
func classifyPullError(ctx context.Context, ref string, err error, rec *recorder) error {
	ie := &runtime.ImageError{Ref: ref, Kind: runtime.ImageFailed, Reason: err.Error(), Err: err}
	if classifyWithoutRegistry(ctx, ie) {
		return ie
	}
	code, reason := registryStatus(ctx, err, rec)
	if reason != "" {
		ie.Reason = reason
	}
	switch {
	case code == http.StatusUnauthorized || code == http.StatusForbidden || errors.Is(err, docker.ErrInvalidAuthorization):
		ie.Kind = runtime.ImageUnauthorized
	case code == http.StatusNotFound || errdefs.IsNotFound(err):
		ie.Kind = runtime.ImageNotFound
	case code == http.StatusTooManyRequests || code >= 500:
		ie.Kind = runtime.ImageUnavailable
	}
	return ie
}

// classifyWithoutRegistry sets the kind (and reason) of ie for failures that are not
// a registry's answer: an interrupted pull, a network error, an unsupported image. It
// reports whether ie.Err was one of them.
func classifyWithoutRegistry(ctx context.Context, ie *runtime.ImageError) bool {
	err := ie.Err
	var (
		opErr  *net.OpError
		netErr net.Error
	)
	switch {
	case ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)):
		ie.Kind, ie.Reason = runtime.ImageUnavailable, "pull interrupted: "+ctx.Err().Error()
	case errors.As(err, &opErr):
		ie.Kind, ie.Reason = runtime.ImageUnavailable, opErr.Error()
	case errors.As(err, &netErr):
		ie.Kind, ie.Reason = runtime.ImageUnavailable, netErr.Error()
	case strings.Contains(err.Error(), "no match for platform"),
		strings.Contains(err.Error(), "media type") && strings.Contains(err.Error(), "no longer supported"):
		ie.Kind = runtime.ImageUnsupported
	default:
		return false
	}
	return true
}

// registryStatus returns the HTTP status code and reason of the registry response
// that failed the pull: the recorder's last failed response, else the unexpected
// status in err. It returns 0 and "" when neither is known.
func registryStatus(ctx context.Context, err error, rec *recorder) (code int, reason string) {
	code, reason = rec.describe(ctx)
	var unexpected remoteerrors.ErrUnexpectedStatus
	if code == 0 && errors.As(err, &unexpected) {
		code, reason = unexpected.StatusCode, unexpected.Status
		if msg := registryMessage(unexpected.Body); msg != "" {
			reason += ": " + msg
		}
	}
	return code, reason
}
