package ecsapi

// testARNs are the ARNs of the unit tests: a region and account other than the
// flags' defaults.
var testARNs = ARNs{Region: "eu-west-3", Account: "123456789012"}
