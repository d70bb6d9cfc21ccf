package agent

import (
	"testing"

	"k8s.io/apimachinery/pkg/types"
)

// TestReportRetryBounded: a status write that keeps failing (the apiserver away) is
// retried at most reportRetryMax apart, so that reports go out soon after it returns.
func TestReportRetryBounded(t *testing.T) {
	l := newReportLimiter()
	key := types.NamespacedName{Namespace: "ns", Name: "task"}
	if d := l.When(key); d != reportRetryMin {
		t.Fatalf("first retry after %s, want %s", d, reportRetryMin)
	}
	// A minute of refused connections is a dozen fast failures; an hour, a few
	// hundred more.
	for i := 0; i < 500; i++ {
		if d := l.When(key); d > reportRetryMax {
			t.Fatalf("retry %d after %s, more than %s", i+2, d, reportRetryMax)
		}
	}
	if d := l.When(key); d != reportRetryMax {
		t.Errorf("retries settle at %s, want %s", d, reportRetryMax)
	}
	l.Forget(key)
	if d := l.When(key); d != reportRetryMin {
		t.Errorf("after a success the first retry waits %s, want %s", d, reportRetryMin)
	}
}
