package agent

import (
	"testing"
	"time"
)

func TestUtilizationIntervalFlag(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    time.Duration
		wantErr string
	}{
		{name: "default", want: time.Minute},
		{name: "set", args: []string{"--utilization-interval", "30s"}, want: 30 * time.Second},
		{name: "the shortest", args: []string{"--utilization-interval", "1s"}, want: time.Second},
		{name: "too short", args: []string{"--utilization-interval", "500ms"}, wantErr: "--utilization-interval must be at least 1s"},
		{name: "zero", args: []string{"--utilization-interval", "0"}, wantErr: "--utilization-interval must be at least 1s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, ok := parseOptions(t, tc.args, tc.wantErr)
			if ok && o.UtilizationInterval != tc.want {
				t.Errorf("UtilizationInterval = %s, want %s", o.UtilizationInterval, tc.want)
			}
		})
	}
}
