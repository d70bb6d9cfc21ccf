package hollow

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestConfigValidation(t *testing.T) {
	valid := Config{Cluster: "bench", Instances: 3}
	tests := []struct {
		name       string
		edit       func(*Config)
		wantOption string
	}{
		{"defaults", func(*Config) {}, ""},
		{"everything set", func(c *Config) {
			c.NamePrefix, c.CPU, c.Memory, c.GPUs = "node", 2048, 4096, 8
			c.Zones = []string{"eu-1a", "eu-1b"}
			c.Attributes = map[string]string{"stack": "prod", "ecs.instance-type": "m5.large"}
			c.RunningDelay, c.LeaseInterval, c.StatusInterval, c.UtilizationInterval = time.Second, 5*time.Second, 2*time.Second, time.Second
			c.FailImages, c.UnhealthyImages = []string{"crash"}, []string{"sick"}
		}, ""},
		{"no cluster", func(c *Config) { c.Cluster = "" }, "Cluster"},
		{"bad cluster", func(c *Config) { c.Cluster = "Prod_1" }, "Cluster"},
		{"no instances", func(c *Config) { c.Instances = 0 }, "Instances"},
		{"bad prefix", func(c *Config) { c.NamePrefix = "Hollow" }, "NamePrefix"},
		{"prefix too long", func(c *Config) { c.NamePrefix = strings.Repeat("a", 250) }, "NamePrefix"},
		{"negative cpu", func(c *Config) { c.CPU = -1 }, "CPU"},
		{"negative memory", func(c *Config) { c.Memory = -1 }, "Memory"},
		{"negative gpus", func(c *Config) { c.GPUs = -1 }, "GPUs"},
		{"too many gpus", func(c *Config) { c.GPUs = 65 }, "GPUs"},
		{"empty zone", func(c *Config) { c.Zones = []string{"a", ""} }, "Zones"},
		{"bad zone", func(c *Config) { c.Zones = []string{"a,b"} }, "Zones"},
		{"zone attribute", func(c *Config) { c.Attributes = map[string]string{AttributeZone: "x"} }, "Attributes"},
		{"bad attribute name", func(c *Config) { c.Attributes = map[string]string{"-x": "1"} }, "Attributes"},
		{"bad attribute value", func(c *Config) { c.Attributes = map[string]string{"x": "a=b"} }, "Attributes"},
		{"negative running delay", func(c *Config) { c.RunningDelay = -time.Second }, "RunningDelay"},
		{"lease interval beyond duration", func(c *Config) { c.LeaseInterval = time.Minute }, "LeaseInterval"},
		{"negative status interval", func(c *Config) { c.StatusInterval = -time.Second }, "StatusInterval"},
		{"utilization interval under a second", func(c *Config) { c.UtilizationInterval = 500 * time.Millisecond }, "UtilizationInterval"},
		{"empty fail image", func(c *Config) { c.FailImages = []string{""} }, "FailImages"},
		{"empty unhealthy image", func(c *Config) { c.UnhealthyImages = []string{""} }, "UnhealthyImages"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := valid
			tc.edit(&cfg)
			err := cfg.Validate()
			var ce *ConfigError
			switch {
			case tc.wantOption == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tc.wantOption == "":
			case !errors.As(err, &ce):
				t.Fatalf("Validate() = %v, want a *ConfigError for %s", err, tc.wantOption)
			case ce.Option != tc.wantOption || !strings.HasPrefix(err.Error(), tc.wantOption+" "):
				t.Fatalf("Validate() = %q (option %s), want option %s named", err, ce.Option, tc.wantOption)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	got := Config{Cluster: "c", Instances: 1}.withDefaults()
	want := Config{
		Cluster: "c", Instances: 1, NamePrefix: "hollow", CPU: 4096, Memory: 8192,
		Zones: []string{"zone-a"}, Attributes: map[string]string{},
		RunningDelay: 100 * time.Millisecond, LeaseInterval: 10 * time.Second, StatusInterval: 90 * time.Second,
		UtilizationInterval: time.Minute,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	if name := instanceName(got.NamePrefix, 7); name != "hollow-0007" {
		t.Errorf("instance 7 is %q, want hollow-0007", name)
	}
}

// TestReportWorkers: the simulated instances write their reports with as many
// workers as that many machines would have, up to the cap.
func TestReportWorkers(t *testing.T) {
	for _, tc := range []struct{ instances, want int }{
		{1, 4}, {3, 12}, {16, 64}, {17, 64}, {1000, 64},
	} {
		if got := reportWorkers(tc.instances); got != tc.want {
			t.Errorf("reportWorkers(%d) = %d, want %d", tc.instances, got, tc.want)
		}
	}
}
