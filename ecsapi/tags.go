package ecsapi

func tagOps() map[string]handler { return map[string]handler{} }
