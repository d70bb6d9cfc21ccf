package ecsapi

func serviceOps() map[string]handler { return map[string]handler{} }
