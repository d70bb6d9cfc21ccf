package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/agentidentity"
	"github.com/berthdev/berth/internal/gateway"
	"github.com/berthdev/berth/internal/manager"
)

// gatewayInstance is the container instance whose agent reads in GatewayRead.
const gatewayInstance = "gw-1"

// runGateway measures GatewayRead: what an agent's read of its task's Secret through
// the manager's gateway costs, against the same Secret read directly from the
// apiserver (what an agent did before the gateway), in alternating pairs; the writes
// the reads cause; and the time from a task's binding to its Secret being readable
// by its agent. The gateway runs as `berth manager --controllers=false` does, in
// this process, authenticating a real ServiceAccount token of the agent.
func runGateway(ctx context.Context, r *runner, l *lab) (*outcome, error) {
	gw, err := startGateway(ctx, r, l)
	if err != nil {
		return nil, err
	}
	if err := gatewayObjects(ctx, l); err != nil {
		return nil, err
	}
	agentCfg, err := agentTokenConfig(ctx, l)
	if err != nil {
		return nil, err
	}
	gc, err := gateway.NewClient(gateway.RESTConfig(agentCfg, gw.url, gw.caFile))
	if err != nil {
		return nil, err
	}
	key := client.ObjectKey{Namespace: benchNamespace, Name: "db"}
	viaGateway := func(ctx context.Context) error {
		return gc.ForTask(benchNamespace, "t-0").Get(ctx, key, &corev1.Secret{})
	}
	direct := func(ctx context.Context) error { return l.c.Get(ctx, key, &corev1.Secret{}) }
	for range 20 { // warm: connections, the token's review, the revision's decoding
		if err := viaGateway(ctx); err != nil {
			return nil, fmt.Errorf("reading through the gateway: %w", err)
		}
	}

	n := r.size.n(2000, 200)
	servers := l.processes(nil)
	p := newPairedCalls(servers, servers, n)
	before, err := mutatingRequests(ctx, l.cfg)
	if err != nil {
		return nil, err
	}
	if err := p.run(ctx, n, viaGateway, direct); err != nil {
		return nil, err
	}
	after, err := mutatingRequests(ctx, l.cfg)
	if err != nil {
		return nil, err
	}
	out := &outcome{}
	what := fmt.Sprintf("%d direct GETs of the same Secret from the apiserver, alternating", n)
	out.figures = append(out.figures,
		p.latencyFigure(GatewayRead, what, fmt.Sprintf("%d reads of a task's Secret by its agent through the gateway (TLS, its token reviewed and cached, the task and revision checked, the Secret read live).", n)),
		p.cpuFigure(GatewayRead, what, "CPU per read of the apiserver, etcd and this process (the gateway and the harness)."))
	writes := diff(before, after)
	// The only writes a read can cause are TokenReviews (the gateway asking who the
	// token is; cached 10 s): the gateway writes nothing itself.
	out.note("apiserver writes during the %d gateway reads and %d direct ones: %s", n, n, describeCounts(writes))

	fig, err := placementToSecret(ctx, r, l, gc)
	if err != nil {
		return out, err
	}
	out.figures = append(out.figures, fig)
	return out, nil
}

// placementToSecret binds tasks to the gateway's instance, as the scheduler does,
// and times each until its agent reads its Secret through the gateway; baseline:
// the create of the bound task itself.
func placementToSecret(ctx context.Context, r *runner, l *lab, gc *gateway.Client) (Figure, error) {
	m := r.size.n(200, 20)
	toSecret, creates := make([]time.Duration, 0, m), make([]time.Duration, 0, m)
	key := client.ObjectKey{Namespace: benchNamespace, Name: "db"}
	for i := range m {
		name := fmt.Sprintf("placed-%04d", i)
		start := time.Now()
		if err := l.c.Create(ctx, boundGatewayTask(name)); err != nil {
			return Figure{}, err
		}
		creates = append(creates, time.Since(start))
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := gc.ForTask(benchNamespace, name).Get(ctx, key, &corev1.Secret{})
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				return Figure{}, fmt.Errorf("task %s's Secret not readable after 10 s: %w", name, err)
			}
			time.Sleep(time.Millisecond)
		}
		toSecret = append(toSecret, time.Since(start))
	}
	return Figure{Metric: GatewayRead, Name: "PlacementToSecret", Unit: "ms",
		Values:   Summary(Millis(toSecret)),
		Baseline: Baseline{What: "the create of the bound task itself", Unit: "ms", Values: Summary(Millis(creates))},
		Note:     fmt.Sprintf("%d tasks created bound to the agent's instance, one at a time; from the create's start until the agent's first read of the task's Secret through the gateway succeeds.", m),
	}, nil
}

