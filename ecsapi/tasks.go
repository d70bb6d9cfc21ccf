package ecsapi

func taskOps() map[string]handler { return map[string]handler{} }
