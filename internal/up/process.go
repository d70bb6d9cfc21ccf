package up

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is one component's process: a child of this `up`, or one a previous `up`
// started, found again through its pid file (adopted; `berth down` after a crash).
type proc struct {
	name    string
	pid     int
	bin     string
	logPath string
	pidPath string
	// exited is closed when a child ends; nil for adopted processes, which are
	// not ours to wait for.
	exited chan struct{}
}

// startProc starts bin with args as component name, its output appended to the
// component's log, in its own process group (so the terminal's Ctrl-C reaches only
// `up`, which then stops the components in order), and records its pid.
func startProc(l layout, name, bin string, args, env []string) (*proc, error) {
	if resolved, err := filepath.EvalSymlinks(bin); err == nil {
		bin = resolved // /proc/<pid>/exe shows the resolved path: see runs
	}
	p := &proc{name: name, bin: bin, logPath: l.logFile(name), pidPath: l.pidFile(name)}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer func() { _ = logf.Close() }() // the child has its own descriptor
	_, _ = fmt.Fprintf(logf, "\n==== %s: %s %s\n", time.Now().UTC().Format(time.RFC3339), bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p.pid = cmd.Process.Pid
	p.exited = make(chan struct{})
	go func() { _ = cmd.Wait(); close(p.exited) }()
	if err := os.WriteFile(p.pidPath, []byte(fmt.Sprintf("%d\n%s\n", p.pid, bin)), 0o644); err != nil {
		p.kill()
		return nil, fmt.Errorf("recording %s's pid: %w", name, err)
	}
	return p, nil
}

// adoptProc returns the process recorded in name's pid file when it still runs the
// recorded binary (a pid reused by another program is left alone), else nil.
func adoptProc(l layout, name string) *proc {
	b, err := os.ReadFile(l.pidFile(name))
	if err != nil {
		return nil
	}
	fields := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(fields) != 2 {
		return nil
	}
	pid, err := strconv.Atoi(fields[0])
	if err != nil || pid <= 1 {
		return nil
	}
	p := &proc{name: name, pid: pid, bin: fields[1], logPath: l.logFile(name), pidPath: l.pidFile(name)}
	if !p.runs() {
		_ = os.Remove(p.pidPath)
		return nil
	}
	return p
}

// runs reports whether an adopted pid still runs the recorded binary.
func (p *proc) runs() bool {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", p.pid))
	if err != nil {
		return false
	}
	if strings.TrimSuffix(exe, " (deleted)") != p.bin {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses; Z is a zombie.
	if i := bytes.LastIndexByte(stat, ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
		return false
	}
	return true
}

// alive reports whether the process still runs.
func (p *proc) alive() bool {
	if p.exited != nil {
		select {
		case <-p.exited:
			return false
		default:
			return true
		}
	}
	return p.runs()
}

// waitExit waits up to d for the process to end.
func (p *proc) waitExit(d time.Duration) bool {
	if p.exited != nil {
		select {
		case <-p.exited:
			return true
		case <-time.After(d):
			return false
		}
	}
	deadline := time.Now().Add(d)
	for p.runs() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// stop sends SIGTERM, and SIGKILL after grace, and forgets the pid file. Only the
// process itself is signalled: containerd's shims must outlive it until their
// containers are gone.
func (p *proc) stop(grace time.Duration) error {
	defer func() { _ = os.Remove(p.pidPath) }()
	if !p.alive() {
		return nil
	}
	_ = syscall.Kill(p.pid, syscall.SIGTERM)
	if p.waitExit(grace) {
		return nil
	}
	p.kill()
	return fmt.Errorf("%s did not stop within %s of SIGTERM: killed", p.name, grace)
}

func (p *proc) kill() {
	_ = syscall.Kill(p.pid, syscall.SIGKILL)
	p.waitExit(10 * time.Second)
}

// errExited says a component ended while it was expected to run.
var errExited = errors.New("exited")

// waitReady polls check until it succeeds, the process exits (an error with the
// log's tail), ctx ends or timeout passes. While it waits it calls progress every
// few seconds with the time waited so far.
func (p *proc) waitReady(ctx context.Context, timeout time.Duration, check func(context.Context) error, progress func(time.Duration)) error {
	start := time.Now()
	deadline := start.Add(timeout)
	nextProgress := start.Add(5 * time.Second)
	var last error
	for {
		if !p.alive() {
			return fmt.Errorf("%s %w during startup; the end of %s:\n%s", p.name, errExited, p.logPath, logTail(p.logPath, 20))
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		last = check(cctx)
		cancel()
		if last == nil {
			return nil
		}
		now := time.Now()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if now.After(deadline) {
			return fmt.Errorf("%s not ready after %s (%w); the end of %s:\n%s", p.name, timeout, last, p.logPath, logTail(p.logPath, 20))
		}
		if progress != nil && now.After(nextProgress) {
			progress(now.Sub(start).Truncate(time.Second))
			nextProgress = now.Add(5 * time.Second)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// logTail returns the last n lines of the file at path (from its last 16 KiB).
func logTail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer func() { _ = f.Close() }()
	const window = 16 << 10
	st, err := f.Stat()
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	off := st.Size() - window
	if off < 0 {
		off = 0
	}
	buf := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil {
		return "(log unreadable: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(buf), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  | " + strings.Join(lines, "\n  | ")
}