// gatewayServer is the gateway of a scenario.
type gatewayServer struct{ url, caFile string }

// startGateway runs internal/manager with the gateway only, on a free loopback port
// with a fresh certificate.
func startGateway(ctx context.Context, r *runner, l *lab) (*gatewayServer, error) {
	dir := r.workFile("gateway")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	crt, key, err := certutil.GenerateSelfSignedCertKey("127.0.0.1", nil, nil)
	if err != nil {
		return nil, err
	}
	if err := errors.Join(os.WriteFile(filepath.Join(dir, gateway.CertFile), crt, 0o600),
		os.WriteFile(filepath.Join(dir, gateway.KeyFile), key, 0o600)); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	_ = ln.Close() // the gateway binds it again at once
	err = l.startManager(ctx, func(o *manager.Options) {
		o.RunControllers = false
		o.Gateway = manager.GatewayOptions{BindAddress: addr, CertDir: dir, DaemonSetUser: agentidentity.DefaultDaemonSetUser}
	})
	if err != nil {
		return nil, err
	}
	return &gatewayServer{url: "https://" + addr, caFile: filepath.Join(dir, gateway.CertFile)}, nil
}

// gatewayObjects are the Secret the agent reads, the revision that references it
// and the first task bound to the agent's instance.
func gatewayObjects(ctx context.Context, l *lab) error {
	spec := ecsv1alpha1.TaskDefinitionSpec{ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{{
		Name: "app", Image: "bench/app:1",
		Secrets: []ecsv1alpha1.SecretVariable{{Name: "DB_PASSWORD",
			ValueFrom: ecsv1alpha1.SecretValueSource{SecretKeyRef: &ecsv1alpha1.KeySelector{Name: "db", Key: "password"}}}},
	}}}
	raw, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	for _, o := range []client.Object{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: benchNamespace, Name: "db"}, StringData: map[string]string{"password": "bench"}},
		&appsv1.ControllerRevision{
			ObjectMeta: metav1.ObjectMeta{Namespace: benchNamespace, Name: ecsv1alpha1.RevisionName("app", 1),
				Labels: map[string]string{ecsv1alpha1.LabelFamily: "app"}},
			Revision: 1, Data: runtime.RawExtension{Raw: raw},
		},
		boundGatewayTask("t-0"),
	} {
		if err := l.c.Create(ctx, o); err != nil {
			return err
		}
	}
	return nil
}

func boundGatewayTask(name string) *ecsv1alpha1.Task {
	t := &ecsv1alpha1.Task{ObjectMeta: metav1.ObjectMeta{Namespace: benchNamespace, Name: name}}
	t.Spec.TaskDefinition, t.Spec.ContainerInstance = "app:1", gatewayInstance
	return t
}

// agentTokenConfig is a connection as the agent of gatewayInstance: a token of its
// ServiceAccount berth-agent-<instance>, as an agent outside the cluster has.
func agentTokenConfig(ctx context.Context, l *lab) (*rest.Config, error) {
	cs, err := kubernetes.NewForConfig(l.cfg)
	if err != nil {
		return nil, err
	}
	name := agentidentity.ServiceAccountPrefix + gatewayInstance
	if _, err := cs.CoreV1().ServiceAccounts(benchNamespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	tr, err := cs.CoreV1().ServiceAccounts(benchNamespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}, metav1.CreateOptions{})
	if err != nil {
		return nil, err
	}
	cfg := rest.AnonymousClientConfig(l.cfg)
	cfg.BearerToken = tr.Status.Token
	return cfg, nil
}
