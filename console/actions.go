package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/taskrules"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// Every action is three requests: a GET of its route (from a form on the object's
// page) renders a confirmation that says exactly what will change; Confirm POSTs
// the same fields with the CSRF token; the POST makes the change with the user's
// identity and redirects to the object's page with a flash message.

// StopReason is the stopReason of tasks stopped from the console.
const StopReason = "Task stopped by USER via the Berth console"

// maxDesiredCount is the Service API's bound on spec.desiredCount.
const maxDesiredCount = 100000

// action is one thing a console user can do to an object.
type action struct {
	name  string
	route string
	// prepare reads the object and the request's fields and says what will happen;
	// a bad field is a *fieldError.
	prepare func(ctx context.Context, s *Server, r *http.Request) (*pending, error)
}

// pending is an action ready to confirm and perform.
type pending struct {
	Question string
	// Notes qualify the question (an auto scaler that may override a scale).
	Notes []string
	// Fields are posted back with the confirmation.
	Fields []formField
	// Back is the object's page.
	Back string
	// do performs the action and returns the flash message.
	do func(ctx context.Context, c client.Client) (string, error)
}

type formField struct{ Name, Value string }

// fieldError is bad input, naming the field.
type fieldError struct{ Field, Msg string }

func (e *fieldError) Error() string { return e.Field + ": " + e.Msg }

var actions = []action{
	{name: "scale", route: "/services/{ns}/{name}/scale", prepare: prepareScale},
	{name: "redeploy", route: "/services/{ns}/{name}/redeploy", prepare: prepareRedeploy},
	{name: "stop", route: "/tasks/{ns}/{name}/stop", prepare: prepareStop},
	{name: "drain", route: "/instances/{name}/drain", prepare: prepareDrain},
}

// parseDesiredCount reads the desiredCount field: a whole number within the
// Service API's bounds.
func parseDesiredCount(v url.Values) (int32, error) {
	raw := strings.TrimSpace(v.Get("desiredCount"))
	if raw == "" {
		return 0, &fieldError{"desiredCount", "is required"}
	}
	n, err := strconv.ParseInt(raw, 10, 32)
	if err != nil {
		return 0, &fieldError{"desiredCount", fmt.Sprintf("%q is not a whole number", raw)}
	}
	if n < 0 || n > maxDesiredCount {
		return 0, &fieldError{"desiredCount", fmt.Sprintf("%d is out of range (0-%d)", n, maxDesiredCount)}
	}
	return int32(n), nil
}

// parseDraining reads the draining field: true to drain, false to undrain.
func parseDraining(v url.Values) (bool, error) {
	switch raw := v.Get("draining"); raw {
	case "true":
		return true, nil
	case "false":
		return false, nil
	case "":
		return false, &fieldError{"draining", "is required (true or false)"}
	default:
		return false, &fieldError{"draining", fmt.Sprintf("must be true or false, got %q", raw)}
	}
}

func mergePatch(ctx context.Context, c client.Client, obj client.Object, patch map[string]any) error {
	raw, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	return c.Patch(ctx, obj, client.RawPatch(types.MergePatchType, raw), client.FieldOwner(FieldManager))
}

func prepareScale(ctx context.Context, s *Server, r *http.Request) (*pending, error) {
	svc := &ecsv1alpha1.Service{}
	key := client.ObjectKey{Namespace: r.PathValue("ns"), Name: r.PathValue("name")}
	if err := s.get(ctx, kindServices, key, svc); err != nil {
		return nil, err
	}
	if svc.Spec.SchedulingStrategy == ecsv1alpha1.SchedulingDaemon {
		return nil, &fieldError{"desiredCount", "a DAEMON service runs one task per instance and takes no desiredCount"}
	}
	n, err := parseDesiredCount(r.Form)
	if err != nil {
		return nil, err
	}
	from := "unset"
	if svc.Spec.DesiredCount != nil {
		from = strconv.Itoa(int(*svc.Spec.DesiredCount))
	}
	p := &pending{
		Question: fmt.Sprintf("Scale service %s from %s to %d?", svc.Name, from, n),
		Fields:   []formField{{"desiredCount", strconv.Itoa(int(n))}},
		Back:     servicePath(svc.Namespace, svc.Name),
		do: func(ctx context.Context, c client.Client) (string, error) {
			if err := mergePatch(ctx, c, svc, map[string]any{"spec": map[string]any{"desiredCount": n}}); err != nil {
				return "", err
			}
			return fmt.Sprintf("Service %s scaled to %d.", svc.Name, n), nil
		},
	}
	if as := svc.Spec.AutoScaling; as != nil {
		p.Notes = append(p.Notes, fmt.Sprintf("The service is auto scaled between %d and %d tasks: the auto scaler may override this count.", as.MinCapacity, as.MaxCapacity))
	}
	return p, nil
}

