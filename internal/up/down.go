package up

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berthdev/berth/internal/up/localrun"
)

// downTimeout bounds how long Down waits for a running `up` to stop: the drain of
// its tasks (at most drainTimeout) and the components' own stops.
const downTimeout = 5 * time.Minute

// Down stops the `up` running on o.StateDir, as Ctrl-C in its terminal would, and
// waits until it has stopped everything. When no `up` runs but components of one
// are left (it was killed), Down stops them and cleans up itself.
func Down(ctx context.Context, o Options) error {
	if err := o.Validate(); err != nil {
		return err
	}
	l := newLayout(o.StateDir)
	out := &printer{w: o.Out}
	if _, err := os.Stat(l.path("run")); err != nil {
		out.printf("berth down: nothing to stop in %s", o.StateDir)
		return nil
	}
	if pid, running := runningUp(l); running {
		out.printf("berth down: stopping berth up (pid %d)", pid)
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
			return fmt.Errorf("signalling berth up (pid %d): %w", pid, err)
		}
		return waitUnlocked(ctx, l, pid, out)
	}
	unlock, err := lock(l)
	if err != nil {
		return err // an `up` started meanwhile
	}
	defer unlock()
	loadRunOptions(l, &o)
	s := &session{o: o, l: l, out: out, procs: map[string]*proc{}}
	if !s.adoptAll() {
		mps, err := localrun.UnmountUnder(l.dir)
		for _, mp := range mps {
			out.printf("  unmounted leftover %s", mp)
		}
		out.printf("berth down: nothing running in %s", o.StateDir)
		return err
	}
	out.printf("berth down: berth up is not running, but some of its components are; stopping them")
	return s.shutdown()
}

// runningUp returns the pid of the `up` holding the state directory's lock.
func runningUp(l layout) (int, bool) {
	f, err := os.Open(l.lockFile())
	if err != nil {
		return 0, false
	}
	defer func() { _ = f.Close() }()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err == nil {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return 0, false
	}
	b, err := os.ReadFile(l.lockFile())
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid, err == nil && pid > 0
}

// waitUnlocked waits until the `up` with pid releases the lock, which it does
// after its shutdown, and reports that.
func waitUnlocked(ctx context.Context, l layout, pid int, out *printer) error {
	ctx, cancel := context.WithTimeout(ctx, downTimeout)
	defer cancel()
	started := time.Now()
	next := started.Add(10 * time.Second)
	err := poll(ctx, func(context.Context) (bool, error) {
		if _, running := runningUp(l); !running {
			return true, nil
		}
		if time.Now().After(next) {
			out.printf("  still stopping (%s)...", time.Since(started).Truncate(time.Second))
			next = time.Now().Add(10 * time.Second)
		}
		return false, nil
	})
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("berth up (pid %d) did not stop within %s: see its terminal and %s", pid, downTimeout, l.path("logs"))
	}
	if err != nil {
		return err
	}
	out.printf("berth down: stopped (%s)", time.Since(started).Round(100*time.Millisecond))
	return nil
}
