package manager

import (
	"context"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/testobj"
)

// TestCacheDropsManagedFields: the manager's cache holds tasks without their managed
// fields, and an update made from a cached task (as controllers make them) leaves
// the apiserver's managed fields in place.
func TestCacheDropsManagedFields(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	opts := CacheOptions()
	opts.Scheme = env.Scheme
	c, err := cache.New(env.Config, opts)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		if err := c.Start(ctx); err != nil {
			t.Errorf("cache: %v", err)
		}
	}()

	task := testobj.Task("default", "managed-fields", "web:1").Obj()
	if err := env.Client.Create(ctx, task); err != nil {
		t.Fatal(err)
	}
	// The package's other tests run a manager: leave it no task to act on.
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), task) })
	key := client.ObjectKeyFromObject(task)
	var cached ecsv1alpha1.Task
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := c.Get(ctx, key, &cached)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the task never reached the cache: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(cached.ManagedFields) != 0 {
		t.Errorf("cached task has %d managed fields entries, want none", len(cached.ManagedFields))
	}

	cached.Labels = map[string]string{"touched": "yes"}
	if err := env.Client.Update(ctx, &cached); err != nil {
		t.Fatal(err)
	}
	var live ecsv1alpha1.Task
	if err := env.Client.Get(ctx, key, &live); err != nil {
		t.Fatal(err)
	}
	if live.Labels["touched"] != "yes" {
		t.Fatalf("the update did not land: labels %v", live.Labels)
	}
	if len(live.ManagedFields) == 0 {
		t.Error("an update from the cached task cleared the apiserver's managed fields")
	}
}
