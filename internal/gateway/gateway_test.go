package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	certutil "k8s.io/client-go/util/cert"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/berthdev/berth/agent"
	"github.com/berthdev/berth/agent/secrets"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/access"
	"github.com/berthdev/berth/internal/agentidentity"
	"github.com/berthdev/berth/internal/gateway"
	"github.com/berthdev/berth/internal/kube"
	"github.com/berthdev/berth/internal/revision"
	"github.com/berthdev/berth/test/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Run(m, &env)) }

// world is a namespace with two instances' tasks, the Secrets and ConfigMaps they
// read and one they do not, and the gateway serving it as the manager would.
type world struct {
	ns     string
	url    string
	caFile string
	// daemonSetUser is the DaemonSet account the gateway takes node-bound tokens of.
	daemonSetUser string
}

// The revision every task runs: it reads Secret db (a key and as an environment
// file), ConfigMap settings and the pull Secret.
var appSpec = ecsv1alpha1.TaskDefinitionSpec{ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{{
	Name: "app", Image: "127.0.0.1:5000/team/app:1",
	EnvironmentFiles: []ecsv1alpha1.EnvironmentFile{{Type: ecsv1alpha1.EnvironmentFileConfigMap, Value: "settings"}},
	Secrets: []ecsv1alpha1.SecretVariable{{Name: "DB_PASSWORD",
		ValueFrom: ecsv1alpha1.SecretValueSource{SecretKeyRef: &ecsv1alpha1.KeySelector{Name: "db", Key: "password"}}}},
}}}

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := t.Context()
	w := &world{ns: env.Namespace(t)}
	w.daemonSetUser = testenv.ServiceAccountUser(w.ns, "berth-agent")
	raw, err := json.Marshal(appSpec)
	if err != nil {
		t.Fatal(err)
	}
	objs := []client.Object{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: w.ns, Name: "db"}, StringData: map[string]string{"password": "one"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: w.ns, Name: "unrelated"}, StringData: map[string]string{"token": "not-yours"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: w.ns, Name: "settings"}, Data: map[string]string{"MODE": "prod"}},
		&appsv1.ControllerRevision{
			ObjectMeta: metav1.ObjectMeta{Namespace: w.ns, Name: ecsv1alpha1.RevisionName("app", 1),
				Labels: map[string]string{ecsv1alpha1.LabelFamily: "app"}},
			Revision: 1, Data: runtime.RawExtension{Raw: raw},
		},
		boundTask(w.ns, "here", "worker-1"),
		boundTask(w.ns, "there", "worker-2"),
	}
	for _, o := range objs {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	w.serve(t)
	return w
}

