// Package taskstatus holds what every writer of a Task's runtime status (the agent and
// the hollow agent) shares: turning observed container states into the server-side
// apply form.
package taskstatus

import (
	ecsac "github.com/berthdev/berth/apis/applyconfiguration/apis/v1alpha1"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/conditions"
)

// Container is the apply configuration of one container's status: every field that is
// set, so a writer's apply always carries its whole part.
func Container(c *ecsv1alpha1.ContainerStatus) *ecsac.ContainerStatusApplyConfiguration {
	out := ecsac.ContainerStatus().WithName(c.Name)
	if c.RuntimeID != "" {
		out.WithRuntimeID(c.RuntimeID)
	}
	if c.ImageDigest != "" {
		out.WithImageDigest(c.ImageDigest)
	}
	if c.LastStatus != "" {
		out.WithLastStatus(c.LastStatus)
	}
	if c.HealthStatus != "" {
		out.WithHealthStatus(c.HealthStatus)
	}
	if c.ExitCode != nil {
		out.WithExitCode(*c.ExitCode)
	}
	if c.Reason != "" {
		out.WithReason(conditions.Truncate(c.Reason))
	}
	if c.RestartCount > 0 {
		out.WithRestartCount(c.RestartCount)
	}
	for _, b := range c.NetworkBindings {
		nb := ecsac.NetworkBinding().WithBindIP(b.BindIP).WithProtocol(b.Protocol)
		if b.ContainerPortRange != "" {
			// A containerPortRange's binding has ranges instead of single ports.
			nb.WithContainerPortRange(b.ContainerPortRange).WithHostPortRange(b.HostPortRange)
		} else {
			nb.WithContainerPort(b.ContainerPort).WithHostPort(b.HostPort)
		}
		out.WithNetworkBindings(nb)
	}
	for _, ni := range c.NetworkInterfaces {
		out.WithNetworkInterfaces(ecsac.NetworkInterface().WithPrivateIPv4Address(ni.PrivateIPv4Address))
	}
	if l := c.AWSLogs; l != nil {
		ac := ecsac.AWSLogStream()
		if l.Group != "" {
			ac.WithGroup(l.Group)
		}
		if l.Stream != "" {
			ac.WithStream(l.Stream)
		}
		if l.Region != "" {
			ac.WithRegion(l.Region)
		}
		out.WithAWSLogs(ac)
	}
	return out
}
