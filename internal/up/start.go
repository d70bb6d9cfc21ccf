package up

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/up/localrun"
)

// Kubeconfig names under kubeconfigs/.
const (
	kubeconfigManager = "manager"
	kubeconfigAgent   = "agent"
	kubeconfigHollow  = "hollow"
	kubeconfigAPI     = "api"
)

// startPKI issues what is missing: the apiserver's serving certificate, the
// service-account key and a client certificate per identity.
func (s *session) startPKI(context.Context) error {
	p, err := loadOrCreatePKI(s.l)
	if err != nil {
		return err
	}
	if _, _, err := p.serving(); err != nil {
		return err
	}
	if _, _, err := p.serviceAccountKey(); err != nil {
		return err
	}
	if _, err := p.gatewayServing(); err != nil {
		return err
	}
	clients := []struct{ file, user, group string }{
		{"admin", AdminUser, "system:masters"},
		{kubeconfigManager, ManagerUser, ""},
		{kubeconfigAgent, AgentUserPrefix + s.o.InstanceName, AgentGroup},
		{kubeconfigHollow, hollowUser, ""},
		{kubeconfigAPI, APIUser, ""},
	}
	for _, c := range clients {
		var groups []string
		if c.group != "" {
			groups = append(groups, c.group)
		}
		if _, _, err := p.client(c.file, c.user, groups...); err != nil {
			return err
		}
	}
	return nil
}

func (s *session) startEtcd(ctx context.Context) error {
	port, err := freePort(0)
	if err != nil {
		return err
	}
	s.etcdPort = port
	bin, err := findBinary(s.o.BinDir, compEtcd)
	if err != nil {
		return err
	}
	return s.launch(ctx, compEtcd, bin, etcdArgs(s.l, port), nil,
		httpOK(&http.Client{Timeout: 2 * time.Second}, fmt.Sprintf("http://%s/health", hostPort(port))))
}

func (s *session) startAPIServer(ctx context.Context) error {
	port, err := freePort(s.o.APIServerPort)
	if err != nil {
		return err
	}
	if port != s.o.APIServerPort {
		s.out.printf("  port %d is taken: the apiserver listens on %d", s.o.APIServerPort, port)
	}
	bin, err := findBinary(s.o.BinDir, compAPIServer)
	if err != nil {
		return err
	}
	f := apiServerFiles{caFile: s.l.pki("ca.crt"), certFile: s.l.pki("apiserver.crt"), keyFile: s.l.pki("apiserver.key"), saKeyFile: s.l.pki("sa.key"), saPubFile: s.l.pki("sa.pub")}
	server := "https://" + hostPort(port)
	if err := s.writeKubeconfigs(server); err != nil {
		return err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", s.l.adminKubeconfig())
	if err != nil {
		return err
	}
	s.adminCfg = cfg
	hc, err := readyzClient(f)
	if err != nil {
		return err
	}
	if err := s.launch(ctx, compAPIServer, bin, apiServerArgs(s.l, f, port, s.etcdPort), nil, httpOK(hc, server+"/readyz")); err != nil {
		return err
	}
	s.admin, err = newClient(cfg)
	return err
}

// readyzClient trusts the state directory's CA and presents the admin certificate.
func readyzClient(f apiServerFiles) (*http.Client, error) {
	ca, err := os.ReadFile(f.caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	dir := filepath.Dir(f.caFile)
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "admin.crt"), filepath.Join(dir, "admin.key"))
	if err != nil {
		return nil, err
	}
	return &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
	}}, nil
}

// writeKubeconfigs writes the admin kubeconfig and one per component identity.
func (s *session) writeKubeconfigs(server string) error {
	ca := s.l.pki("ca.crt")
	if err := writeKubeconfig(s.l.adminKubeconfig(), server, ca, s.l.pki("admin.crt"), s.l.pki("admin.key"), AdminUser); err != nil {
		return err
	}
	for _, who := range []string{kubeconfigManager, kubeconfigAgent, kubeconfigHollow, kubeconfigAPI} {
		if err := writeKubeconfig(s.l.kubeconfig(who), server, ca, s.l.pki(who+".crt"), s.l.pki(who+".key"), who); err != nil {
			return err
		}
	}
	return nil
}

func (s *session) bootstrap(ctx context.Context) error {
	if err := installCRDs(ctx, s.admin); err != nil {
		return err
	}
	// The heartbeat Leases' namespace, which the manager also creates: agents may
	// not, and need not wait for the manager's first start. And the ECS API's
	// credentials' namespace, where its Role goes.
	for _, name := range []string{ecsv1alpha1.NodeLeaseNamespace, CredentialsNamespace} {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if err := s.admin.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating namespace %s: %w", ns.Name, err)
		}
	}
	if err := installRBAC(ctx, s.admin, AgentUserPrefix+s.o.InstanceName, hollowUser); err != nil {
		return err
	}
	if err := installAPIRBAC(ctx, s.admin); err != nil {
		return err
	}
	if err := installAdmission(ctx, s.admin); err != nil {
		return err
	}
	// A new client: its REST mapper learns the CRDs just installed.
	c, err := newClient(s.adminCfg)
	if err != nil {
		return err
	}
	s.admin = c
	return nil
}

