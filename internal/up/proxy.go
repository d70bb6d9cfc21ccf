package up

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// webProxy serves a core Service on a local port, as kube-proxy would in a cluster:
// it follows the Service's EndpointSlices (which Berth's endpoints controller
// writes: instance address and host port of each healthy task) and spreads
// requests round-robin over the ready endpoints on this machine. Endpoints on
// other instances (hollow ones only pretend to run) are not reachable from here.
type webProxy struct {
	ns, service string
	lister      discoverylisters.EndpointSliceLister
	local       map[string]bool
	next        atomic.Uint64
}

// startWebProxy serves service of ns on ln until ctx ends.
func startWebProxy(ctx context.Context, cfg *rest.Config, ns, service string, ln net.Listener) error {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	local, err := localAddresses()
	if err != nil {
		return err
	}
	f := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(ns),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.LabelSelector = discoveryv1.LabelServiceName + "=" + service
		}))
	inf := f.Discovery().V1().EndpointSlices()
	p := &webProxy{ns: ns, service: service, lister: inf.Lister(), local: local}
	inf.Informer() // registers the informer before Start
	f.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.Informer().HasSynced) {
		return fmt.Errorf("watching the EndpointSlices of Service %s/%s: %w", ns, service, ctx.Err())
	}
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		f.Shutdown()
	}()
	return nil
}

// localAddresses are the IP addresses of this machine's interfaces.
func localAddresses() (map[string]bool, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			out[ipn.IP.String()] = true
		}
	}
	return out, nil
}

// backends are the ready endpoints on this machine, as host:port.
func (p *webProxy) backends() []string {
	slices, err := p.lister.EndpointSlices(p.ns).List(labels.Everything())
	if err != nil {
		return nil
	}
	var out []string
	for _, s := range slices {
		if len(s.Ports) == 0 || s.Ports[0].Port == nil {
			continue
		}
		port := strconv.Itoa(int(*s.Ports[0].Port))
		for _, e := range s.Endpoints {
			if e.Conditions.Ready != nil && !*e.Conditions.Ready {
				continue
			}
			for _, a := range e.Addresses {
				if p.local[a] {
					out = append(out, net.JoinHostPort(a, port))
				}
			}
		}
	}
	return out
}

func (p *webProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	bs := p.backends()
	if len(bs) == 0 {
		http.Error(w, fmt.Sprintf("no ready task of Service %s/%s on this machine yet: kubectl get esvc,etask -n %s", p.ns, p.service, p.ns),
			http.StatusServiceUnavailable)
		return
	}
	target := &url.URL{Scheme: "http", Host: bs[p.next.Add(1)%uint64(len(bs))]}
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.SetXForwarded()
	}}
	w.Header().Set("X-Berth-Backend", target.Host)
	rp.ServeHTTP(w, r)
}
