package ecsapi

import (
	"k8s.io/apimachinery/pkg/util/validation"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/ecsapi/wire"
	"github.com/berthdev/berth/internal/ecsimport"
)

// ECS names (clusters, services, families) allow uppercase letters and underscores;
// Kubernetes names do not. A name that is already a Kubernetes name is used as it is;
// any other becomes ecsimport.KubeName of it (the rule `berth convert` uses) and the
// ECS name is kept in the ecs.berth.dev/ecs-name annotation, which the API answers
// with. Two ECS names that map to one Kubernetes name cannot both exist.

// kubeName maps an ECS name from member to the object name.
func kubeName(member, ecsName string) (string, error) {
	if ecsName == "" {
		return "", wire.InvalidParameter(member, "must not be empty")
	}
	if len(ecsName) > 255 {
		return "", wire.InvalidParameter(member, "must be at most 255 characters")
	}
	if len(validation.IsDNS1123Subdomain(ecsName)) == 0 && len(ecsName) <= 63 {
		return ecsName, nil
	}
	name := ecsimport.KubeName(ecsName, 63)
	if name == "" {
		return "", wire.InvalidParameter(member, "%q has no letters or digits to make a name of", ecsName)
	}
	return name, nil
}

// setECSName records ecsName on an object whose name differs from it.
func setECSName(annotations *map[string]string, objectName, ecsName string) {
	if objectName == ecsName {
		return
	}
	if *annotations == nil {
		*annotations = map[string]string{}
	}
	(*annotations)[ecsv1alpha1.AnnotationECSName] = ecsName
}

// ecsName is the name the API shows for an object.
func ecsName(annotations map[string]string, objectName string) string {
	if n := annotations[ecsv1alpha1.AnnotationECSName]; n != "" {
		return n
	}
	return objectName
}

// sameECSName reports whether an existing object was created for name (and not for
// another ECS name that maps to the same object name).
func sameECSName(annotations map[string]string, objectName, name string) bool {
	return name == ecsName(annotations, objectName)
}
