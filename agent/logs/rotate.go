// Package logs rotates the agent's container log files.
//
// containerd's shim appends each container's stdout and stderr to one file on the
// host, StateDir/logs/<namespace>_<task>_<taskUID>/<container>.log (the path is on
// the container's berth.dev/log-path label), and keeps the file open for the
// container's lifetime. The Rotator checks the files every few seconds and rotates
// one that outgrew its container's logConfiguration options max-size (default 10m)
// by copy-truncate: <container>.log.1 becomes .2 and so on, the live file is copied
// to .1, then truncated in place. The shim writes with O_APPEND, so it carries on at
// the new end without reopening anything. As with Docker's json-file driver, max-file
// (default 5) counts the live file: max-file 3 keeps .log, .log.1 and .log.2. Output
// written between the copy and the truncation is lost, as with logrotate's
// copytruncate.
package logs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"

	"github.com/berthdev/berth/agent/runtime"
)

// Defaults of the json-file options, as Docker's with rotation on.
const (
	DefaultMaxSize  = 10 << 20
	DefaultMaxFiles = 5
	// DefaultInterval is how often the files are checked.
	DefaultInterval = 5 * time.Second
)

// Names of the logConfiguration options the Rotator reads.
const (
	OptionMaxSize = "max-size"
	OptionMaxFile = "max-file"
)

// Policy is how one container's log file is rotated.
type Policy struct {
	// MaxSize is the size in bytes above which the file is rotated.
	MaxSize int64
	// MaxFiles is how many files are kept, the live one included (at least 1: then
	// the file is only truncated).
	MaxFiles int
}

// DefaultPolicy is the policy of a container without options.
var DefaultPolicy = Policy{MaxSize: DefaultMaxSize, MaxFiles: DefaultMaxFiles}

// ParsePolicy reads max-size (bytes, or a number with the unit k, m or g, binary
// multiples as Docker reads them: "10m" is 10 MiB) and max-file from a container's
// logConfiguration options; a missing option takes its default.
func ParsePolicy(options map[string]string) (Policy, error) {
	p := DefaultPolicy
	if v, ok := options[OptionMaxSize]; ok {
		n, err := parseSize(v)
		if err != nil {
			return DefaultPolicy, fmt.Errorf("logConfiguration option %s: %w", OptionMaxSize, err)
		}
		p.MaxSize = n
	}
	if v, ok := options[OptionMaxFile]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 {
			return DefaultPolicy, fmt.Errorf("logConfiguration option %s: want a positive number, got %q", OptionMaxFile, v)
		}
		p.MaxFiles = n
	}
	return p, nil
}

