package httpapi

import (
	"context"

	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	"github.com/berthdev/berth/agent/engine"
	"github.com/berthdev/berth/internal/access"
)

// visible keeps the reports of the tasks u may see, by the rule the apiserver
// applies to the Task objects themselves: every task with list on tasks
// cluster-wide, a namespace's tasks with list on tasks in it, else each task u may
// get. A report is the task's status as this agent sees it, so reading it needs
// what reading the Task's status needs, no more (not tasks/log: a report holds no
// output) and no less.
//
// Filtering rather than refusing whoever lacks a cluster-wide list: on a shared
// machine each team then sees its own tasks here, as it does through the
// apiserver, and nothing of the others'. The questions are few: one for a
// cluster-wide reader, then at most one per namespace and one per task of a
// namespace the caller may not list, each answer cached by the Delegated for
// seconds. An error asking refuses the whole answer rather than return a list
// that silently lacks tasks.
func visible(ctx context.Context, auth *access.Delegated, u user.Info, reports []engine.Report) ([]engine.Report, error) {
	ask := func(a authorizer.Attributes) (bool, error) {
		ok, _, err := auth.Allowed(ctx, a)
		return ok, err
	}
	if all, err := ask(access.ListTasksAttributes(u, "")); err != nil || all {
		return reports, err
	}
	listable := map[string]bool{}
	var out []engine.Report
	for _, r := range reports {
		ns := r.Task.Namespace
		may, asked := listable[ns]
		if !asked {
			var err error
			if may, err = ask(access.ListTasksAttributes(u, ns)); err != nil {
				return nil, err
			}
			listable[ns] = may
		}
		if !may {
			var err error
			if may, err = ask(access.GetTaskAttributes(u, ns, r.Task.Name)); err != nil {
				return nil, err
			}
		}
		if may {
			out = append(out, r)
		}
	}
	return out, nil
}
