package hollow

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/berthdev/berth/agent"
	"github.com/berthdev/berth/agent/metrics"
	"github.com/berthdev/berth/agent/registration"
	"github.com/berthdev/berth/agent/runtime/fake"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// Defaults of Config's zero values.
const (
	DefaultNamePrefix    = "hollow"
	DefaultCPU           = 4096
	DefaultMemory        = 8192
	DefaultZone          = "zone-a"
	DefaultRunningDelay  = 100 * time.Millisecond
	DefaultLeaseInterval = 10 * time.Second
	// DefaultStatusInterval is the agent's --status-interval.
	DefaultStatusInterval = agent.DefaultStatusInterval
	// DefaultUtilizationInterval is the agent's --utilization-interval.
	DefaultUtilizationInterval = metrics.DefaultInterval

	// LeaseDurationSeconds is the leaseDurationSeconds of every instance Lease, as a
	// real agent's.
	LeaseDurationSeconds = registration.LeaseDurationSeconds

	// maxAttributes is the API's bound on status.attributes.
	maxAttributes = 64
)

// AttributeZone is the attribute the zones are reported as; Attributes may not set
// it.
const AttributeZone = ecsv1alpha1.AttributeAvailabilityZone

// Config describes the simulated instances of one hollow process. Zero values take
// the defaults documented on each field.
type Config struct {
	// Cluster the instances register in (required).
	Cluster string
	// Instances is how many instances to simulate (at least 1).
	Instances int
	// NamePrefix of the instances, named <prefix>-0000, <prefix>-0001, ... (default
	// "hollow").
	NamePrefix string
	// CPU units every instance registers (default 4096: four cores).
	CPU int64
	// Memory in MiB every instance registers (default 8192).
	Memory int64
	// GPUs every instance registers (default none), with IDs "0", "1", ... as a
	// machine's /dev/nvidia0, /dev/nvidia1, ... give them. The containers they are
	// assigned to see them in NVIDIA_VISIBLE_DEVICES; there are no device nodes.
	GPUs int
	// Zones are spread round-robin over the instances as the attribute
	// ecs.availability-zone (default one zone, "zone-a").
	Zones []string
	// Attributes are extra attributes on every instance. They may override the
	// built-in ecs.os-type, ecs.cpu-architecture and ecs.instance-type, but not
	// ecs.availability-zone (use Zones).
	Attributes map[string]string
	// RunningDelay is how long each image pull takes (default 100ms), so roughly the
	// time from seeing a bound task to its containers running.
	RunningDelay time.Duration
	// LeaseInterval is how often each instance renews its Lease (default 10s); it
	// must be shorter than the Lease's 40 s duration.
	LeaseInterval time.Duration
	// StatusInterval bounds how often each instance writes its usage when no
	// utilization window carries it (default 90s, as the agent's).
	StatusInterval time.Duration
	// UtilizationInterval is the window each instance measures its tasks' use over
	// for status.utilization (default a minute, as the agent's; at least 1s).
	UtilizationInterval time.Duration
	// FailImages: containers whose image contains one of these substrings exit with
	// code 1 right after they start; the engine then stops a task whose essential
	// container that is with EssentialContainerExited, as on a machine.
	FailImages []string
	// UnhealthyImages: health checks in containers whose image contains one of these
	// substrings fail; the engine marks such a container UNHEALTHY after its check's
	// retries, and its task too when the container is essential.
	UnhealthyImages []string
}

// ConfigError is an invalid Config option. Option is the Config field's name, so a
// command line can translate it to its flag.
type ConfigError struct {
	Option  string
	Message string
}

func (e *ConfigError) Error() string { return e.Option + " " + e.Message }

