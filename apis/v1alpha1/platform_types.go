package v1alpha1

// The ECS task-definition fields that describe where a definition was meant to run
// (launch types, platform, Fargate storage) and its tags. They exist so that a task
// definition written for ECS applies as it is; docs/taskdefinitions.md says which of
// them Berth acts on.

// Compatibility is an ECS launch type a task definition declares.
// +kubebuilder:validation:Enum=EC2;FARGATE;EXTERNAL;MANAGED_INSTANCES
// +kubebuilder:validation:MaxLength=17
type Compatibility string

const (
	CompatibilityEC2              Compatibility = "EC2"
	CompatibilityFargate          Compatibility = "FARGATE"
	CompatibilityExternal         Compatibility = "EXTERNAL"
	CompatibilityManagedInstances Compatibility = "MANAGED_INSTANCES"
)

// CPUArchitecture is ECS's name of a CPU architecture.
// +kubebuilder:validation:Enum=X86_64;ARM64
// +kubebuilder:validation:MaxLength=6
type CPUArchitecture string

const (
	CPUArchitectureX8664 CPUArchitecture = "X86_64"
	CPUArchitectureARM64 CPUArchitecture = "ARM64"
)

// OSFamily is ECS's name of an operating system family. Berth runs Linux containers
// only, so LINUX is the one value accepted; ECS's Windows families are refused with
// the list of supported values.
// +kubebuilder:validation:Enum=LINUX
// +kubebuilder:validation:MaxLength=5
type OSFamily string

const OSFamilyLinux OSFamily = "LINUX"

// RuntimePlatform is the operating system and CPU architecture a task needs.
type RuntimePlatform struct {
	// cpuArchitecture is X86_64 or ARM64; unset runs on any architecture.
	// +optional
	CpuArchitecture CPUArchitecture `json:"cpuArchitecture,omitempty"`

	// operatingSystemFamily is LINUX.
	// +optional
	OperatingSystemFamily OSFamily `json:"operatingSystemFamily,omitempty"`
}

// EphemeralStorage is Fargate's task storage size.
type EphemeralStorage struct {
	// sizeInGiB is 21-200, as in ECS.
	// +required
	// +kubebuilder:validation:Minimum=21
	// +kubebuilder:validation:Maximum=200
	SizeInGiB int32 `json:"sizeInGiB"`
}

// Tag is an ECS tag: a key and an optional value.
type Tag struct {
	// key of the tag, 1-128 characters.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	Key string `json:"key"`

	// value of the tag, at most 256 characters.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Value string `json:"value,omitempty"`
}