func (s *session) startRegistry(ctx context.Context) error {
	port, err := freePort(0)
	if err != nil {
		return err
	}
	s.registryPort = port
	cfg, err := localrun.RegistryConfig(s.l.path("registry", "data"), hostPort(port), "")
	if err != nil {
		return err
	}
	if err := writeFile(s.l.registryConfigFile(), []byte(cfg), 0o600); err != nil {
		return err
	}
	bin, err := findBinary(s.o.BinDir, compRegistry)
	if err != nil {
		return err
	}
	return s.launch(ctx, compRegistry, bin, []string{"serve", s.l.registryConfigFile()}, nil,
		httpOK(&http.Client{Timeout: 2 * time.Second}, fmt.Sprintf("http://%s/v2/", hostPort(port))))
}

func (s *session) startContainerd(ctx context.Context) error {
	hosts := s.l.hostsFile(SampleRegistry)
	if err := os.MkdirAll(filepath.Dir(hosts), 0o755); err != nil {
		return err
	}
	if err := writeFile(hosts, []byte(hostsTOML(s.registryPort)), 0o644); err != nil {
		return err
	}
	cfg := localrun.ContainerdConfig(s.l.path("containerd", "root"), s.l.path("containerd", "state"), s.l.containerdSocket())
	if err := writeFile(s.l.containerdConfigFile(), []byte(cfg), 0o600); err != nil {
		return err
	}
	s.snapshotter = localrun.Snapshotter(s.l.containerdDir())
	bin, err := findBinary(s.o.BinDir, compContainerd)
	if err != nil {
		return err
	}
	return s.launch(ctx, compContainerd, bin, []string{"--config", s.l.containerdConfigFile()},
		[]string{pathEnv(s.o.BinDir)}, func(ctx context.Context) error { return localrun.ContainerdServing(ctx, s.l.containerdSocket()) })
}

func (s *session) pushDemo(ctx context.Context) error {
	digest, noShell, err := pushDemoImage(ctx, s.registryPort)
	if err != nil {
		return err
	}
	if noShell != "" {
		s.out.printf("  the demo image has no shell, so `berth exec` can run only /demo in its tasks: %s", noShell)
	}
	s.demoDigest = digest
	return nil
}

// startGateway runs the agents' read gateway on loopback as a process of its own
// (`berth manager --controllers=false`, with the manager's identity): on shutdown the
// controllers stop first, so that no replacement task starts, and the agent still
// sees its tasks stopped through the gateway.
func (s *session) startGateway(ctx context.Context) error {
	probe, err := freePort(0)
	if err != nil {
		return err
	}
	port, err := freePort(0)
	if err != nil {
		return err
	}
	s.gatewayURL = "https://" + hostPort(port)
	args := []string{"manager", "--controllers=false",
		"--kubeconfig=" + s.l.kubeconfig(kubeconfigManager),
		"--health-probe-bind-address=" + hostPort(probe), "--metrics-bind-address=0",
		"--gateway-bind-address=" + hostPort(port), "--gateway-cert-dir=" + s.l.pki("gateway"),
	}
	return s.launch(ctx, compGateway, s.berth, args, nil,
		httpOK(&http.Client{Timeout: 2 * time.Second}, fmt.Sprintf("http://%s/readyz", hostPort(probe))))
}

func (s *session) startManager(ctx context.Context) error {
	probe, err := freePort(0)
	if err != nil {
		return err
	}
	metrics, err := freePort(0)
	if err != nil {
		return err
	}
	args := []string{"manager",
		"--kubeconfig=" + s.l.kubeconfig(kubeconfigManager),
		"--health-probe-bind-address=" + hostPort(probe),
		"--metrics-bind-address=" + hostPort(metrics),
		// Leader election as in production; the lock already keeps a second `up`
		// away, and a clean stop releases the Lease.
		"--leader-elect", "--leader-election-id=berth-manager", "--leader-election-namespace=kube-system",
	}
	s.metricsURL = fmt.Sprintf("http://%s/metrics", hostPort(metrics))
	return s.launch(ctx, compManager, s.berth, args, nil,
		httpOK(&http.Client{Timeout: 2 * time.Second}, fmt.Sprintf("http://%s/readyz", hostPort(probe))))
}

// DefaultAgentPort is the ECS agent's introspection port, which Berth's agent
// uses too; `up` takes another when it is busy.
const DefaultAgentPort = 51678

