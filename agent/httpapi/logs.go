package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	"github.com/berthdev/berth/agent/engine"
	"github.com/berthdev/berth/agent/runtime"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/access"
)

// tailChunk is how much of a file is read at a time when looking for its last lines.
const tailChunk = 32 << 10

// logQuery is what /v1/logs is asked.
type logQuery struct {
	// tail is how many lines from the end; negative for the whole file.
	tail   int
	follow bool
}

func parseLogQuery(q url.Values) (logQuery, error) {
	lq := logQuery{tail: -1}
	if v := q.Get("tail"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return lq, fmt.Errorf("tail must be a number of lines, 0 or more, got %q", v)
		}
		lq.tail = n
	}
	if v := q.Get("follow"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return lq, fmt.Errorf("follow must be true or false, got %q", v)
		}
		lq.follow = b
	}
	return lq, nil
}

// httpError is a response with a status and a message for the user.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func notFound(format string, args ...any) *httpError {
	return &httpError{status: http.StatusNotFound, msg: fmt.Sprintf(format, args...)}
}

// logs serves GET /v1/logs/{namespace}/{task}/{container} to a caller that may
// get tasks/log of the task, asked before the task is looked up, so that a caller
// without it cannot learn which tasks run here either.
func (s *Server) logs(w http.ResponseWriter, r *http.Request) {
	task := types.NamespacedName{Namespace: r.PathValue("namespace"), Name: r.PathValue("task")}
	u, serr := s.cfg.Auth.Check(r, func(u user.Info) authorizer.Attributes { return access.LogAttributes(u, task.Namespace, task.Name) })
	if serr != nil {
		s.refuse(w, r, u, serr)
		return
	}
	s.ServeContainerLog(w, r, task, r.PathValue("container"))
}

