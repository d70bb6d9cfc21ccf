package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// osDirs is the host's filesystem.
type osDirs struct{}

func (osDirs) MkdirAll(path string, perm os.FileMode) error { return os.MkdirAll(path, perm) }
func (osDirs) Chmod(path string, mode os.FileMode) error    { return os.Chmod(path, mode) }
func (osDirs) RemoveAll(path string) error                  { return os.RemoveAll(path) }
func (osDirs) WriteFile(path string, data []byte, perm os.FileMode) error {
	return os.WriteFile(path, data, perm)
}
func (osDirs) ReadFile(path string) ([]byte, error) { return os.ReadFile(path) }
func (osDirs) Rename(from, to string) error         { return os.Rename(from, to) }

func (osDirs) ReadDir(path string) ([]string, error) {
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names, nil
}

// tmpfsFlags are the mount options that are mount flags rather than tmpfs data.
var tmpfsFlags = map[string]uintptr{
	"ro": unix.MS_RDONLY, "noexec": unix.MS_NOEXEC, "nosuid": unix.MS_NOSUID, "nodev": unix.MS_NODEV,
	"noatime": unix.MS_NOATIME, "nodiratime": unix.MS_NODIRATIME, "relatime": unix.MS_RELATIME,
	"strictatime": unix.MS_STRICTATIME, "sync": unix.MS_SYNCHRONOUS,
	"rw": 0, "exec": 0, "suid": 0, "dev": 0, "atime": 0, "async": 0,
}

func (osDirs) Mkfifo(path string, perm os.FileMode, uid, gid int) error {
	if err := unix.Mkfifo(path, uint32(perm.Perm())); err != nil && !errors.Is(err, unix.EEXIST) {
		return &os.PathError{Op: "mkfifo", Path: path, Err: err}
	}
	return os.Chown(path, uid, gid)
}

func (osDirs) MountTmpfs(path string, options []string) error {
	mounted, err := mountinfo.Mounted(path)
	if err != nil {
		return err
	}
	if mounted {
		return nil
	}
	var flags uintptr
	var data []string
	for _, o := range options {
		if f, ok := tmpfsFlags[o]; ok {
			flags |= f
			continue
		}
		data = append(data, o)
	}
	if err := unix.Mount("tmpfs", path, "tmpfs", flags, strings.Join(data, ",")); err != nil {
		return fmt.Errorf("mount -t tmpfs -o %s: %w", strings.Join(options, ","), err)
	}
	return nil
}

func (osDirs) UnmountAll(path string) error {
	path = filepath.Clean(path)
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(path))
	if err != nil {
		return err
	}
	points := make([]string, 0, len(mounts))
	for _, m := range mounts {
		points = append(points, m.Mountpoint)
	}
	// Deepest first; a mount point may carry several mounts stacked.
	slices.SortFunc(points, func(a, b string) int { return len(b) - len(a) })
	for _, p := range points {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("unmounting %s: %w", p, err)
		}
	}
	return nil
}