// DefaultStreamingPort is the agent's exec and logs server's (agent/streaming);
// `up` takes another when it is busy.
const DefaultStreamingPort = 51680

func (s *session) startAgent(ctx context.Context) error {
	port, err := freePort(DefaultAgentPort)
	if err != nil {
		return err
	}
	s.agentURL = "http://" + hostPort(port)
	// The streaming server (berth exec, the console's terminal) on loopback, on a
	// port of its own; the agent publishes it in its ContainerInstance.
	streamingPort, err := freePort(DefaultStreamingPort)
	if err != nil {
		return err
	}
	args := []string{"agent",
		"--kubeconfig=" + s.l.kubeconfig(kubeconfigAgent),
		"--cluster=" + ClusterName,
		"--name=" + s.o.InstanceName,
		"--containerd-address=" + s.l.containerdSocket(),
		"--state-dir=" + s.l.agentStateDir(),
		"--snapshotter=" + s.snapshotter,
		"--registry-config-dir=" + s.l.registryHostsDir(),
		"--runc-root=" + s.l.runcRoot(),
		"--http-bind-address=" + hostPort(port),
		"--streaming-address=" + hostPort(streamingPort),
		"--gateway-url=" + s.gatewayURL, "--gateway-ca-file=" + s.l.pki("ca.crt"),
	}
	if s.o.BridgeSubnet != "" {
		args = append(args, "--bridge-subnet="+s.o.BridgeSubnet)
	}
	if s.o.BridgeName != "" {
		args = append(args, "--bridge-name="+s.o.BridgeName)
	}
	started := time.Now()
	p, err := startProc(s.l, compAgent, s.berth, args, []string{pathEnv(s.o.BinDir)})
	if err != nil {
		return err
	}
	s.procs[compAgent] = p
	return p.waitReady(ctx, startTimeout, func(ctx context.Context) error {
		ok, err := s.instanceConnected(ctx, s.o.InstanceName, started)
		if err == nil && !ok {
			err = fmt.Errorf("ContainerInstance %s is not connected yet", s.o.InstanceName)
		}
		return err
	}, s.progress(compAgent))
}

// hollowPrefix names the hollow instances hollow-0000, hollow-0001, ...
const hollowPrefix = "hollow"

// hollowUser is the identity of `berth hollow`. It simulates many instances through
// one identity, so it is not an agent identity (berth:agent:<instance>) that the
// admission policy restricts to one instance; it has the agent's ClusterRole.
const hollowUser = "berth-hollow"

func (s *session) startHollow(ctx context.Context) error {
	n := s.o.HollowInstances
	args := []string{"hollow",
		"--kubeconfig=" + s.l.kubeconfig(kubeconfigHollow),
		"--cluster=" + ClusterName,
		fmt.Sprintf("--instances=%d", n),
		"--name-prefix=" + hollowPrefix,
		"--zones=zone-a,zone-b,zone-c",
	}
	started := time.Now()
	p, err := startProc(s.l, compHollow, s.berth, args, nil)
	if err != nil {
		return err
	}
	s.procs[compHollow] = p
	last := fmt.Sprintf("%s-%04d", hollowPrefix, n-1)
	return p.waitReady(ctx, startTimeout, func(ctx context.Context) error {
		ok, err := s.instanceConnected(ctx, last, started)
		if err == nil && !ok {
			err = fmt.Errorf("hollow instance %s is not connected yet", last)
		}
		return err
	}, s.progress(compHollow))
}

// webService is the sample ECS Service (and the core Service in front of it)
// that `up` waits for and serves.
const webService = "web"

// samplesTimeout bounds the wait for the sample Service to be steady: pulling and
// starting its tasks and their first health checks.
const samplesTimeout = 3 * time.Minute

func (s *session) applySamples(ctx context.Context) error {
	objs, err := sampleObjects(s.admin, s.o.Namespace)
	if err != nil {
		return err
	}
	if err := apply(ctx, s.admin, objs...); err != nil {
		return err
	}
	if err := s.waitWebSteady(ctx); err != nil {
		return err
	}
	return s.serveWeb(ctx)
}