// ServeContainerLog answers r with the log of a container of a task the engine
// knows, as GET /v1/logs does, with r's ?tail and ?follow, without asking who is
// calling: its callers have. The streaming server (agent/streaming) calls it once
// it has authorized the caller: one reader of log files for both endpoints.
func (s *Server) ServeContainerLog(w http.ResponseWriter, r *http.Request, task types.NamespacedName, container string) {
	q, err := parseLogQuery(r.URL.Query())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	path, herr := s.logPath(r.Context(), task, container)
	if herr != nil {
		http.Error(w, herr.msg, herr.status)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	if err := s.serveLog(r.Context(), w, path, q); err != nil && r.Context().Err() == nil {
		s.cfg.Log.V(1).Info("serving a container log", logPath, path, logReason, err.Error())
	}
}

// logPath finds the log file of a container of a task the engine knows.
func (s *Server) logPath(ctx context.Context, task types.NamespacedName, container string) (string, *httpError) {
	rep, ok := findTask(s.cfg.Tasks(), task)
	if !ok {
		return "", notFound("task %s is not known to this agent\n", task)
	}
	var names []string
	known := false
	for _, c := range rep.Containers {
		names = append(names, c.Name)
		known = known || c.Name == container
	}
	if !known {
		return "", notFound("task %s has no container %q (its containers: %s)\n", task, container, strings.Join(names, ", "))
	}
	infos, err := s.cfg.Runtime.List(ctx, map[string]string{runtime.LabelTaskUID: string(rep.UID), runtime.LabelContainer: container})
	if err != nil {
		return "", &httpError{status: http.StatusServiceUnavailable, msg: "listing containers: " + err.Error() + "\n"}
	}
	if len(infos) == 0 {
		return "", notFound("container %q of task %s has no log on this instance: it was not created yet, or it was cleaned up\n", container, task)
	}
	if infos[0].LogPath == "" {
		return "", notFound("container %q of task %s keeps no log (logConfiguration.logDriver is none)\n", container, task)
	}
	path := filepath.Clean(infos[0].LogPath)
	if !filepath.IsAbs(path) || !strings.HasPrefix(path, s.logRoot+string(filepath.Separator)) {
		return "", &httpError{status: http.StatusForbidden, msg: fmt.Sprintf("the log of container %q of task %s is outside the agent's state directory\n", container, task)}
	}
	return path, nil
}

// findTask picks the task's report: the one not STOPPED if the name was reused.
func findTask(reports []engine.Report, task types.NamespacedName) (engine.Report, bool) {
	var found *engine.Report
	for i := range reports {
		r := &reports[i]
		if r.Task != task {
			continue
		}
		if found == nil || found.LastStatus == ecsv1alpha1.TaskStopped && r.LastStatus != ecsv1alpha1.TaskStopped {
			found = r
		}
	}
	if found == nil {
		return engine.Report{}, false
	}
	return *found, true
}

// serveLog writes the file (its last q.tail lines) and, when following, what is
// appended to it until ctx ends or the file is removed. A file that does not exist
// yet (the container has not started) is empty.
func (s *Server) serveLog(ctx context.Context, w http.ResponseWriter, path string, q logQuery) error {
	f, err := openLog(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	defer func() {
		if f != nil {
			_ = f.Close()
		}
	}()
	var off int64
	if f != nil {
		if off, err = writeInitial(w, f, q.tail); err != nil {
			return err
		}
	}
	if !q.follow {
		return nil
	}
	return s.follow(ctx, w, path, &f, off)
}

// follow streams what is appended to the file from off, opening it into *f once it
// exists, until ctx ends (the client went away or the agent stops) or the file is
// removed (the task was cleaned up).
func (s *Server) follow(ctx context.Context, w http.ResponseWriter, path string, f **os.File, off int64) error {
	rc := http.NewResponseController(w)
	if err := rc.Flush(); err != nil {
		return err
	}
	t := time.NewTicker(s.cfg.FollowPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if *f == nil {
			opened, err := openLog(path)
			if errors.Is(err, os.ErrNotExist) {
				continue
			} else if err != nil {
				return err
			}
			*f = opened
		}
		n, err := copyAppended(w, *f, path, off)
		if err != nil || n < 0 {
			return err
		}
		if n != off {
			off = n
			if err := rc.Flush(); err != nil {
				return err
			}
		}
	}
}

// openLog opens a regular file, refusing symlinks.
func openLog(path string) (*os.File, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	return os.Open(path)
}

// writeInitial writes the file from the start of its last tail lines (all of it for
// a negative tail) to its current end, and returns that end.
func writeInitial(w io.Writer, f *os.File, tail int) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := fi.Size()
	start := int64(0)
	if tail >= 0 {
		if start, err = tailOffset(f, size, tail); err != nil {
			return 0, err
		}
	}
	if _, err := io.Copy(w, io.NewSectionReader(f, start, size-start)); err != nil {
		return 0, err
	}
	return size, nil
}

// copyAppended writes what was appended to f since off and returns the new offset,
// or -1 when path is gone. A file shorter than off was truncated by rotation: it is
// read again from its start.
func copyAppended(w io.Writer, f *os.File, path string, off int64) (int64, error) {
	if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
		return -1, nil
	}
	fi, err := f.Stat()
	if err != nil {
		return off, err
	}
	size := fi.Size()
	if size < off {
		off = 0
	}
	if size == off {
		return off, nil
	}
	if _, err := io.Copy(w, io.NewSectionReader(f, off, size-off)); err != nil {
		return off, err
	}
	return size, nil
}

// tailOffset is where the last n lines of the first size bytes of f start. A final
// newline ends the last line rather than starting an empty one.
func tailOffset(f io.ReaderAt, size int64, n int) (int64, error) {
	if n == 0 || size == 0 {
		return size, nil
	}
	end := size
	last := make([]byte, 1)
	if _, err := f.ReadAt(last, size-1); err != nil {
		return 0, err
	}
	if last[0] == '\n' {
		end--
	}
	buf := make([]byte, tailChunk)
	seen := 0
	for end > 0 {
		start := max(end-tailChunk, 0)
		chunk := buf[:end-start]
		if _, err := f.ReadAt(chunk, start); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		for i := len(chunk) - 1; i >= 0; i-- {
			if chunk[i] != '\n' {
				continue
			}
			seen++
			if seen == n {
				return start + int64(i) + 1, nil
			}
		}
		end = start
	}
	return 0, nil
}
