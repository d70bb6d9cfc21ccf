package bench

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"

	"github.com/berthdev/berth/test/testenv"
)

// Machine describes the host the run measured.
type Machine struct {
	CPUModel    string `json:"cpuModel"`
	Cores       int    `json:"cores"`
	MemoryKiB   int64  `json:"memoryKiB"`
	Kernel      string `json:"kernel"`
	LoadAverage string `json:"loadAverage"`
	Root        bool   `json:"root"`
}

func readMachine() Machine {
	m := Machine{Cores: goruntime.NumCPU(), Root: os.Geteuid() == 0}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		_ = f.Close() // read-only
	}
	m.MemoryKiB, _ = meminfoKiB("MemTotal")
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.LoadAverage = loadAverage()
	return m
}

// loadAverage is the first three fields of /proc/loadavg.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// readVersions asks each tool for its version, as it prints it (first line), and
// git for the commit the harness was built from.
func readVersions(berth string) map[string]string {
	bin := testenv.BinDir()
	v := map[string]string{"Go": goruntime.Version()}
	for name, args := range map[string][]string{
		"kube-apiserver": {filepath.Join(bin, "kube-apiserver"), "--version"},
		"etcd":           {filepath.Join(bin, "etcd"), "--version"},
		"containerd":     {filepath.Join(bin, "containerd"), "--version"},
		"runc":           {"runc", "--version"},
		"berth":          {berth, "version"},
	} {
		v[name] = firstLine(args...)
	}
	commit := firstLine("git", "-C", testenv.RepoRoot(), "rev-parse", "--short", "HEAD")
	if out, err := exec.Command("git", "-C", testenv.RepoRoot(), "status", "--porcelain").Output(); err == nil && len(out) > 0 {
		commit += " (with uncommitted changes)"
	}
	v["Git commit"] = commit
	return v
}

func firstLine(args ...string) string {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "PATH="+os.Getenv("PATH")+":/usr/sbin:/sbin")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(line)
}
