package streaming

import (
	"context"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	"github.com/berthdev/berth/agent/runtime"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/access"
	routes "github.com/berthdev/berth/internal/streaming"
)

// MessageExecNotEnabled is ECS's refusal of ExecuteCommand in a task run without
// it, naming Berth's field.
const MessageExecNotEnabled = "execute command was not enabled when the task was run (spec.enableExecuteCommand is false): " +
	"start a new task with enableExecuteCommand, or for a service set it and force a new deployment"

// exec serves /exec/{namespace}/{task}: authenticate, authorize (audited when
// denied), check the task allows it, pick the container, upgrade, run, report the
// exit code.
func (s *Server) exec(w http.ResponseWriter, r *http.Request) {
	key := types.NamespacedName{Namespace: r.PathValue("namespace"), Name: r.PathValue("task")}
	log := s.cfg.Log.WithValues(logTask, key.String())
	cmd := r.URL.Query()[routes.ParamCommand]
	u, ok := s.authorize(w, r, func(u user.Info) authorizer.Attributes { return access.ExecAttributes(u, key.Namespace, key.Name) })
	if !ok {
		if u != nil { // denied (not unauthenticated, nor an error asking)
			t, _ := s.task(r.Context(), key)
			s.cfg.Audit.denied(t, key, u, cmd)
			log.Info("exec denied", logUser, u.GetName(), logCommand, cmd)
		}
		return
	}
	req, err := parseExecQuery(r.URL.Query())
	if err != nil {
		access.WriteStatus(w, &apierrors.NewBadRequest(err.Error()).ErrStatus)
		return
	}
	t, id, serr := s.execTarget(r, key, &req)
	if serr != nil {
		access.WriteStatus(w, &serr.ErrStatus)
		return
	}
	sess, err := openSession(w, r, req)
	if err != nil {
		log.Info("exec session not opened", logUser, u.GetName(), logReason, err.Error())
		return
	}
	defer sess.close()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-sess.done:
			cancel() // the client went away: so does its command
		case <-ctx.Done():
		}
	}()
	s.cfg.Audit.started(t, u, req.container, req.command)
	log.Info("exec started", logUser, u.GetName(), logContainer, req.container, logCommand, req.command)
	code, err := s.cfg.Runtime.ExecStream(ctx, id, runtime.StreamOptions{
		Cmd: req.command, TTY: req.tty, Stdin: sess.stdin, Stdout: sess.stdout, Stderr: sess.stderr, Resize: sess.resize,
	})
	st := exitStatus(code)
	if err != nil {
		st = failureStatus(err)
	}
	if werr := sess.writeStatus(st); werr != nil {
		log.V(1).Info("writing an exec's status", logReason, werr.Error())
	}
	log.Info("exec ended", logUser, u.GetName(), logContainer, req.container, logExitCode, code)
}

// execTarget is the task and the runtime ID of the container req names, once the
// task allows exec; req.container is set to the container picked.
func (s *Server) execTarget(r *http.Request, key types.NamespacedName, req *execRequest) (*ecsv1alpha1.Task, string, *apierrors.StatusError) {
	t, serr := s.task(r.Context(), key)
	if serr != nil {
		return nil, "", serr
	}
	if !t.Spec.EnableExecuteCommand {
		return nil, "", statusError(http.StatusConflict, "ExecuteCommandNotEnabled", "task %s: %s", key, MessageExecNotEnabled)
	}
	name, err := routes.PickContainer(t, req.container)
	if err != nil {
		return nil, "", apierrors.NewBadRequest(err.Error())
	}
	req.container = name
	id, serr := s.runningContainer(r.Context(), t, name)
	return t, id, serr
}
