package containerd

import (
	"math"
	"testing"
	"time"

	v1stats "github.com/containerd/cgroups/v3/cgroup1/stats"
	v2stats "github.com/containerd/cgroups/v3/cgroup2/stats"
	"github.com/google/go-cmp/cmp"

	"github.com/berthdev/berth/agent/runtime"
)

func TestStatsFrom(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name   string
		in     any
		want   runtime.ContainerStats
		wantOK bool
	}{
		{
			name: "cgroup v1 with a limit",
			in: &v1stats.Metrics{
				CPU:    &v1stats.CPUStat{Usage: &v1stats.CPUUsage{Total: 1_500_000_000}},
				Memory: &v1stats.MemoryStat{TotalInactiveFile: 1 << 20, Usage: &v1stats.MemoryEntry{Usage: 5 << 20, Limit: 64 << 20}},
			},
			want:   runtime.ContainerStats{CPU: 1500 * time.Millisecond, MemoryUsageBytes: 4 << 20, MemoryLimitBytes: 64 << 20, Time: at},
			wantOK: true,
		},
		{
			name: "cgroup v1 unlimited",
			in: &v1stats.Metrics{
				Memory: &v1stats.MemoryStat{Usage: &v1stats.MemoryEntry{Usage: 3 << 20, Limit: 9223372036854771712}},
			},
			want:   runtime.ContainerStats{MemoryUsageBytes: 3 << 20, Time: at},
			wantOK: true,
		},
		{
			name: "cgroup v2 unlimited, inactive larger than usage",
			in: &v2stats.Metrics{
				CPU:    &v2stats.CPUStat{UsageUsec: 2_000_000},
				Memory: &v2stats.MemoryStat{Usage: 1 << 20, InactiveFile: 2 << 20, UsageLimit: math.MaxUint64},
			},
			want:   runtime.ContainerStats{CPU: 2 * time.Second, Time: at},
			wantOK: true,
		},
		{
			name: "cgroup v2 with a limit",
			in: &v2stats.Metrics{
				Memory: &v2stats.MemoryStat{Usage: 10 << 20, InactiveFile: 2 << 20, UsageLimit: 128 << 20},
			},
			want:   runtime.ContainerStats{MemoryUsageBytes: 8 << 20, MemoryLimitBytes: 128 << 20, Time: at},
			wantOK: true,
		},
		{name: "unknown type", in: "nope", want: runtime.ContainerStats{Time: at}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := statsFrom(tc.in, at)
			if ok != tc.wantOK {
				t.Fatalf("ok = %v, want %v", ok, tc.wantOK)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("stats (-want +got):\n%s", d)
			}
		})
	}
}

func TestNoProcesses(t *testing.T) {
	tests := []struct {
		name string
		in   any
		want bool
	}{
		{name: "cgroup v1, one process", in: &v1stats.Metrics{Pids: &v1stats.PidsStat{Current: 1}}},
		{name: "cgroup v1, none", in: &v1stats.Metrics{Pids: &v1stats.PidsStat{}}, want: true},
		{name: "cgroup v1, not counted", in: &v1stats.Metrics{}},
		{name: "cgroup v2, two processes", in: &v2stats.Metrics{Pids: &v2stats.PidsStat{Current: 2}}},
		{name: "cgroup v2, none", in: &v2stats.Metrics{Pids: &v2stats.PidsStat{}}, want: true},
		{name: "cgroup v2, not counted", in: &v2stats.Metrics{}},
		{name: "unknown type", in: "nope"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := noProcesses(tc.in); got != tc.want {
				t.Errorf("noProcesses = %v, want %v", got, tc.want)
			}
		})
	}
}