// waitWebSteady waits until the sample Service runs its desired count on its
// latest revision, reporting progress as it changes.
func (s *session) waitWebSteady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, samplesTimeout)
	defer cancel()
	last := ""
	err := poll(ctx, func(ctx context.Context) (bool, error) {
		svc := &ecsv1alpha1.Service{}
		if err := s.admin.Get(ctx, client.ObjectKey{Namespace: s.o.Namespace, Name: webService}, svc); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		desired := int32(0)
		if svc.Spec.DesiredCount != nil {
			desired = *svc.Spec.DesiredCount
		}
		msg := fmt.Sprintf("  %-16s service %s: %d/%d tasks running", "samples", webService, svc.Status.RunningCount, desired)
		if msg != last {
			s.out.printf("%s", msg)
			last = msg
		}
		u, err := toUnstructured(svc)
		if err != nil {
			return false, err
		}
		return conditionTrue(u, ecsv1alpha1.ServiceConditionSteady) && svc.Status.RunningCount == desired, nil
	})
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("service %s/%s not steady after %s: see `kubectl --kubeconfig %s describe esvc %s -n %s` and %s",
			s.o.Namespace, webService, samplesTimeout, s.l.adminKubeconfig(), webService, s.o.Namespace, s.l.logFile(compAgent))
	}
	return err
}

// serveWeb starts the local proxy of the sample web Service.
func (s *session) serveWeb(ctx context.Context) error {
	port, err := freePort(s.o.WebPort)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", hostPort(port))
	if err != nil {
		return err
	}
	pctx, cancel := context.WithCancel(ctx)
	if err := startWebProxy(pctx, s.adminCfg, s.o.Namespace, webService, ln); err != nil {
		cancel()
		_ = ln.Close()
		return err
	}
	s.stopProxy = cancel
	s.webURL = fmt.Sprintf("http://%s/", hostPort(port))
	return nil
}

// agentCurl is the command that reads path from the agent's HTTP endpoint at url
// as ECSUserServiceAccount: its /v1/tasks and /v1/logs take Kubernetes bearer
// tokens, and the admin's client certificate is none.
func agentCurl(url, path string) string {
	return fmt.Sprintf(`curl -H "Authorization: Bearer $(kubectl create token %s -n %s)" %s%s`, ECSUserServiceAccount, CredentialsNamespace, url, path)
}

// printSummary tells a newcomer what to do next, and keeps it in the state
// directory for `berth down` and scripts.
func (s *session) printSummary() {
	var b strings.Builder
	kc := s.l.adminKubeconfig()
	fmt.Fprintf(&b, "\nBerth is up.\n\n")
	fmt.Fprintf(&b, "  export KUBECONFIG=%s\n", kc)
	fmt.Fprintf(&b, "  kubectl get ecs                       # every Berth object\n")
	fmt.Fprintf(&b, "  kubectl get ci                        # container instance %s", s.o.InstanceName)
	if s.o.HollowInstances > 0 {
		fmt.Fprintf(&b, " and %d hollow ones", s.o.HollowInstances)
	}
	fmt.Fprintf(&b, "\n")
	if s.webURL != "" {
		fmt.Fprintf(&b, "  curl %s        # the sample web Service, served by its tasks\n", s.webURL)
		fmt.Fprintf(&b, "  kubectl scale esvc/%s --replicas=5 -n %s\n", webService, s.o.Namespace)
	}
	fmt.Fprintf(&b, "\n  # The agent's tasks, and a container's output at /v1/logs/<namespace>/<task>/<container>,\n")
	fmt.Fprintf(&b, "  # as ServiceAccount %s/%s (the agent asks the apiserver about the token):\n", CredentialsNamespace, ECSUserServiceAccount)
	fmt.Fprintf(&b, "  %s\n", agentCurl(s.agentURL, "/v1/tasks"))
	fmt.Fprintf(&b, "\n")
	for _, e := range s.aws.Exports() {
		fmt.Fprintf(&b, "  %s\n", e)
	}
	fmt.Fprintf(&b, "  aws ecs list-clusters                 # the ECS API, as %s in namespace %s\n", ECSUser, s.o.Namespace)
	fmt.Fprintf(&b, "\n  demo image:   %s/%s:%s (%s)\n", SampleRegistry, "berth/demo", "1.0", s.demoDigest)
	if s.consoleURL != "" {
		fmt.Fprintf(&b, "  console:      %s (token also in %s)\n", s.consoleURL, s.l.consoleTokenFile())
	}
	fmt.Fprintf(&b, "  ECS API:      %s (region %s, account %s; aws CLI configuration in %s)\n", s.apiURL, ECSRegion, ECSAccountID, s.l.awsDir())
	fmt.Fprintf(&b, "  agent:        %s/v1/tasks (with a token, above), metrics %s/metrics\n", s.agentURL, s.agentURL)
	fmt.Fprintf(&b, "  manager:      metrics %s\n", s.metricsURL)
	fmt.Fprintf(&b, "  gateway:      %s (agents read their tasks and Secrets through it)\n", s.gatewayURL)
	fmt.Fprintf(&b, "  logs:         %s\n", s.l.path("logs"))
	fmt.Fprintf(&b, "  stop:         Ctrl-C here, or berth down --state-dir %s\n", s.l.dir)
	s.out.printf("%s", b.String())
	_ = writeFile(s.l.summaryFile(), []byte(b.String()), 0o644)
}
