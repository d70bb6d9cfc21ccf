package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Process figures come from /proc, so they describe exactly one process (not its
// children): RSS and PSS in KiB, CPU in seconds (user + system).

// userHZ is the unit of utime and stime in /proc/<pid>/stat: USER_HZ, 100 on Linux.
const userHZ = 100

// statusKiB reads a "Key: N kB" line of /proc/<pid>/status (VmRSS, VmHWM, ...).
func statusKiB(pid int, key string) (int64, error) {
	return kibField(fmt.Sprintf("/proc/%d/status", pid), key)
}

// pssKiB is the process's proportional set size: its private memory plus its share
// of pages mapped by several processes (shims share their binary's pages), so the
// PSS of many processes adds up to what they cost together.
func pssKiB(pid int) (int64, error) {
	return kibField(fmt.Sprintf("/proc/%d/smaps_rollup", pid), "Pss")
}

// meminfoKiB reads a line of /proc/meminfo (MemTotal, MemAvailable).
func meminfoKiB(key string) (int64, error) { return kibField("/proc/meminfo", key) }

func kibField(path, key string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != key {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			break
		}
		return strconv.ParseInt(f[0], 10, 64)
	}
	return 0, fmt.Errorf("%s has no %s", path, key)
}

// procStat returns the CPU seconds (user + system) and the parent pid of a process.
func procStat(pid int) (cpu float64, ppid int, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The command name (field 2) is in parentheses and may contain spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 > len(b) {
		return 0, 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+2:]))
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	ppid, _ = strconv.Atoi(f[1])
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / userHZ, ppid, nil
}

// cpuSeconds is the CPU time of every thread of a process. It sums the nanosecond
// run times of /proc/<pid>/task/*/schedstat, since /proc/<pid>/stat counts in
// hundredths of a second, too coarse for an idle process over a few seconds; it
// falls back to stat where schedstat is missing (kernels without schedstats).
func cpuSeconds(pid int) (float64, error) {
	threads, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err == nil {
		var ns int64
		for _, t := range threads {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
			if err != nil {
				continue // an exiting thread
			}
			f := strings.Fields(string(b))
			if len(f) == 0 {
				continue
			}
			v, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				break
			}
			ns += v
		}
		if ns > 0 {
			return float64(ns) / 1e9, nil
		}
	}
	cpu, _, err := procStat(pid)
	return cpu, err
}

// cmdline returns the arguments of a process (nil when it is gone).
func cmdline(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}

// pids lists every process.
func pids() []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// findProcess returns the first process whose executable has base name exe and
// whose arguments contain every one of the substrings.
func findProcess(exe string, substrings ...string) (int, error) {
	for _, pid := range pids() {
		args := cmdline(pid)
		if len(args) == 0 || filepath.Base(args[0]) != exe {
			continue
		}
		joined := strings.Join(args, " ")
		match := true
		for _, s := range substrings {
			if !strings.Contains(joined, s) {
				match = false
				break
			}
		}
		if match {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no %s process with %q", exe, substrings)
}

// descendants returns the children of pid, their children, and so on.
func descendants(pid int) []int {
	parent := map[int]int{}
	for _, p := range pids() {
		if _, pp, err := procStat(p); err == nil {
			parent[p] = pp
		}
	}
	var out []int
	frontier := []int{pid}
	for len(frontier) > 0 {
		var next []int
		for p, pp := range parent {
			for _, f := range frontier {
				if pp == f {
					out = append(out, p)
					next = append(next, p)
				}
			}
		}
		frontier = next
	}
	return out
}

// cpuMeter measures the CPU use of named processes over an interval, in cores.
type cpuMeter struct {
	pids  map[string]int
	start map[string]float64
	at    time.Time
}

func newCPUMeter(pids map[string]int) *cpuMeter {
	m := &cpuMeter{pids: pids, start: map[string]float64{}, at: time.Now()}
	for name, pid := range pids {
		m.start[name], _ = cpuSeconds(pid)
	}
	return m
}

// cores returns, per process, the CPU seconds used since the meter started divided
// by the wall time: 1.0 is one core busy all along.
func (m *cpuMeter) cores() map[string]float64 {
	secs, wall := m.seconds()
	out := map[string]float64{}
	if wall <= 0 {
		return out
	}
	for name, s := range secs {
		out[name] = s / wall
	}
	return out
}

// seconds returns, per process, the CPU seconds used since the meter started, and
// the wall seconds since then.
func (m *cpuMeter) seconds() (map[string]float64, float64) {
	wall := time.Since(m.at).Seconds()
	out := map[string]float64{}
	for name, pid := range m.pids {
		now, err := cpuSeconds(pid)
		if err != nil {
			continue
		}
		out[name] = now - m.start[name]
	}
	return out, wall
}
