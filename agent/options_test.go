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

func TestGatewayFlags(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "none: direct reads"},
		{name: "both", args: []string{"--gateway-url", "https://berth-gateway.berth-system.svc:9444", "--gateway-ca-file", "/etc/berth/gateway/ca.crt"}},
		{name: "plain HTTP", args: []string{"--gateway-url", "http://gw:9444", "--gateway-ca-file", "/ca.crt"},
			wantErr: `--gateway-url must be an https:// URL, got "http://gw:9444"`},
		{name: "no CA", args: []string{"--gateway-url", "https://gw:9444"}, wantErr: "--gateway-ca-file must be set with --gateway-url"},
		{name: "a CA for no gateway", args: []string{"--gateway-ca-file", "/ca.crt"}, wantErr: "--gateway-ca-file needs --gateway-url"},
	} {
		t.Run(tc.name, func(t *testing.T) { parseOptions(t, tc.args, tc.wantErr) })
	}
}
