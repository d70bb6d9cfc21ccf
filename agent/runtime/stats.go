package runtime

import "time"

// ContainerStats is the resource usage of a container's process tree, from its
// cgroup (v1 or v2).
type ContainerStats struct {
	// CPU is the CPU time used by the container's processes since it started.
	CPU time.Duration
	// MemoryUsageBytes is the container's working set: memory usage less inactive
	// file pages, which the kernel reclaims before it OOM-kills (what `docker stats`
	// and the kubelet report).
	MemoryUsageBytes uint64
	// MemoryLimitBytes is the cgroup's hard memory limit; 0 when unlimited.
	MemoryLimitBytes uint64
	// Time is when the runtime read the numbers.
	Time time.Time
}

// ImageInfo describes an image of the runtime's namespace.
type ImageInfo struct {
	// Ref is the image's name, normalized (docker.io/library/nginx:latest): the value
	// ContainerInfo.Image has for containers made from it.
	Ref string
	// Digest is the digest of the manifest (or index) the name points to.
	Digest string
	// PulledAt is when the agent last pulled the image from its registry; zero for an
	// image the agent did not pull (imported by an operator, for example).
	PulledAt time.Time
	// LastUsed is when this runtime last handed the image out from Pull (a pull or a
	// cached copy), zero if it has not since it started.
	LastUsed time.Time
}
