// Package ecsimport turns Amazon ECS task-definition JSON (the input of
// register-task-definition, or the output of describe-task-definition) into a Berth
// TaskDefinition. `berth convert` prints its result for GitOps; the ECS API uses the
// same rules, so a definition reads the same whichever way it arrives.
//
// Nothing is dropped silently: every key of the input is either mapped to a Berth
// field, dropped with a note (fields ECS sets on registration, such as revision or
// registeredAt), or refused with an error naming it and saying why (fields that
// cannot work here, such as EFS volumes, and fields Berth does not implement yet).
// The rules live in tables (fields.go) and in one mapping per ECS shape that differs
// from Berth's (secrets.go, names.go).
package ecsimport