func prepareRedeploy(ctx context.Context, s *Server, r *http.Request) (*pending, error) {
	svc := &ecsv1alpha1.Service{}
	key := client.ObjectKey{Namespace: r.PathValue("ns"), Name: r.PathValue("name")}
	if err := s.get(ctx, kindServices, key, svc); err != nil {
		return nil, err
	}
	return &pending{
		Question: fmt.Sprintf("Force a new deployment of service %s?", svc.Name),
		Notes:    []string{"Every task of the service is replaced, within its deployment bounds, even though the task definition is unchanged."},
		Back:     servicePath(svc.Namespace, svc.Name),
		do: func(ctx context.Context, c client.Client) (string, error) {
			// An opaque token that changes each time, as `kubectl rollout restart` uses.
			token := s.now().UTC().Format(time.RFC3339Nano)
			if err := mergePatch(ctx, c, svc, map[string]any{"spec": map[string]any{"forceNewDeployment": token}}); err != nil {
				return "", err
			}
			return fmt.Sprintf("New deployment of service %s started.", svc.Name), nil
		},
	}, nil
}

func prepareStop(ctx context.Context, s *Server, r *http.Request) (*pending, error) {
	t := &ecsv1alpha1.Task{}
	key := client.ObjectKey{Namespace: r.PathValue("ns"), Name: r.PathValue("name")}
	if err := s.get(ctx, kindTasks, key, t); err != nil {
		return nil, err
	}
	if t.Spec.DesiredStatus == ecsv1alpha1.DesiredStopped {
		return nil, &fieldError{"desiredStatus", fmt.Sprintf("task %s is already stopping (desiredStatus STOPPED)", t.Name)}
	}
	p := &pending{
		Question: fmt.Sprintf("Stop task %s?", t.Name),
		Back:     taskPath(t.Namespace, t.Name),
		do: func(ctx context.Context, c client.Client) (string, error) {
			if err := c.Patch(ctx, t, taskrules.StopPatch(ecsv1alpha1.StopUserInitiated, StopReason), client.FieldOwner(FieldManager)); err != nil {
				return "", err
			}
			return fmt.Sprintf("Task %s is stopping.", t.Name), nil
		},
	}
	if svc := t.Labels[ecsv1alpha1.LabelService]; svc != "" {
		p.Notes = append(p.Notes, fmt.Sprintf("Service %s starts a replacement to keep its desired count.", svc))
	}
	return p, nil
}

func prepareDrain(ctx context.Context, s *Server, r *http.Request) (*pending, error) {
	ci := &ecsv1alpha1.ContainerInstance{}
	if err := s.get(ctx, kindInstances, client.ObjectKey{Name: r.PathValue("name")}, ci); err != nil {
		return nil, err
	}
	draining, err := parseDraining(r.Form)
	if err != nil {
		return nil, err
	}
	p := &pending{
		Fields: []formField{{"draining", strconv.FormatBool(draining)}},
		Back:   instancePath(ci.Name),
		do: func(ctx context.Context, c client.Client) (string, error) {
			if err := mergePatch(ctx, c, ci, map[string]any{"spec": map[string]any{"draining": draining}}); err != nil {
				return "", err
			}
			if draining {
				return fmt.Sprintf("Instance %s is draining.", ci.Name), nil
			}
			return fmt.Sprintf("Instance %s is active again.", ci.Name), nil
		},
	}
	if draining {
		p.Question = fmt.Sprintf("Drain instance %s?", ci.Name)
		p.Notes = []string{"It receives no new tasks, and its service tasks move to other instances within each service's deployment bounds. Standalone tasks keep running."}
	} else {
		p.Question = fmt.Sprintf("Undrain instance %s?", ci.Name)
		p.Notes = []string{"It receives new tasks again."}
	}
	return p, nil
}

// confirmBody is the body of confirm.html.
type confirmBody struct {
	Action string
	Name   string
	*pending
}

// confirm renders an action's confirmation page.
func (s *Server) confirm(a action) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		p, err := a.prepare(r.Context(), s, r)
		if err != nil {
			s.actionFailed(w, r, err)
			return
		}
		s.render(w, r, http.StatusOK, "confirm.html", page{Title: p.Question, Body: confirmBody{Action: r.URL.Path, Name: a.name, pending: p}})
	}
}

// perform makes a confirmed action (ServeHTTP has checked Origin and CSRF).
func (s *Server) perform(a action) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			s.fail(w, r, nil, http.StatusBadRequest, err)
			return
		}
		p, err := a.prepare(r.Context(), s, r)
		if err != nil {
			s.actionFailed(w, r, err)
			return
		}
		msg, err := p.do(r.Context(), s.direct)
		if err != nil {
			s.log.Info("action failed", "action", a.name, "path", r.URL.Path, "error", err.Error())
			s.fail(w, r, nil, http.StatusInternalServerError, err)
			return
		}
		s.log.Info("action performed", "action", a.name, "path", r.URL.Path)
		if sess := sessionFrom(r.Context()); sess != nil {
			s.guard.setFlash(sess, msg)
		}
		http.Redirect(w, r, p.Back, http.StatusSeeOther)
	}
}

func (s *Server) actionFailed(w http.ResponseWriter, r *http.Request, err error) {
	var fe *fieldError
	if errors.As(err, &fe) {
		s.fail(w, r, nil, http.StatusBadRequest, err)
		return
	}
	s.fail(w, r, nil, http.StatusInternalServerError, err)
}

func servicePath(ns, name string) string {
	return "/services/" + url.PathEscape(ns) + "/" + url.PathEscape(name)
}
func taskPath(ns, name string) string {
	return "/tasks/" + url.PathEscape(ns) + "/" + url.PathEscape(name)
}
func instancePath(name string) string { return "/instances/" + url.PathEscape(name) }
func clusterPath(name string) string  { return "/clusters/" + url.PathEscape(name) }
