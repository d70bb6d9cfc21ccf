// Package placement decides which container instance runs a task, as ECS's scheduler
// does: it is Berth's placement engine, shared by the scheduler of standalone tasks and
// the service scheduler.
//
// # Model
//
// An Engine holds the container instances of every cluster (UpsertInstance,
// RemoveInstance) and the tasks assumed on them (Assume, Forget). A task asks for a
// Request: cpu units, memory MiB, static host ports and a number of GPUs, which RequestFor computes from
// a task definition and the task's overrides, plus placement constraints and
// strategies. Place picks an instance:
//
//  1. Eligibility. The instance is in the task's cluster, ACTIVE and connected; its
//     registered cpu and memory minus its assumed tasks' cover the request, and so do
//     its GPUs that no assumed task holds (gpus.go); none of
//     the request's ports is reserved on it or bound by an assumed task (tcp and udp
//     apart); every constraint holds: distinctInstance (no task of the same group on
//     it) and memberOf (an expression of ECS's cluster query language, see
//     ParseExpression).
//  2. Order. The strategies score every eligible instance: binpack on cpu or memory
//     prefers the least remaining amount, spread on instanceId prefers the fewest
//     tasks of the group, spread on attribute:<name> the attribute value with the
//     fewest tasks of the group in the cluster, random a random order. Scores compare
//     in strategy order, each strategy breaking the ties of the ones before it, and
//     the instance name breaks the last ties so that placement is deterministic.
//     Without strategies the engine spreads over ecs.availability-zone, then over
//     instances, as ECS does.
//  3. Assume. The task is recorded on the chosen instance before the lock is released,
//     with the GPUs it is given (the first free ones), which Decision.GPUs returns.
//
// When no instance is eligible, Place returns an *UnplaceableError that counts, for
// every instance of the cluster, the first reason that excluded it, so that a task's
// condition and Event can say "3 instances: insufficient memory; 1: DRAINING" rather
// than naming one instance as ECS does.
//
// # Why in memory, with assume semantics
//
// The truth about what runs where is in the apiserver: each Task's
// spec.containerInstance. Deciding from it directly would be slow and wrong. Slow,
// because a decision would list the cluster's tasks; wrong, because the informer cache
// lags the scheduler's own writes: two tasks placed a millisecond apart would both see
// an instance's last free slot, and the instance would be overcommitted.
//
// So the engine keeps its own view and updates it the moment it decides, as
// kube-scheduler's assume cache does: Place picks an instance and assumes the task on
// it under one lock, and the next Place sees it even though the binding has not been
// written yet. The scheduler then writes the binding; if the write fails, it calls
// Forget and the capacity is free again. When the informer later delivers the bound
// task, the scheduler calls Assume with it: assuming is keyed by task, so this
// confirmation changes nothing. Tasks bound by others (StartTask names its instance,
// another manager replica, the tasks that existed before a restart) enter the same
// way, and a task that stops or is deleted is forgotten. The scheduler must assume
// every bound task before it places new ones after a start, as the ECS agent rebuilds
// its state before accepting work.
//
// The engine keeps no clock and no client: it is a pure data structure, fast enough to
// scan every instance of a cluster per decision (per-group counts are kept per
// instance slot, so spread and distinctInstance cost an array read), and its
// decisions are reproducible in tests.
package placement
