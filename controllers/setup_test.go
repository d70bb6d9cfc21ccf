package controllers

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestOptionsWithDefaults(t *testing.T) {
	cases := []struct {
		name string
		in   Options
		want Options
	}{
		{name: "zero values take the defaults", in: Options{},
			want: Options{SchedulerWorkers: DefaultSchedulerWorkers, ServiceWorkers: DefaultServiceWorkers,
				AutoScalingStaleAfter: 3 * time.Minute, AutoScalingInterval: time.Minute}},
		{name: "set values stay", in: Options{SchedulerWorkers: 4, ServiceWorkers: 2, AutoScalingStaleAfter: 5 * time.Second, AutoScalingInterval: time.Second},
			want: Options{SchedulerWorkers: 4, ServiceWorkers: 2, AutoScalingStaleAfter: 5 * time.Second, AutoScalingInterval: time.Second}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, tc.in.withDefaults()); diff != "" {
				t.Errorf("withDefaults (-want +got):\n%s", diff)
			}
		})
	}
}
