package ecsapi

func instanceOps() map[string]handler { return map[string]handler{} }
