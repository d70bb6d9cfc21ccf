package ecsimport

// The tables of ECS fields that do not map one to one. Every other key of the input
// must be a Berth field of the same name and shape, or it is refused as unknown.

// registrationOutput are the fields ECS adds when it registers a definition
// (describe-task-definition prints them). They describe ECS's copy, not the
// definition, so they are dropped, each with a note.
var registrationOutput = map[string]string{
	"taskDefinitionArn":    "ECS's identifier of its copy; the TaskDefinition's name and revision are Berth's",
	"revision":             "Berth numbers revisions itself, from 1",
	"status":               "set by the registry (ACTIVE/INACTIVE), not by the author",
	"requiresAttributes":   "ECS derives them from the definition; Berth derives placement from the fields themselves",
	"compatibilities":      "ECS derives them; requiresCompatibilities is kept",
	"registeredAt":         "set on registration",
	"registeredBy":         "set on registration",
	"deregisteredAt":       "set on deregistration",
	"deleteRequestedAt":    "set on deletion",
	"enableFaultInjection": "ECS's fault-injection endpoints do not exist here",
}

// Fields that can never work here: they need an AWS service or Windows. They are
// refused, naming the field and saying why, rather than accepted without effect: a
// task that counts on its EFS volume must not start without it.
var (
	neverTask = map[string]string{
		"proxyConfiguration":            "App Mesh proxy configuration needs AWS App Mesh",
		"inferenceAccelerators":         "Elastic Inference accelerators exist only on AWS",
		"trustedExecutionConfiguration": "trusted execution needs AWS's attested hardware",
	}
	neverContainer = map[string]string{
		"firelensConfiguration": "FireLens routes logs through an AWS-managed Fluent Bit sidecar; use logConfiguration (json-file or awslogs, kept on the instance)",
		"credentialSpecs":       "gMSA credential specs are for Windows containers and Active Directory",
	}
	neverVolume = map[string]string{
		"efsVolumeConfiguration":                  "Amazon EFS volumes need AWS; mount the file system on the instances and use host.sourcePath",
		"fsxWindowsFileServerVolumeConfiguration": "FSx for Windows File Server volumes are for Windows containers on AWS",
		"configuredAtLaunch":                      "EBS volumes attached at launch need AWS; use host.sourcePath or a task volume",
		"s3filesVolumeConfiguration":              "S3 Files volumes need AWS; mount the files on the instances and use host.sourcePath",
	}
)

// neverInferenceAccelerator refuses a container's resourceRequirements of type
// InferenceAccelerator, the container's side of inferenceAccelerators.
const neverInferenceAccelerator = "Elastic Inference accelerators exist only on AWS"

// notYet are ECS fields Berth does not implement yet. They are refused with this note
// so that the author knows it is a gap, not a mistake.
const notYet = "not supported by Berth yet"
