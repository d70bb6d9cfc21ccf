package agent

import (
	"flag"
	"strings"
	"testing"
	"time"
)

func TestHousekeepingFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    HousekeepingOptions
		wantErr string
	}{
		{name: "defaults", want: HousekeepingOptions{HTTPBindAddress: "127.0.0.1:51678", StreamingAddress: "127.0.0.1:51680",
			TaskCleanupWait: 3 * time.Hour, ImageCleanupAge: time.Hour, CleanupInterval: time.Minute}},
		{
			name: "set",
			args: []string{"--http-bind-address", "0", "--task-cleanup-wait", "10m", "--image-cleanup-age", "0", "--cleanup-interval", "5s",
				"--streaming-address", "0.0.0.0:51680", "--streaming-advertise-address", "node-1.example"},
			want: HousekeepingOptions{HTTPBindAddress: "0", StreamingAddress: "0.0.0.0:51680", StreamingAdvertiseAddress: "node-1.example",
				TaskCleanupWait: 10 * time.Minute, CleanupInterval: 5 * time.Second},
		},
		{
			name: "streaming disabled",
			args: []string{"--streaming-address", ""},
			want: HousekeepingOptions{HTTPBindAddress: "127.0.0.1:51678", TaskCleanupWait: 3 * time.Hour, ImageCleanupAge: time.Hour, CleanupInterval: time.Minute},
		},
		{name: "bad address", args: []string{"--http-bind-address", "51678"}, wantErr: "--http-bind-address must be host:port or 0"},
		{name: "bad streaming address", args: []string{"--streaming-address", "51680"}, wantErr: "--streaming-address must be host:port or empty"},
		{name: "negative wait", args: []string{"--task-cleanup-wait", "-1s"}, wantErr: "--task-cleanup-wait must not be negative"},
		{name: "negative age", args: []string{"--image-cleanup-age", "-1s"}, wantErr: "--image-cleanup-age must not be negative"},
		{name: "zero interval", args: []string{"--cleanup-interval", "0s"}, wantErr: "--cleanup-interval must be positive"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, ok := parseOptions(t, tc.args, tc.wantErr)
			if !ok {
				return
			}
			if o.HousekeepingOptions != tc.want {
				t.Errorf("options %+v, want %+v", o.HousekeepingOptions, tc.want)
			}
		})
	}
}

// parseOptions parses an agent's flags (named "node") and validates them. With
// wantErr, it checks Validate's error and returns false.
func parseOptions(t *testing.T, args []string, wantErr string) (*Options, bool) {
	t.Helper()
	o := DefaultOptions()
	o.Name = "node"
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	o.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	err := o.Validate()
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("Validate: %v, want %q", err, wantErr)
		}
		return nil, false
	}
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}
	return &o, true
}
