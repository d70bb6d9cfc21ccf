package placement

import (
	"cmp"
	"slices"
	"strings"
)

// GPUs are counted by ID, as ECS counts them: an instance registers its GPUs' IDs, a
// task needs a number of them, and each GPU is given to one task at a time. Place
// chooses which ones (Decision.GPUs) and the scheduler records them on the task, so
// that the agent exposes exactly those and a restarted scheduler assumes the same
// ones again (Request.AssignedGPUs).

// gpuSet is an instance's GPUs and who holds them.
type gpuSet struct {
	// ids are the registered GPUs, in gpuOrder.
	ids []string
	// used counts the tasks holding each GPU. More than one happens only when tasks
	// were bound by others with overlapping assignments; the GPU stays taken until
	// all of them let it go.
	used map[string]int
	// anonymous counts GPUs held by tasks whose assignment is not known (bound
	// without one, or whose revision could not be read): they are taken, but no
	// particular one.
	anonymous int
}

// gpuHold is what one task holds.
type gpuHold struct {
	ids       []string
	anonymous int
}

// gpuOrder sorts numeric IDs (the minor numbers of /dev/nvidiaN) as numbers and any
// others (UUIDs) by name, so that GPU 2 comes before GPU 10.
func gpuOrder(a, b string) int {
	return cmp.Or(cmp.Compare(len(a), len(b)), strings.Compare(a, b))
}

func (s *gpuSet) register(ids []string) {
	s.ids = slices.Clone(ids)
	slices.SortFunc(s.ids, gpuOrder)
	s.ids = slices.Compact(s.ids)
}

// free is how many registered GPUs no task holds.
func (s *gpuSet) free() int {
	n := 0
	for _, id := range s.ids {
		if s.used[id] == 0 {
			n++
		}
	}
	return n - s.anonymous
}

// pick returns the first n free GPUs (nil for n = 0). The caller checked free.
func (s *gpuSet) pick(n int) []string {
	if n <= 0 {
		return nil
	}
	out := make([]string, 0, n)
	for _, id := range s.ids {
		if len(out) == n {
			break
		}
		if s.used[id] == 0 {
			out = append(out, id)
		}
	}
	return out
}

func (s *gpuSet) hold(h gpuHold) {
	for _, id := range h.ids {
		if s.used == nil {
			s.used = map[string]int{}
		}
		s.used[id]++
	}
	s.anonymous += h.anonymous
}

func (s *gpuSet) release(h gpuHold) {
	for _, id := range h.ids {
		decrement(s.used, id)
	}
	s.anonymous -= h.anonymous
}

// assumedGPUs is what a task assumed from its Request holds: its recorded GPUs, and
// any it needs beyond them as anonymous ones.
func assumedGPUs(req *Request) gpuHold {
	ids := slices.Clone(req.AssignedGPUs)
	return gpuHold{ids: ids, anonymous: max(0, req.GPUs-len(ids))}
}
