package placement

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func (b *instanceBuilder) gpus(ids ...string) *instanceBuilder {
	b.GPUs = append(b.GPUs, ids...)
	return b
}

func (b *requestBuilder) gpus(n int, assigned ...string) *requestBuilder {
	b.GPUs, b.AssignedGPUs = n, assigned
	return b
}

// gpuStep is one placement of a GPU case: place key (or forget it), then expect the
// instance and GPUs it got, or the reason it got none.
type gpuStep struct {
	place, forget string
	req           Request
	wantInstance  string
	wantGPUs      []string
	wantReasons   []ReasonCount
}

func TestPlaceGPUs(t *testing.T) {
	testCases := []struct {
		name      string
		instances []Instance
		assumed   []assumption
		steps     []gpuStep
	}{
		{
			name: "a task needing N GPUs lands only where N are free",
			instances: []Instance{
				makeInstance("a").obj(),
				makeInstance("b").gpus("0").obj(),
				makeInstance("c").gpus("0", "1").obj(),
			},
			steps: []gpuStep{
				{place: "two", req: makeRequest().gpus(2).obj(), wantInstance: "c", wantGPUs: []string{"0", "1"}},
				{place: "one", req: makeRequest().gpus(1).obj(), wantInstance: "b", wantGPUs: []string{"0"}},
				{place: "another", req: makeRequest().gpus(1).obj(), wantReasons: []ReasonCount{
					{Kind: ReasonInsufficientGPU, Reason: "fewer than 1 free GPUs", Count: 3}}},
				{place: "cpu only", req: makeRequest().obj(), wantInstance: "a"},
			},
		},
		{
			name:      "a forgotten task's GPUs go to the next",
			instances: []Instance{makeInstance("a").gpus("0", "1").obj()},
			steps: []gpuStep{
				{place: "t0", req: makeRequest().gpus(1).obj(), wantInstance: "a", wantGPUs: []string{"0"}},
				{place: "t1", req: makeRequest().gpus(1).obj(), wantInstance: "a", wantGPUs: []string{"1"}},
				{forget: "t0"},
				{place: "t2", req: makeRequest().gpus(1).obj(), wantInstance: "a", wantGPUs: []string{"0"}},
			},
		},
		{
			name:      "tasks bound with an assignment keep their GPUs; numeric IDs in numeric order",
			instances: []Instance{makeInstance("a").gpus("10", "2", "1", "0").obj()},
			assumed:   []assumption{{key: "bound", instance: "a", req: makeRequest().gpus(1, "1").obj()}},
			steps: []gpuStep{
				{place: "t0", req: makeRequest().gpus(2).obj(), wantInstance: "a", wantGPUs: []string{"0", "2"}},
				{place: "t1", req: makeRequest().gpus(2).obj(), wantReasons: []ReasonCount{
					{Kind: ReasonInsufficientGPU, Reason: "fewer than 2 free GPUs", Count: 1}}},
				{place: "t2", req: makeRequest().gpus(1).obj(), wantInstance: "a", wantGPUs: []string{"10"}},
			},
		},
		{
			name:      "a task bound without an assignment holds GPUs all the same",
			instances: []Instance{makeInstance("a").gpus("0", "1").obj()},
			assumed:   []assumption{{key: "started", instance: "a", req: makeRequest().gpus(1).obj()}},
			steps: []gpuStep{
				{place: "t0", req: makeRequest().gpus(2).obj(), wantReasons: []ReasonCount{
					{Kind: ReasonInsufficientGPU, Reason: "fewer than 2 free GPUs", Count: 1}}},
				{forget: "started"},
				{place: "t1", req: makeRequest().gpus(2).obj(), wantInstance: "a", wantGPUs: []string{"0", "1"}},
			},
		},
		{
			name:      "an instance that re-registers with fewer GPUs",
			instances: []Instance{makeInstance("a").gpus("0", "1").obj(), makeInstance("a").gpus("1").obj()},
			steps: []gpuStep{
				{place: "t0", req: makeRequest().gpus(1).obj(), wantInstance: "a", wantGPUs: []string{"1"}},
				{place: "t1", req: makeRequest().gpus(1).obj(), wantReasons: []ReasonCount{
					{Kind: ReasonInsufficientGPU, Reason: "fewer than 1 free GPUs", Count: 1}}},
			},
		},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEngine(tc.instances, tc.assumed)
			for i, step := range tc.steps {
				if step.forget != "" {
					e.Forget(step.forget)
					continue
				}
				step.req.Key = step.place
				got, err := e.Place(step.req)
				var ue *UnplaceableError
				switch {
				case step.wantReasons != nil:
					if !errors.As(err, &ue) {
						t.Fatalf("step %d: Place(%s) = %+v, %v; want unplaceable", i, step.place, got, err)
					}
					if diff := cmp.Diff(step.wantReasons, ue.Reasons); diff != "" {
						t.Errorf("step %d: reasons (-want +got):\n%s", i, diff)
					}
				case err != nil:
					t.Fatalf("step %d: Place(%s): %v", i, step.place, err)
				default:
					if got.Instance != step.wantInstance {
						t.Errorf("step %d: Place(%s) on %s, want %s", i, step.place, got.Instance, step.wantInstance)
					}
					if diff := cmp.Diff(step.wantGPUs, got.GPUs); diff != "" {
						t.Errorf("step %d: GPUs of %s (-want +got):\n%s", i, step.place, diff)
					}
				}
			}
		})
	}
}
