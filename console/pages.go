package console

import (
	"cmp"
	"context"
	"net/http"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/inventory"
)

// maxEvents is how many of an object's events its page shows, newest first.
const maxEvents = 50

// listInto lists a kind, or adds a notice saying why it cannot.
func (s *Server) listInto(ctx context.Context, kind string, l client.ObjectList, notices *[]string, opts ...client.ListOption) {
	if err := s.list(ctx, kind, l, opts...); err != nil {
		*notices = append(*notices, notice(kind, err))
	}
}

// getOr404 reads one object; a missing object renders 404 and a forbidden one 403.
func (s *Server) getOr404(w http.ResponseWriter, r *http.Request, kind string, key client.ObjectKey, obj client.Object) bool {
	if err := s.get(r.Context(), kind, key, obj); err != nil {
		status := http.StatusInternalServerError
		if apierrors.IsNotFound(err) {
			status = http.StatusNotFound
		}
		s.fail(w, r, nil, status, err)
		return false
	}
	return true
}

type clustersBody struct{ Rows []clusterRow }

func (s *Server) clustersPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p := page{Title: "Clusters", Nav: "clusters"}
	var (
		cl ecsv1alpha1.ClusterList
		il ecsv1alpha1.ContainerInstanceList
		sl ecsv1alpha1.ServiceList
		tl ecsv1alpha1.TaskList
	)
	s.listInto(ctx, kindClusters, &cl, &p.Notices)
	s.listInto(ctx, kindInstances, &il, &p.Notices)
	s.listInto(ctx, kindServices, &sl, &p.Notices)
	s.listInto(ctx, kindTasks, &tl, &p.Notices)
	p.Body = clustersBody{Rows: clusterRows(cl.Items, il.Items, sl.Items, tl.Items)}
	s.render(w, r, http.StatusOK, "clusters.html", p)
}

type clusterBody struct {
	Row        clusterRow
	Conditions []metav1.Condition
	Instances  []instanceRow
	Services   []serviceRow
	Tasks      []taskRow
}

func (s *Server) clusterPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	name := r.PathValue("name")
	p := page{Title: "Cluster " + name, Nav: "clusters"}
	var clusters []ecsv1alpha1.Cluster
	c := &ecsv1alpha1.Cluster{}
	switch err := s.get(ctx, kindClusters, client.ObjectKey{Name: name}, c); {
	case err == nil:
		clusters = []ecsv1alpha1.Cluster{*c}
	case !apierrors.IsNotFound(err):
		p.Notices = append(p.Notices, notice(kindClusters, err))
	}
	in := client.MatchingFields{fieldCluster: name}
	var (
		il ecsv1alpha1.ContainerInstanceList
		sl ecsv1alpha1.ServiceList
		tl ecsv1alpha1.TaskList
	)
	s.listInto(ctx, kindInstances, &il, &p.Notices, in)
	s.listInto(ctx, kindServices, &sl, &p.Notices, in)
	s.listInto(ctx, kindTasks, &tl, &p.Notices, in)
	rows := clusterRows(clusters, il.Items, sl.Items, tl.Items)
	if len(rows) == 0 {
		s.fail(w, r, nil, http.StatusNotFound, apierrors.NewNotFound(ecsv1alpha1.GroupVersion.WithResource("clusters").GroupResource(), name))
		return
	}
	b := clusterBody{Row: rows[0], Instances: instanceRows(il.Items), Services: serviceRows(sl.Items), Tasks: taskRows(tl.Items)}
	if len(clusters) == 1 {
		b.Conditions = clusters[0].Status.Conditions
	}
	p.Body = b
	s.render(w, r, http.StatusOK, "cluster.html", p)
}

type kv struct{ Name, Value string }

type instanceBody struct {
	Row          instanceRow
	Instance     *ecsv1alpha1.ContainerInstance
	Attributes   []kv
	Tasks        []taskRow
	Events       []eventRow
	EventsNotice string
}

