package utilization

import (
	"math"
	"time"
)

// Sample is one reading of a container: its CPU time and its working set, at a
// time.
type Sample struct {
	At          time.Time
	CPU         time.Duration
	MemoryBytes int64
}

// Window averages a container's samples over a window; a task's use is the sum of
// its containers'. The CPU time of a container restarted within the window starts
// again from zero: a fall in CPU time is a restart, and the use before it is
// counted up to the last sample before the fall.
type Window struct {
	samples []Sample
}

// Add records s; samples arrive in time order.
func (w *Window) Add(s Sample) { w.samples = append(w.samples, s) }

// Len is the number of samples recorded.
func (w *Window) Len() int { return len(w.samples) }

// Average is the window's mean CPU use in CPU units and mean working set in MiB,
// both rounded to the nearest. ok is false with fewer than two samples or no time
// between them: a rate needs two readings.
func (w *Window) Average() (cpuUnits, memoryMiB int64, ok bool) {
	if len(w.samples) < 2 {
		return 0, 0, false
	}
	first, last := w.samples[0], w.samples[len(w.samples)-1]
	elapsed := last.At.Sub(first.At)
	if elapsed <= 0 {
		return 0, 0, false
	}
	var cpu time.Duration
	var mem float64
	for i, s := range w.samples {
		mem += float64(s.MemoryBytes)
		if i == 0 {
			continue
		}
		if d := s.CPU - w.samples[i-1].CPU; d > 0 {
			cpu += d
		} else if d < 0 {
			cpu += s.CPU // restarted: its CPU time counts from zero
		}
	}
	cpuUnits = int64(math.Round(cpu.Seconds() / elapsed.Seconds() * CPUUnitsPerCore))
	memoryMiB = int64(math.Round(mem / float64(len(w.samples)) / (1 << 20)))
	return cpuUnits, memoryMiB, true
}
