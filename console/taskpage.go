package console

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/revision"
)

const (
	// logTail is how many recent log lines of each container the task page shows.
	logTail = 50
	// logTimeout bounds the wait for the agents' answers, so a page never hangs on
	// an unreachable instance.
	logTimeout = 5 * time.Second
)

// logBlock is one container's recent output, or why it is not shown.
type logBlock struct {
	Container string
	Lines     string
	Note      string
}

type taskBody struct {
	Task         *ecsv1alpha1.Task
	Row          taskRow
	Family       string
	Logs         []logBlock
	Events       []eventRow
	EventsNotice string
	Stoppable    bool
	ExecEnabled  bool
}

func (s *Server) taskPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	t := &ecsv1alpha1.Task{}
	if !s.getOr404(w, r, kindTasks, client.ObjectKey{Namespace: r.PathValue("ns"), Name: r.PathValue("name")}, t) {
		return
	}
	p := page{Title: "Task " + t.Name, Nav: "clusters"}
	b := taskBody{Task: t, Row: taskRows([]ecsv1alpha1.Task{*t})[0],
		Stoppable:   t.Spec.DesiredStatus != ecsv1alpha1.DesiredStopped,
		ExecEnabled: t.Spec.EnableExecuteCommand}
	if ref, err := revision.ParseRef(t.Spec.TaskDefinition); err == nil {
		b.Family = ref.Family
	}
	b.Logs = s.recentLogs(ctx, t)
	b.Events, b.EventsNotice = s.events(ctx, t, "Task")
	p.Body = b
	s.render(w, r, http.StatusOK, "task.html", p)
}

// recentLogs asks the task's agent for the last lines of each container, all at
// once, each bounded by logTimeout.
func (s *Server) recentLogs(ctx context.Context, t *ecsv1alpha1.Task) []logBlock {
	out := make([]logBlock, len(t.Status.Containers))
	var wg sync.WaitGroup
	for i, c := range t.Status.Containers {
		out[i].Container = c.Name
		switch {
		case s.agent == nil:
			out[i].Note = "Log lines are unavailable: this console runs without an agent client."
			continue
		case t.Spec.ContainerInstance == "":
			out[i].Note = "Log lines are unavailable: the task is not placed on an instance yet."
			continue
		}
		wg.Add(1)
		go func(b *logBlock) {
			defer wg.Done()
			lctx, cancel := context.WithTimeout(ctx, logTimeout)
			defer cancel()
			data, err := s.agent.Logs(lctx, t.Namespace, t.Name, b.Container, logTail)
			if err != nil {
				b.Note = "Log lines are unavailable: " + err.Error()
				return
			}
			b.Lines = strings.TrimRight(string(data), "\n")
			if b.Lines == "" {
				b.Note = "The container has written no output."
			}
		}(&out[i])
	}
	wg.Wait()
	return out
}
