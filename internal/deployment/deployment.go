// Package deployment is the arithmetic of ECS rolling deployments, as pure functions:
// the bounds that minimumHealthyPercent and maximumPercent put on a service's tasks
// (rounded as ECS rounds them), the circuit breaker's threshold, the plan of which
// tasks to start and stop next, and which stopped tasks stay visible (History). The
// service controller feeds it the tasks it observes and carries out the plan; keeping
// the decisions here makes them testable table by table and fuzzable.
package deployment

import "sort"

// MinHealthy is the number of healthy tasks a deployment must keep:
// desired x minimumHealthyPercent / 100, rounded up (ECS rounds the minimum up).
func MinHealthy(desired, minimumHealthyPercent int32) int32 {
	if desired <= 0 || minimumHealthyPercent <= 0 {
		return 0
	}
	return int32((int64(desired)*int64(minimumHealthyPercent) + 99) / 100)
}

// MaxTotal is the number of RUNNING or PENDING tasks a deployment may have:
// desired x maximumPercent / 100, rounded down (ECS rounds the maximum down).
func MaxTotal(desired, maximumPercent int32) int32 {
	if desired <= 0 || maximumPercent <= 0 {
		return 0
	}
	return int32(int64(desired) * int64(maximumPercent) / 100)
}

// CircuitBreakerThreshold is how many failed tasks fail a deployment:
// max(3, min(200, ceil(desired / 2))), as in ECS.
func CircuitBreakerThreshold(desired int32) int32 {
	half := (int64(desired) + 1) / 2
	if half > 200 {
		half = 200
	}
	if half < 3 {
		half = 3
	}
	return int32(half)
}

// Health is what a live task contributes to a deployment.
type Health int

const (
	// Pending tasks are placed or starting: not yet RUNNING.
	Pending Health = iota
	// Unhealthy tasks are RUNNING but not (yet) healthy.
	Unhealthy
	// Healthy tasks are RUNNING and, when they have health checks, HEALTHY.
	Healthy
)

// Task is a live (not stopped, not asked to stop) task of the service.
type Task struct {
	// Name identifies the task in the plan.
	Name string
	// Primary is true for tasks of the PRIMARY (newest) deployment.
	Primary bool
	// Replace marks a primary task that must move anyway, for example off a
	// DRAINING instance: it is replaced within the deployment's bounds.
	Replace bool
	// StopNow marks a task to stop regardless of bounds: unhealthy past its grace
	// period, pending on a DRAINING instance, or unreachable past the grace period.
	StopNow bool
	Health  Health
	// Age orders tasks of equal health when some must be stopped: higher Age stops
	// first among old tasks, lower (newer) first among excess primaries.
	Age int64
}

// Input is one service's situation.
type Input struct {
	Desired               int32
	MinimumHealthyPercent int32
	MaximumPercent        int32
	// Frozen stops launching (a FAILED deployment without rollback) while keeping
	// what runs.
	Frozen bool
	Tasks  []Task
}

// Plan is what to do next.
type Plan struct {
	// Start is how many primary tasks to launch.
	Start int32
	// Stop names the tasks to stop, in order.
	Stop []string
	// Blocked explains why the deployment cannot progress, when it cannot.
	Blocked string
}

// Next computes the next step of a deployment. It never plans a state with more than
// MaxTotal live tasks (unless already there) or, by stopping healthy tasks, fewer than
// MinHealthy healthy ones. The steps run in order, each on what the previous left.
func Next(in Input) Plan {
	p := &planner{in: in, stopped: map[string]bool{},
		minHealthy: MinHealthy(in.Desired, in.MinimumHealthyPercent), maxTotal: MaxTotal(in.Desired, in.MaximumPercent)}
	p.stopNow()
	good := p.scaleIn()
	p.launch(good)
	p.retire()
	if p.plan.Start > 0 || len(p.plan.Stop) > 0 {
		p.plan.Blocked = ""
	}
	return p.plan
}

type planner struct {
	in                   Input
	minHealthy, maxTotal int32
	plan                 Plan
	stopped              map[string]bool
}

func (p *planner) stop(t Task) {
	p.plan.Stop = append(p.plan.Stop, t.Name)
	p.stopped[t.Name] = true
}

// remaining are the tasks not stopped yet that match keep.
func (p *planner) remaining(keep func(Task) bool) []Task {
	var out []Task
	for _, t := range p.in.Tasks {
		if !p.stopped[t.Name] && keep(t) {
			out = append(out, t)
		}
	}
	return out
}

// stopNow stops the tasks that must go whatever the bounds: they serve no one.
func (p *planner) stopNow() {
	for _, t := range p.in.Tasks {
		if t.StopNow {
			p.stop(t)
		}
	}
}

// scaleIn stops primaries beyond desired, least useful first (pending, unhealthy,
// then the newest), and returns the primaries that count toward desired.
func (p *planner) scaleIn() []Task {
	good := p.remaining(func(t Task) bool { return t.Primary && !t.Replace })
	excess := len(good) - int(p.in.Desired)
	if excess <= 0 {
		return good
	}
	sort.SliceStable(good, func(i, j int) bool {
		if good[i].Health != good[j].Health {
			return good[i].Health < good[j].Health
		}
		return good[i].Age < good[j].Age // newest first
	})
	for _, t := range good[:excess] {
		p.stop(t)
	}
	return good[excess:]
}

// launch starts primaries up to desired, within the maximum.
func (p *planner) launch(good []Task) {
	if p.in.Frozen {
		return
	}
	live := len(p.remaining(func(Task) bool { return true }))
	want := int(p.in.Desired) - len(good)
	if n := min(want, int(p.maxTotal)-live); n > 0 {
		p.plan.Start = int32(n)
	} else if want > 0 && p.in.Desired > 0 {
		p.plan.Blocked = "maximumPercent leaves no room to start tasks until old ones stop"
	}
}

// retire stops old and to-be-replaced tasks, oldest first: those that are not healthy
// at once, the healthy ones while the minimum stays met. A failed (frozen) deployment
// keeps what still serves.
func (p *planner) retire() {
	if p.in.Frozen {
		return
	}
	healthy := len(p.remaining(func(t Task) bool { return t.Health == Healthy }))
	retire := p.remaining(func(t Task) bool { return !t.Primary || t.Replace })
	sort.SliceStable(retire, func(i, j int) bool {
		if retire[i].Health != retire[j].Health {
			return retire[i].Health < retire[j].Health
		}
		return retire[i].Age > retire[j].Age
	})
	for _, t := range retire {
		if t.Health != Healthy {
			p.stop(t) // serves no one: it costs nothing to stop
			continue
		}
		if int32(healthy-1) < p.minHealthy {
			if p.plan.Start == 0 {
				p.plan.Blocked = "minimumHealthyPercent keeps old tasks until new ones are healthy"
			}
			return
		}
		p.stop(t)
		healthy--
	}
}