var (
	attributeNamePattern  = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_./-]*$`)
	attributeValuePattern = regexp.MustCompile(`^[a-zA-Z0-9_./:@ -]*$`)
)

// withDefaults returns a copy of c with defaults for its zero values.
func (c Config) withDefaults() Config {
	if c.NamePrefix == "" {
		c.NamePrefix = DefaultNamePrefix
	}
	if c.CPU == 0 {
		c.CPU = DefaultCPU
	}
	if c.Memory == 0 {
		c.Memory = DefaultMemory
	}
	if len(c.Zones) == 0 {
		c.Zones = []string{DefaultZone}
	} else {
		c.Zones = slices.Clone(c.Zones)
	}
	if c.RunningDelay == 0 {
		c.RunningDelay = DefaultRunningDelay
	}
	if c.LeaseInterval == 0 {
		c.LeaseInterval = DefaultLeaseInterval
	}
	if c.StatusInterval == 0 {
		c.StatusInterval = DefaultStatusInterval
	}
	if c.UtilizationInterval == 0 {
		c.UtilizationInterval = DefaultUtilizationInterval
	}
	attrs := make(map[string]string, len(c.Attributes))
	for k, v := range c.Attributes {
		attrs[k] = v
	}
	c.Attributes = attrs
	c.FailImages = slices.Clone(c.FailImages)
	c.UnhealthyImages = slices.Clone(c.UnhealthyImages)
	return c
}

// Validate reports the first invalid option of c (after defaults), as a
// *ConfigError naming the option.
func (c Config) Validate() error {
	d := c.withDefaults()
	return d.validate()
}

// validate reports the first invalid option of a defaulted Config.
//
//nolint:gocyclo // one independent check per option, read top to bottom
func (c *Config) validate() error {
	bad := func(option, format string, args ...any) error {
		return &ConfigError{Option: option, Message: fmt.Sprintf(format, args...)}
	}
	if c.Cluster == "" {
		return bad("Cluster", "must be set")
	}
	if errs := validation.IsDNS1123Subdomain(c.Cluster); len(errs) > 0 {
		return bad("Cluster", "%q is not a valid cluster name: %s", c.Cluster, errs[0])
	}
	if c.Instances < 1 {
		return bad("Instances", "must be at least 1, got %d", c.Instances)
	}
	last := instanceName(c.NamePrefix, c.Instances-1)
	if errs := validation.IsDNS1123Subdomain(last); len(errs) > 0 {
		return bad("NamePrefix", "%q gives instance names such as %q that are not valid: %s", c.NamePrefix, last, errs[0])
	}
	if c.CPU < 0 {
		return bad("CPU", "must be positive, got %d", c.CPU)
	}
	if c.Memory < 0 {
		return bad("Memory", "must be positive, got %d", c.Memory)
	}
	if c.GPUs < 0 || c.GPUs > ecsv1alpha1.MaxGPUsPerContainer {
		return bad("GPUs", "must be from 0 to %d, got %d", ecsv1alpha1.MaxGPUsPerContainer, c.GPUs)
	}
	for _, z := range c.Zones {
		if z == "" || len(z) > 128 || !attributeValuePattern.MatchString(z) {
			return bad("Zones", "zone %q is not a valid attribute value (up to 128 of a-z A-Z 0-9 _ . / : @ - and space, not empty)", z)
		}
	}
	if len(c.Attributes)+4 > maxAttributes {
		return bad("Attributes", "has %d entries; an instance reports at most %d attributes including the 4 built-in ones", len(c.Attributes), maxAttributes)
	}
	for _, k := range slices.Sorted(maps.Keys(c.Attributes)) {
		v := c.Attributes[k]
		switch {
		case k == AttributeZone:
			return bad("Attributes", "cannot set %s: it comes from the zones", AttributeZone)
		case len(k) > 128 || !attributeNamePattern.MatchString(k):
			return bad("Attributes", "name %q is not a valid attribute name (up to 128 of a-z A-Z 0-9 _ . / -, starting with a letter or digit)", k)
		case len(v) > 128 || !attributeValuePattern.MatchString(v):
			return bad("Attributes", "value %q of %q is not a valid attribute value (up to 128 of a-z A-Z 0-9 _ . / : @ - and space)", v, k)
		}
	}
	if c.RunningDelay < 0 {
		return bad("RunningDelay", "must not be negative, got %v", c.RunningDelay)
	}
	if c.LeaseInterval < 0 || c.LeaseInterval >= LeaseDurationSeconds*time.Second {
		return bad("LeaseInterval", "must be positive and shorter than the Lease duration (%ds), got %v", LeaseDurationSeconds, c.LeaseInterval)
	}
	if c.StatusInterval < 0 {
		return bad("StatusInterval", "must not be negative, got %v", c.StatusInterval)
	}
	if c.UtilizationInterval < metrics.MinInterval {
		return bad("UtilizationInterval", "must be at least %v, got %v", metrics.MinInterval, c.UtilizationInterval)
	}
	for _, s := range c.FailImages {
		if s == "" {
			return bad("FailImages", "has an empty entry, which would match every image")
		}
	}
	for _, s := range c.UnhealthyImages {
		if s == "" {
			return bad("UnhealthyImages", "has an empty entry, which would match every image")
		}
	}
	return nil
}

// instanceName is the name of instance i: <prefix>-0042.
func instanceName(prefix string, i int) string {
	return fmt.Sprintf("%s-%04d", prefix, i)
}

// behaviors are the simulated images' behaviours by image substring; a substring in
// both FailImages and UnhealthyImages gets both.
func (c *Config) behaviors() map[string]fake.Behavior {
	out := map[string]fake.Behavior{}
	for _, s := range c.FailImages {
		b := out[s]
		b.ExitAfter, b.ExitCode = failAfter, 1
		out[s] = b
	}
	for _, s := range c.UnhealthyImages {
		b := out[s]
		b.Exec = &fake.ExecResult{Code: 1, Output: "hollow: simulated failing health check"}
		out[s] = b
	}
	return out
}