// parseSize reads 1024, 512k, 10m, 1g (also kb, mb, gb, any case).
func parseSize(v string) (int64, error) {
	s := strings.ToLower(strings.TrimSpace(v))
	s = strings.TrimSuffix(s, "b")
	mult := int64(1)
	if s != "" {
		switch s[len(s)-1] {
		case 'k':
			mult = 1 << 10
		case 'm':
			mult = 1 << 20
		case 'g':
			mult = 1 << 30
		}
		if mult > 1 {
			s = s[:len(s)-1]
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 1 || n > (1<<62)/mult {
		return 0, fmt.Errorf("want a positive size such as 10m, got %q", v)
	}
	return n * mult, nil
}

// Rotate rotates path by copy-truncate, keeping maxFiles files in all (the live one
// included).
func Rotate(path string, maxFiles int) error {
	if maxFiles > 1 {
		// Shift .N-2 to .N-1, ..., .1 to .2; the oldest is overwritten.
		for i := maxFiles - 2; i >= 1; i-- {
			if err := os.Rename(rotated(path, i), rotated(path, i+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("rotating %s: %w", path, err)
			}
		}
		if err := copyFile(path, rotated(path, 1)); err != nil {
			return fmt.Errorf("rotating %s: %w", path, err)
		}
	}
	// Truncate in place: the shim keeps the file open and appends to it.
	if err := os.Truncate(path, 0); err != nil {
		return fmt.Errorf("truncating %s: %w", path, err)
	}
	return nil
}

func rotated(path string, n int) string { return path + "." + strconv.Itoa(n) }

// copyFile copies src to a temporary file and renames it to dst, so that dst is
// never seen half-written.
func copyFile(src, dst string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer func() { _ = in.Close() }()
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err = io.Copy(tmp, in); err != nil {
		_ = tmp.Close()
		return err
	}
	if err = tmp.Chmod(0o640); err != nil {
		_ = tmp.Close()
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}

// Lister lists the runtime's containers.
type Lister interface {
	List(ctx context.Context, labels map[string]string) ([]runtime.ContainerInfo, error)
}

// Config configures a Rotator.
type Config struct {
	// Runtime lists the containers and their log paths.
	Runtime Lister
	// Options returns the logConfiguration options of a container (from its task
	// definition revision); nil when it has none. An error leaves the container on
	// the default policy until the next check.
	Options func(ctx context.Context, info runtime.ContainerInfo) (map[string]string, error)
	// Root is the directory the log files live under (StateDir/logs): a log path
	// outside it is never touched, whatever a container's label says.
	Root string
	// Interval between checks (DefaultInterval).
	Interval time.Duration
	// Log receives rotations at V(1) and failures.
	Log logr.Logger
}

// Rotator rotates the log files of the runtime's containers. Run it from one
// goroutine.
type Rotator struct {
	cfg  Config
	root string
	// policies caches each container's policy: a container's log configuration
	// never changes.
	policies map[string]Policy
}

// NewRotator returns a Rotator; call Run.
func NewRotator(cfg Config) *Rotator {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Log.GetSink() == nil {
		cfg.Log = logr.Discard()
	}
	root := filepath.Clean(cfg.Root)
	if abs, err := filepath.Abs(root); err == nil {
		root = abs
	}
	return &Rotator{cfg: cfg, root: root, policies: map[string]Policy{}}
}

// Run checks the files every Interval until ctx ends.
func (r *Rotator) Run(ctx context.Context) {
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := r.Once(ctx); err != nil && ctx.Err() == nil {
			r.cfg.Log.Error(err, "rotating container logs")
		}
	}
}

// Once checks every container's log file once and rotates those over their size.
func (r *Rotator) Once(ctx context.Context) error {
	infos, err := r.cfg.Runtime.List(ctx, nil)
	if err != nil {
		return fmt.Errorf("listing containers: %w", err)
	}
	seen := make(map[string]bool, len(infos))
	var errs []error
	for _, info := range infos {
		seen[info.ID] = true
		if info.LogPath == "" {
			continue
		}
		if err := r.check(ctx, info); err != nil {
			errs = append(errs, err)
		}
	}
	for id := range r.policies {
		if !seen[id] {
			delete(r.policies, id)
		}
	}
	return errors.Join(errs...)
}

// check rotates one container's file if it outgrew its policy.
func (r *Rotator) check(ctx context.Context, info runtime.ContainerInfo) error {
	path := filepath.Clean(info.LogPath)
	if !filepath.IsAbs(path) || !strings.HasPrefix(path, r.root+string(filepath.Separator)) {
		return fmt.Errorf("container %s: log path %s is outside %s, not rotating it", info.ID, path, r.root)
	}
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil // not started yet
	}
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("container %s: log path %s is not a regular file", info.ID, path)
	}
	p := r.policy(ctx, info)
	if fi.Size() <= p.MaxSize {
		return nil
	}
	if err := Rotate(path, p.MaxFiles); err != nil {
		return fmt.Errorf("container %s: %w", info.ID, err)
	}
	r.cfg.Log.V(1).Info("rotated container log", logContainer, info.ID, logPath, path, logSize, fi.Size(), logMaxFiles, p.MaxFiles)
	return nil
}

// policy returns the container's policy, reading its options the first time.
func (r *Rotator) policy(ctx context.Context, info runtime.ContainerInfo) Policy {
	if p, ok := r.policies[info.ID]; ok {
		return p
	}
	if r.cfg.Options == nil {
		return DefaultPolicy
	}
	opts, err := r.cfg.Options(ctx, info)
	if err != nil {
		r.cfg.Log.V(1).Info("reading log options; using the defaults for now", logContainer, info.ID, logReason, err.Error())
		return DefaultPolicy
	}
	p, err := ParsePolicy(opts)
	if err != nil {
		r.cfg.Log.Info("invalid log options; using the defaults", logContainer, info.ID, logReason, err.Error())
	}
	r.policies[info.ID] = p
	return p
}
