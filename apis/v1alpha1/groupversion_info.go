// Package v1alpha1 contains the Berth API: Amazon ECS's resource model (Cluster,
// ContainerInstance, TaskDefinition, Service and Task) as Kubernetes custom resources.
//
// Field names follow the ECS JSON API (camelCase) so an ECS task definition converts to
// a Berth manifest almost line by line. Where Kubernetes has a convention (conditions,
// the scale subresource, owner references, Events) Berth uses it instead.
//
// The package imports only the standard library and apimachinery so that any client,
// including ones that do not use controller-runtime, can depend on it cheaply.
//
// +kubebuilder:object:generate=true
// +kubebuilder:ac:generate=true
// +kubebuilder:ac:output:package="../applyconfiguration"
// +groupName=ecs.berth.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupName is the API group of every Berth kind.
const GroupName = "ecs.berth.dev"

var (
	// GroupVersion is the group and version of every Berth kind.
	GroupVersion = schema.GroupVersion{Group: GroupName, Version: "v1alpha1"}

	// SchemeGroupVersion is GroupVersion under the name generated clients expect.
	SchemeGroupVersion = GroupVersion

	// SchemeBuilder registers the Berth kinds with a runtime.Scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the Berth kinds to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&Cluster{}, &ClusterList{},
		&ContainerInstance{}, &ContainerInstanceList{},
		&TaskDefinition{}, &TaskDefinitionList{},
		&Service{}, &ServiceList{},
		&Task{}, &TaskList{},
	)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
