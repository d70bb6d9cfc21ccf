package console

import (
	"context"
	"fmt"
	"html/template"
	"io/fs"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/console/web"
	"github.com/berthdev/berth/internal/kube"
)

// Kinds the console caches, by the name pages use for them.
const (
	kindClusters        = "clusters"
	kindInstances       = "containerinstances"
	kindServices        = "services"
	kindTasks           = "tasks"
	kindTaskDefinitions = "taskdefinitions"
)

// watched are the kinds the console keeps in its informer cache: every page reads
// them, so one watch each beats a list per page view.
var watched = []struct {
	kind string
	obj  func() client.Object
	list func() client.ObjectList
}{
	{kindClusters, func() client.Object { return &ecsv1alpha1.Cluster{} }, func() client.ObjectList { return &ecsv1alpha1.ClusterList{} }},
	{kindInstances, func() client.Object { return &ecsv1alpha1.ContainerInstance{} }, func() client.ObjectList { return &ecsv1alpha1.ContainerInstanceList{} }},
	{kindServices, func() client.Object { return &ecsv1alpha1.Service{} }, func() client.ObjectList { return &ecsv1alpha1.ServiceList{} }},
	{kindTasks, func() client.Object { return &ecsv1alpha1.Task{} }, func() client.ObjectList { return &ecsv1alpha1.TaskList{} }},
	{kindTaskDefinitions, func() client.Object { return &ecsv1alpha1.TaskDefinition{} }, func() client.ObjectList { return &ecsv1alpha1.TaskDefinitionList{} }},
}

// Cache index fields: pages list a cluster's or an instance's objects by them.
const (
	fieldCluster  = "spec.cluster"
	fieldInstance = "spec.containerInstance"
)

type index struct {
	field   string
	extract client.IndexerFunc
}

var indexes = map[string][]index{
	kindInstances: {{fieldCluster, func(o client.Object) []string { return []string{o.(*ecsv1alpha1.ContainerInstance).Spec.Cluster} }}},
	kindServices:  {{fieldCluster, func(o client.Object) []string { return []string{o.(*ecsv1alpha1.Service).Spec.Cluster} }}},
	kindTasks: {
		{fieldCluster, func(o client.Object) []string { return []string{o.(*ecsv1alpha1.Task).Spec.Cluster} }},
		{fieldInstance, func(o client.Object) []string { return []string{o.(*ecsv1alpha1.Task).Spec.ContainerInstance} }},
	},
}

// Options configures New.
type Options struct {
	// Config is the user's identity: every read and write is made with it.
	Config *rest.Config
	// Token is the access token (NewToken).
	Token string
	// Agent runs exec and reads container logs; nil leaves the terminal and the log
	// lines unavailable, and pages say so.
	Agent Agent
	// HistoryWindow is how much utilization history each service keeps (default
	// 24h).
	HistoryWindow time.Duration
	Log           logr.Logger
}

// New builds the console: it probes which kinds the user may list, starts an
// informer for each of those, and waits until they have synced. The informers
// stop when ctx ends.
func New(ctx context.Context, o Options) (*Server, error) {
	direct, err := client.New(o.Config, client.Options{Scheme: kube.Scheme})
	if err != nil {
		return nil, fmt.Errorf("creating a client: %w", err)
	}
	c, err := cache.New(o.Config, cache.Options{Scheme: kube.Scheme, ReaderFailOnMissingInformer: true})
	if err != nil {
		return nil, fmt.Errorf("creating the cache: %w", err)
	}
	s, err := assemble(o, c, direct)
	if err != nil {
		return nil, err
	}
	if err := s.startInformers(ctx, c); err != nil {
		return nil, err
	}
	return s, nil
}

// assemble builds a Server over a reader and a writer; New gives it the informer
// cache, unit tests a fake client.
func assemble(o Options, reader client.Reader, direct client.Client) (*Server, error) {
	g, err := newGuard(o.Token)
	if err != nil {
		return nil, err
	}
	if o.HistoryWindow <= 0 {
		o.HistoryWindow = 24 * time.Hour
	}
	s := &Server{
		guard: g, reader: reader, direct: direct, forbidden: map[string]error{},
		history: newHistory(o.HistoryWindow), agent: o.Agent, log: o.Log, now: time.Now,
	}
	if s.pages, err = parsePages(); err != nil {
		return nil, err
	}
	s.routes()
	return s, nil
}

// startInformers starts the informer of every kind the user may list; a kind the
// apiserver refuses is recorded in s.forbidden instead, so that the user's
// narrower rights make pages say what they cannot show rather than fail.
func (s *Server) startInformers(ctx context.Context, c cache.Cache) error {
	for _, w := range watched {
		err := s.direct.List(ctx, w.list(), client.Limit(1))
		switch {
		case apierrors.IsForbidden(err):
			s.forbidden[w.kind] = err
			s.log.Info("not watching: the user may not list it", "kind", w.kind, "error", err.Error())
			continue
		case err != nil:
			return fmt.Errorf("listing %s: %w", w.kind, err)
		}
		for _, ix := range indexes[w.kind] {
			if err := c.IndexField(ctx, w.obj(), ix.field, ix.extract); err != nil {
				return fmt.Errorf("indexing %s by %s: %w", w.kind, ix.field, err)
			}
		}
		inf, err := c.GetInformer(ctx, w.obj())
		if err != nil {
			return fmt.Errorf("watching %s: %w", w.kind, err)
		}
		if w.kind == kindServices {
			if _, err := inf.AddEventHandler(s.history.handler()); err != nil {
				return fmt.Errorf("watching %s: %w", w.kind, err)
			}
		}
	}
	go func() {
		if err := c.Start(ctx); err != nil {
			s.log.Error(err, "cache stopped")
		}
	}()
	syncCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if !c.WaitForCacheSync(syncCtx) {
		return fmt.Errorf("the informers did not sync within 2 minutes")
	}
	return nil
}

// list reads a kind from the cache, or returns why the user may not see it.
func (s *Server) list(ctx context.Context, kind string, l client.ObjectList, opts ...client.ListOption) error {
	if err := s.forbidden[kind]; err != nil {
		return err
	}
	return s.reader.List(ctx, l, opts...)
}

// get reads one object from the cache.
func (s *Server) get(ctx context.Context, kind string, key client.ObjectKey, obj client.Object) error {
	if err := s.forbidden[kind]; err != nil {
		return err
	}
	return s.reader.Get(ctx, key, obj)
}

// parsePages parses layout.html with each page template.
func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(web.Templates, "templates/*.html")
	if err != nil {
		return nil, err
	}
	layout, err := template.New("layout.html").Funcs(funcs).ParseFS(web.Templates, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("parsing layout.html: %w", err)
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		base := n[len("templates/"):]
		if base == "layout.html" {
			continue
		}
		t, err := template.Must(layout.Clone()).ParseFS(web.Templates, n)
		if err != nil {
			return nil, fmt.Errorf("parsing %s: %w", base, err)
		}
		pages[base] = t
	}
	return pages, nil
}