func boundTask(ns, name, instance string) *ecsv1alpha1.Task {
	t := &ecsv1alpha1.Task{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	t.Spec.TaskDefinition = "app:1"
	t.Spec.ContainerInstance = instance
	return t
}

// serve starts the gateway as the manager does: its cache, authentication by the
// apiserver, a serving certificate in a directory, the administrator's identity
// (the manager's) for what it reads and passes on.
func (w *world) serve(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch, err := cache.New(env.Config, cache.Options{Scheme: kube.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.GetInformer(ctx, &ecsv1alpha1.Task{}); err != nil {
		t.Fatal(err)
	}
	go func() { _ = ch.Start(ctx) }()
	if !ch.WaitForCacheSync(ctx) {
		t.Fatal("the gateway's cache did not sync")
	}
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := access.NewDelegated(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	live, err := client.New(env.Config, client.Options{Scheme: kube.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := gateway.NewServer(gateway.Config{Auth: auth, Cache: ch, Live: live, Revisions: revision.NewResolver(ch),
		APIServer: env.Config, DaemonSetUser: w.daemonSetUser})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	crt, key, err := certutil.GenerateSelfSignedCertKey("127.0.0.1", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.caFile = filepath.Join(dir, gateway.CertFile)
	if err := os.WriteFile(w.caFile, crt, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, gateway.KeyFile), key, 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := gateway.Listen("127.0.0.1:0", dir, srv, auth)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- ln.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("the gateway ended with %v", err)
		}
	})
	w.url = "https://" + ln.Addr().String()
}

// agentToken is a bearer token of the ServiceAccount ns/name, bound to a pod on
// node when node is set (as the kubelet's projected tokens are).
func agentToken(t *testing.T, ns, name, node string) string {
	t.Helper()
	if node == "" {
		return env.ServiceAccountToken(t, ns, name)
	}
	return env.NodeBoundToken(t, ns, name, node)
}

// as is the gateway's configuration for an agent with token ("" for none).
func (w *world) as(token string) *rest.Config {
	cfg := rest.AnonymousClientConfig(env.Config)
	cfg.BearerToken = token
	return gateway.RESTConfig(cfg, w.url, w.caFile)
}

func (w *world) read(t *testing.T, cfg *rest.Config, task, kind, name string) (map[string]string, error) {
	t.Helper()
	gc, err := gateway.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := gc.ForTask(w.ns, task)
	key := client.ObjectKey{Namespace: w.ns, Name: name}
	if kind == "ConfigMap" {
		var cm corev1.ConfigMap
		err := r.Get(t.Context(), key, &cm)
		return cm.Data, err
	}
	var s corev1.Secret
	err = r.Get(t.Context(), key, &s)
	out := map[string]string{}
	for k, v := range s.Data {
		out[k] = string(v)
	}
	return out, err
}

func wantForbidden(t *testing.T, what string, err error, says string) {
	t.Helper()
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), says) {
		t.Errorf("%s: %v, want Forbidden saying %q", what, err, says)
	}
}

// TestAgentReadsOnlyItsTasksSecrets tries to break the gateway with real agent
// identities: every form the admission policy knows, tokens checked by the
// apiserver, and the agent's own resolver and cache on the other side.
func TestAgentReadsOnlyItsTasksSecrets(t *testing.T) {
	ctx := t.Context()
	w := newWorld(t)
	certCfg, err := env.AddUser(agentidentity.UserPrefix+"worker-1", agentidentity.Group)
	if err != nil {
		t.Fatal(err)
	}
	worker1 := map[string]*rest.Config{
		"external ServiceAccount":                w.as(agentToken(t, w.ns, "berth-agent-worker-1", "")),
		"DaemonSet token bound to node worker-1": w.as(agentToken(t, w.ns, "berth-agent", "worker-1")),
		"client certificate":                     gateway.RESTConfig(certCfg, w.url, w.caFile),
	}
	worker2 := w.as(agentToken(t, w.ns, "berth-agent-worker-2", ""))

	for name, cfg := range worker1 {
		t.Run(name, func(t *testing.T) {
			// Its task's references, through the agent's own resolver.
			gc, err := gateway.NewClient(cfg)
			if err != nil {
				t.Fatal(err)
			}
			res := &secrets.Resolver{Reader: gc.ForTask(w.ns, "here")}
			vals, err := res.Env(ctx, w.ns, &appSpec)
			if err != nil {
				t.Fatalf("resolving task here's environment: %v", err)
			}
			if got := vals["app"]; got["DB_PASSWORD"] != "one" || got["MODE"] != "prod" {
				t.Errorf("environment %v, want DB_PASSWORD and MODE resolved", got)
			}
			_, err = w.read(t, cfg, "here", "Secret", "unrelated")
			wantForbidden(t, "a Secret no task on worker-1 references", err,
				"berth agent worker-1 may not read Secret "+w.ns+"/unrelated: task here (app:1) does not reference it")
			_, err = w.read(t, cfg, "there", "Secret", "db")
			wantForbidden(t, "the Secret of a task on worker-2", err, "task there is not bound to it")
			_, err = w.read(t, cfg, "nosuch", "Secret", "db")
			wantForbidden(t, "the Secret of a task that does not exist", err, "there is no task nosuch")
		})
	}

	t.Run("another instance", func(t *testing.T) {
		_, err := w.read(t, worker2, "here", "Secret", "db")
		wantForbidden(t, "worker-2 reading worker-1's task's Secret", err, "berth agent worker-2 may not read Secret "+w.ns+"/db: task here is not bound to it")
	})

	t.Run("callers that are no agent", func(t *testing.T) {
		_, err := w.read(t, w.as(""), "here", "Secret", "db")
		if !apierrors.IsUnauthorized(err) {
			t.Errorf("no credentials: %v, want 401", err)
		}
		_, err = w.read(t, w.as(env.ServiceAccountToken(t, w.ns, "someone")), "here", "Secret", "db")
		wantForbidden(t, "a ServiceAccount of no agent", err, "is not a berth agent identity")
		_, err = w.read(t, w.as(agentToken(t, w.ns, "berth-agent", "")), "here", "Secret", "db")
		wantForbidden(t, "the DaemonSet's account with a token bound to no node", err, "has a token bound to no node")
	})

	t.Run("lists and watches", func(t *testing.T) {
		cfg := worker1["external ServiceAccount"]
		c, err := client.New(cfg, client.Options{Scheme: kube.Scheme, Mapper: env.Client.RESTMapper()})
		if err != nil {
			t.Fatal(err)
		}
		var own ecsv1alpha1.TaskList
		if err := c.List(ctx, &own, client.MatchingFields{ecsv1alpha1.TaskFieldContainerInstance: "worker-1"}); err != nil {
			t.Fatalf("listing its own tasks: %v", err)
		}
		for _, tk := range own.Items {
			if tk.Spec.ContainerInstance != "worker-1" {
				t.Errorf("its own list holds task %s of %s", tk.Name, tk.Spec.ContainerInstance)
			}
		}
		var list ecsv1alpha1.TaskList
		err = c.List(ctx, &list, client.MatchingFields{ecsv1alpha1.TaskFieldContainerInstance: "worker-2"})
		wantForbidden(t, "listing worker-2's tasks", err, "a list of tasks must select fieldSelector=spec.containerInstance=worker-1 exactly")
		wantForbidden(t, "listing every task", c.List(ctx, &list), "may not list")
		// Two field selectors: the first checked, another applied, were the gateway
		// to look at one only.
		twice := url.Values{"fieldSelector": {ecsv1alpha1.TaskFieldContainerInstance + "=worker-1", ""}}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.url+"/apis/ecs.berth.dev/v1alpha1/tasks?"+twice.Encode(), nil)
		if err != nil {
			t.Fatal(err)
		}
		hc, err := rest.HTTPClientFor(cfg)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("a task list with two field selectors: %s, want 403", resp.Status)
		}
		if err := c.List(ctx, &corev1.SecretList{}); !apierrors.IsNotFound(err) {
			t.Errorf("listing Secrets: %v, want NotFound (the gateway serves no such list)", err)
		}
		wantForbidden(t, "listing every ControllerRevision", c.List(ctx, &appsv1.ControllerRevisionList{}), "must select labelSelector")

		// The agent's own cache, through the gateway: it watches its tasks and the
		// revisions they run.
		ch, err := agent.NewCache(cfg, "default", fields.OneTermEqualSelector(ecsv1alpha1.TaskFieldContainerInstance, "worker-1"), env.Client.RESTMapper())
		if err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() { _ = ch.Start(cctx) }()
		testenv.Eventually(t, "the agent's cache to show task here", func() error {
			return ch.Get(cctx, client.ObjectKey{Namespace: w.ns, Name: "here"}, &ecsv1alpha1.Task{})
		})
		testenv.Eventually(t, "the agent's cache to show revision app:1", func() error {
			_, err := revision.NewResolver(ch).Resolve(cctx, w.ns, revision.Ref{Family: "app", Revision: 1})
			return err
		})
		if err := ch.Get(cctx, client.ObjectKey{Namespace: w.ns, Name: "there"}, &ecsv1alpha1.Task{}); !apierrors.IsNotFound(err) {
			t.Errorf("the agent's cache holds worker-2's task: %v", err)
		}
	})

	t.Run("rotation, placement and moving away", func(t *testing.T) {
		cfg := worker1["external ServiceAccount"]
		var db corev1.Secret
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: w.ns, Name: "db"}, &db); err != nil {
			t.Fatal(err)
		}
		db.StringData = map[string]string{"password": "two"}
		if err := env.Client.Update(ctx, &db); err != nil {
			t.Fatal(err)
		}
		if got, err := w.read(t, cfg, "here", "Secret", "db"); err != nil || got["password"] != "two" {
			t.Errorf("after rotation: %v, %v; want password two", got, err)
		}

		// A task placed now reads at once: the gateway reads a binding its cache
		// has not seen yet from the apiserver.
		placed := time.Now()
		if err := env.Client.Create(ctx, boundTask(w.ns, "new", "worker-1")); err != nil {
			t.Fatal(err)
		}
		var took time.Duration
		testenv.Eventually(t, "the new task's Secret", func() error {
			_, err := w.read(t, cfg, "new", "Secret", "db")
			took = time.Since(placed)
			return err
		})
		t.Logf("placement to secret availability: %v", took)

		// Stopped, then deleted: the old instance reads nothing of it.
		var tk ecsv1alpha1.Task
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: w.ns, Name: "new"}, &tk); err != nil {
			t.Fatal(err)
		}
		tk.Spec.DesiredStatus = ecsv1alpha1.DesiredStopped
		if err := env.Client.Update(ctx, &tk); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, "a stopping task's Secret to be refused", func() error {
			_, err := w.read(t, cfg, "new", "Secret", "db")
			if !apierrors.IsForbidden(err) {
				return fmt.Errorf("read: %w, want Forbidden", err)
			}
			return nil
		})
		if err := env.Client.Delete(ctx, &tk); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, "a deleted task's Secret to be refused", func() error {
			_, err := w.read(t, cfg, "new", "Secret", "db")
			if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "there is no task new") {
				return fmt.Errorf("read: %w, want Forbidden: there is no task", err)
			}
			return nil
		})
	})

	t.Run("counted", func(t *testing.T) {
		got := map[string]float64{}
		families, err := metrics.Registry.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range families {
			if f.GetName() != "berth_gateway_requests_total" {
				continue
			}
			for _, m := range f.GetMetric() {
				var route, code string
				for _, l := range m.GetLabel() {
					switch l.GetName() {
					case "route":
						route = l.GetValue()
					case "code":
						code = l.GetValue()
					}
				}
				got[route+" "+code] = m.GetCounter().GetValue()
			}
		}
		for _, k := range []string{"secrets 200", "secrets 403", "secrets 401", "tasks 200", "tasks 403", "configmaps 200"} {
			if got[k] == 0 {
				t.Errorf("berth_gateway_requests_total{%s} is 0; series: %v", k, got)
			}
		}
	})

	t.Run("missing", func(t *testing.T) {
		if err := env.Client.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: w.ns, Name: "settings"}}); err != nil {
			t.Fatal(err)
		}
		_, err := w.read(t, worker1["external ServiceAccount"], "here", "ConfigMap", "settings")
		if !apierrors.IsNotFound(err) {
			t.Errorf("a referenced ConfigMap that is gone: %v, want NotFound (the agent's MissingError)", err)
		}
	})
}
