// Package utilization turns what agents measure into ECS's service, family and
// cluster metrics, and keeps each cluster's capacity provider reservation.
//
// Design:
//
//   - Agents write one measurement per window (about a minute) into their
//     ContainerInstance's status.utilization, grouped by namespace, service and
//     family. The apiserver stays the only channel: the manager never dials agents,
//     which may sit behind NAT at the edge.
//   - The Aggregator keeps the latest report of every connected instance, the
//     capacity of every ACTIVE one and the set of tasks that wait for room, from
//     informer events (incrementally: an event changes one instance's or one task's
//     contribution, and wakes only the keys it touches). Sums are taken when a key
//     is written or scraped, over instances, never over tasks.
//   - One writer per kind (Service, TaskDefinition, Cluster) applies only
//     status.utilization, as its own field manager, at most once per interval per
//     object: a key woken again sooner waits out the rest of the interval. Writes
//     per minute therefore follow the number of services, families and clusters,
//     not the number of tasks.
//   - Prometheus reads the same sums at scrape time (metrics.go), so a scrape costs
//     no request to the apiserver.
//
// The arithmetic (sums before division, cluster figures against registered
// capacity, the reservation formula) lives in internal/utilization, shared with the
// agent.
package utilization
