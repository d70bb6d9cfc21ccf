// Package deployment is the arithmetic of ECS rolling deployments, as pure functions:
// the bounds that minimumHealthyPercent and maximumPercent put on a service's tasks
// (rounded as ECS rounds them), the circuit breaker's threshold, and the plan of which
// tasks to start and stop next. The service controller feeds it the tasks it observes
// and carries out the plan; keeping the decisions here makes them testable table by
// table and fuzzable.
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
// MinHealthy healthy ones.
func Next(in Input) Plan {
	minHealthy := MinHealthy(in.Desired, in.MinimumHealthyPercent)
	maxTotal := MaxTotal(in.Desired, in.MaximumPercent)
	var plan Plan
	stopped := map[string]bool{}
	stop := func(t Task) {
		plan.Stop = append(plan.Stop, t.Name)
		stopped[t.Name] = true
	}

	// 1. Tasks that must go whatever the bounds: they serve no one.
	for _, t := range in.Tasks {
		if t.StopNow {
			stop(t)
		}
	}

	// 2. Scale-in: primaries beyond desired go, least useful first.
	var good []Task // primaries that count toward desired
	for _, t := range in.Tasks {
		if !stopped[t.Name] && t.Primary && !t.Replace {
			good = append(good, t)
		}
	}
	if excess := len(good) - int(in.Desired); excess > 0 {
		sort.SliceStable(good, func(i, j int) bool {
			if good[i].Health != good[j].Health {
				return good[i].Health < good[j].Health
			}
			return good[i].Age < good[j].Age // newest first
		})
		for _, t := range good[:excess] {
			stop(t)
		}
		good = good[excess:]
	}

	live, healthy := 0, 0
	for _, t := range in.Tasks {
		if !stopped[t.Name] {
			live++
			if t.Health == Healthy {
				healthy++
			}
		}
	}

	// 3. Launch primaries up to desired, within the maximum.
	if !in.Frozen {
		want := int(in.Desired) - len(good)
		room := int(maxTotal) - live
		if n := min(want, room); n > 0 {
			plan.Start = int32(n)
			live += n
		} else if want > 0 && in.Desired > 0 {
			plan.Blocked = "maximumPercent leaves no room to start tasks until old ones stop"
		}
	}

	// 4. Retire old and to-be-replaced tasks: those that are not healthy at once, the
	// healthy ones while the minimum stays met. Oldest first.
	var retire []Task
	for _, t := range in.Tasks {
		if !stopped[t.Name] && (!t.Primary || t.Replace) {
			retire = append(retire, t)
		}
	}
	sort.SliceStable(retire, func(i, j int) bool {
		if retire[i].Health != retire[j].Health {
			return retire[i].Health < retire[j].Health
		}
		return retire[i].Age > retire[j].Age
	})
	for _, t := range retire {
		if in.Frozen {
			break // a failed deployment keeps what still serves
		}
		if t.Health != Healthy {
			stop(t) // serves no one: it costs nothing to stop
			continue
		}
		if int32(healthy-1) < minHealthy {
			if plan.Start == 0 {
				plan.Blocked = "minimumHealthyPercent keeps old tasks until new ones are healthy"
			}
			break
		}
		stop(t)
		healthy--
	}
	if plan.Start > 0 || len(plan.Stop) > 0 {
		plan.Blocked = ""
	}
	return plan
}
