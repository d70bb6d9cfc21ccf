package scheduler

import (
	"time"
)

// Retries of tasks that wait for placement. They are event-driven first: an instance
// that joins or changes, a bound task that stops or goes away, a TaskDefinition or a
// Cluster policy that changes, each wakes the waiting tasks of its cluster or family.
// A wake-up is never dropped (internal/wakeup). And in case
// no event comes, for whatever the events do not cover, a task that still waits is
// retried on a clock too, from unplacedRetryBase doubling to unplacedRetryMax.

const (
	unplacedRetryBase = 30 * time.Second
	unplacedRetryMax  = 5 * time.Minute
)

// retryDelay is how long a task that waited attempts times already waits before its
// next clock-driven retry.
func retryDelay(attempts int, base, limit time.Duration) time.Duration {
	if attempts > 20 { // far past any limit; keeps the shift from overflowing
		return limit
	}
	return min(base<<attempts, limit)
}
