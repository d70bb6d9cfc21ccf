package ecsapi

func taskDefinitionOps() map[string]handler { return map[string]handler{} }
