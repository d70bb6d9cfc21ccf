package taskrules

import (
	"strings"

	"k8s.io/apimachinery/pkg/types"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// TaskID is a task's ID as ECS forms it (32 hexadecimal digits): the task's UID
// without its dashes. ECS names log streams and task ARNs with it.
func TaskID(uid types.UID) string {
	return strings.ReplaceAll(string(uid), "-", "")
}

// AWSLogs is the log group and stream ECS would write an awslogs container's output
// to: awslogs-stream-prefix/container-name/task-id with a prefix, else the
// container's runtime ID (ECS on EC2 leaves the stream to Docker, which names it
// after the container). Nil unless lc's driver is awslogs.
func AWSLogs(lc *ecsv1alpha1.LogConfiguration, container, runtimeID string, task types.UID) *ecsv1alpha1.AWSLogStream {
	if lc == nil || lc.LogDriver != ecsv1alpha1.LogDriverAWSLogs {
		return nil
	}
	s := &ecsv1alpha1.AWSLogStream{Group: lc.Options["awslogs-group"], Region: lc.Options["awslogs-region"], Stream: runtimeID}
	if prefix := lc.Options["awslogs-stream-prefix"]; prefix != "" {
		s.Stream = prefix + "/" + container + "/" + TaskID(task)
	}
	return s
}
