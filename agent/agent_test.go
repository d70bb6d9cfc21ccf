package agent

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// TestSyncRetriesAreCapped: a task whose sync keeps failing is retried at most
// syncRetryMax apart, however long the failure lasted (an apiserver outage).
func TestSyncRetriesAreCapped(t *testing.T) {
	rl := syncRateLimiter()
	key := types.NamespacedName{Namespace: "ns", Name: "task"}
	var last time.Duration
	for i := 0; i < 30; i++ {
		last = rl.When(key)
	}
	if last != syncRetryMax {
		t.Errorf("backoff after 30 failures = %s, want %s", last, syncRetryMax)
	}
	rl.Forget(key)
	if first := rl.When(key); first > time.Second {
		t.Errorf("backoff after Forget = %s, want a fresh start", first)
	}
}