func (s *Server) instancePage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ci := &ecsv1alpha1.ContainerInstance{}
	if !s.getOr404(w, r, kindInstances, client.ObjectKey{Name: r.PathValue("name")}, ci) {
		return
	}
	p := page{Title: "Instance " + ci.Name, Nav: "clusters"}
	var tl ecsv1alpha1.TaskList
	s.listInto(ctx, kindTasks, &tl, &p.Notices, client.MatchingFields{fieldInstance: ci.Name})
	b := instanceBody{Row: instanceRowOf(ci), Instance: ci, Tasks: taskRows(tl.Items)}
	for k, v := range inventory.Attributes(ci) {
		b.Attributes = append(b.Attributes, kv{k, v})
	}
	slices.SortFunc(b.Attributes, func(a, b kv) int { return cmp.Compare(a.Name, b.Name) })
	b.Events, b.EventsNotice = s.events(ctx, ci, "ContainerInstance")
	p.Body = b
	s.render(w, r, http.StatusOK, "instance.html", p)
}

type serviceBody struct {
	Service      *ecsv1alpha1.Service
	Row          serviceRow
	Graph        any
	Samples      int
	Events       []eventRow
	EventsNotice string
	Tasks        []taskRow
	Daemon       bool
	// SpecDesired fills the scale form: spec.desiredCount, or the status's count
	// when an auto scaled service leaves it unset.
	SpecDesired int32
}

func (s *Server) servicePage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	svc := &ecsv1alpha1.Service{}
	key := client.ObjectKey{Namespace: r.PathValue("ns"), Name: r.PathValue("name")}
	if !s.getOr404(w, r, kindServices, key, svc) {
		return
	}
	p := page{Title: "Service " + svc.Name, Nav: "clusters"}
	var tl ecsv1alpha1.TaskList
	s.listInto(ctx, kindTasks, &tl, &p.Notices, client.InNamespace(svc.Namespace), client.MatchingLabels{ecsv1alpha1.LabelService: svc.Name})
	samples := s.history.samples(types.NamespacedName(key))
	b := serviceBody{Service: svc, Row: serviceRows([]ecsv1alpha1.Service{*svc})[0], Tasks: taskRows(tl.Items),
		Graph: utilizationGraph(samples, s.now()), Samples: len(samples),
		Daemon: svc.Spec.SchedulingStrategy == ecsv1alpha1.SchedulingDaemon, SpecDesired: svc.Status.DesiredCount}
	if svc.Spec.DesiredCount != nil {
		b.SpecDesired = *svc.Spec.DesiredCount
	}
	b.Events, b.EventsNotice = s.events(ctx, svc, "Service")
	p.Body = b
	s.render(w, r, http.StatusOK, "service.html", p)
}

// eventRow is one event of an object.
type eventRow struct {
	Type, Reason, Message, Source string
	Count                         int32
	Last                          time.Time
}

// events reads an object's events, newest first, with a field selector on the
// involved object (events are not cached: only the page being viewed needs them).
// Events of cluster-scoped objects are recorded in the default namespace.
func (s *Server) events(ctx context.Context, obj client.Object, kind string) ([]eventRow, string) {
	ns := obj.GetNamespace()
	if ns == "" {
		ns = metav1.NamespaceDefault
	}
	var el corev1.EventList
	err := s.direct.List(ctx, &el, client.InNamespace(ns), client.MatchingFields{
		"involvedObject.kind": kind, "involvedObject.name": obj.GetName(), "involvedObject.uid": string(obj.GetUID()),
	})
	if err != nil {
		return nil, notice("events", err)
	}
	rows := make([]eventRow, 0, len(el.Items))
	for i := range el.Items {
		e := &el.Items[i]
		row := eventRow{Type: e.Type, Reason: e.Reason, Message: e.Message, Source: cmp.Or(e.ReportingController, e.Source.Component), Count: max(e.Count, 1), Last: eventTime(e)}
		if e.Series != nil {
			row.Count = e.Series.Count
		}
		rows = append(rows, row)
	}
	slices.SortFunc(rows, func(a, b eventRow) int { return b.Last.Compare(a.Last) })
	if len(rows) > maxEvents {
		rows = rows[:maxEvents]
	}
	return rows, ""
}

// eventTime is when an event last happened, whichever API recorded it.
func eventTime(e *corev1.Event) time.Time {
	switch {
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		return e.Series.LastObservedTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}
