package console

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// familyRow is a row of the task definition families table.
type familyRow struct {
	Namespace, Name string
	Latest          int32
	Kept, Active    int
	CPU, Memory     *int32
	Accepted        *metav1.Condition
}

type familiesBody struct{ Rows []familyRow }

func (s *Server) familiesPage(w http.ResponseWriter, r *http.Request) {
	p := page{Title: "Task definitions", Nav: "taskdefinitions"}
	var tl ecsv1alpha1.TaskDefinitionList
	s.listInto(r.Context(), kindTaskDefinitions, &tl, &p.Notices)
	rows := make([]familyRow, len(tl.Items))
	for i := range tl.Items {
		td := &tl.Items[i]
		row := familyRow{Namespace: td.Namespace, Name: td.Name, Latest: td.Status.LatestRevision, Kept: len(td.Status.Revisions),
			Accepted: apimeta.FindStatusCondition(td.Status.Conditions, "Accepted")}
		for _, rev := range td.Status.Revisions {
			if rev.Status == ecsv1alpha1.RevisionActive {
				row.Active++
			}
		}
		if u := td.Status.Utilization; u != nil {
			row.CPU, row.Memory = u.CPUUtilization, u.MemoryUtilization
		}
		rows[i] = row
	}
	slices.SortFunc(rows, func(a, b familyRow) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	p.Body = familiesBody{Rows: rows}
	s.render(w, r, http.StatusOK, "families.html", p)
}

type familyBody struct {
	TD *ecsv1alpha1.TaskDefinition
	// Previous maps a revision to the kept revision before it, for "diff with
	// previous" links.
	Previous map[int32]int32
}

func (s *Server) familyPage(w http.ResponseWriter, r *http.Request) {
	td := &ecsv1alpha1.TaskDefinition{}
	if !s.getOr404(w, r, kindTaskDefinitions, client.ObjectKey{Namespace: r.PathValue("ns"), Name: r.PathValue("name")}, td) {
		return
	}
	b := familyBody{TD: td, Previous: map[int32]int32{}}
	revs := td.Status.Revisions // newest first
	for i := 0; i+1 < len(revs); i++ {
		b.Previous[revs[i].Revision] = revs[i+1].Revision
	}
	s.render(w, r, http.StatusOK, "family.html", page{Title: "Task definition " + td.Name, Nav: "taskdefinitions", Body: b})
}

type diffBody struct {
	TD        *ecsv1alpha1.TaskDefinition
	A, B      int32
	Rows      []diffRow
	Changed   int
	Revisions []int32
}

// pickRevisions reads the a and b query fields, defaulting to the previous kept
// revision and the latest; both must be kept revisions.
func pickRevisions(q url.Values, kept []int32) (int32, int32, error) {
	if len(kept) == 0 {
		return 0, 0, &fieldError{"b", "the family has no registered revision yet"}
	}
	b := kept[0]
	a := b
	if len(kept) > 1 {
		a = kept[1]
	}
	read := func(field string, def int32) (int32, error) {
		raw := strings.TrimSpace(q.Get(field))
		if raw == "" {
			return def, nil
		}
		n, err := strconv.ParseInt(raw, 10, 32)
		if err != nil || n < 1 {
			return 0, &fieldError{field, fmt.Sprintf("%q is not a revision number", raw)}
		}
		if !slices.Contains(kept, int32(n)) {
			return 0, &fieldError{field, fmt.Sprintf("revision %d is not kept (kept: %s)", n, joinRevisions(kept))}
		}
		return int32(n), nil
	}
	var err error
	if a, err = read("a", a); err != nil {
		return 0, 0, err
	}
	if b, err = read("b", b); err != nil {
		return 0, 0, err
	}
	return a, b, nil
}

func joinRevisions(revs []int32) string {
	s := make([]string, len(revs))
	for i, r := range revs {
		s[i] = strconv.Itoa(int(r))
	}
	return strings.Join(s, ", ")
}

func (s *Server) diffPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	td := &ecsv1alpha1.TaskDefinition{}
	if !s.getOr404(w, r, kindTaskDefinitions, client.ObjectKey{Namespace: r.PathValue("ns"), Name: r.PathValue("name")}, td) {
		return
	}
	kept := make([]int32, len(td.Status.Revisions))
	for i, rev := range td.Status.Revisions {
		kept[i] = rev.Revision
	}
	a, b, err := pickRevisions(r.URL.Query(), kept)
	if err != nil {
		s.fail(w, r, nil, http.StatusBadRequest, err)
		return
	}
	left, err := s.revisionYAML(ctx, td, a)
	if err != nil {
		s.fail(w, r, nil, http.StatusInternalServerError, err)
		return
	}
	right, err := s.revisionYAML(ctx, td, b)
	if err != nil {
		s.fail(w, r, nil, http.StatusInternalServerError, err)
		return
	}
	body := diffBody{TD: td, A: a, B: b, Rows: sideBySide(left, right), Revisions: kept}
	for _, row := range body.Rows {
		if row.Kind != diffEqual {
			body.Changed++
		}
	}
	title := fmt.Sprintf("%s: revision %d and %d", td.Name, a, b)
	s.render(w, r, http.StatusOK, "diff.html", page{Title: title, Nav: "taskdefinitions", Body: body})
}

// revisionYAML reads a stored revision (a ControllerRevision, not cached: only the
// diff page reads them) and renders its spec as YAML.
func (s *Server) revisionYAML(ctx context.Context, td *ecsv1alpha1.TaskDefinition, n int32) (string, error) {
	var cr appsv1.ControllerRevision
	key := client.ObjectKey{Namespace: td.Namespace, Name: ecsv1alpha1.RevisionName(td.Name, n)}
	if err := s.direct.Get(ctx, key, &cr); err != nil {
		return "", fmt.Errorf("reading revision %d of %s: %w", n, td.Name, err)
	}
	out, err := yaml.JSONToYAML(cr.Data.Raw)
	if err != nil {
		return "", fmt.Errorf("rendering revision %d of %s: %w", n, td.Name, err)
	}
	return string(out), nil
}
