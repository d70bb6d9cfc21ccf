// Package utilization holds the arithmetic of ECS's utilization metrics, the one
// home for what the agent measures and the manager adds up:
//
//   - a task's use is averaged over a window: CPU as the growth of its containers'
//     CPU time divided by the window's length, memory as the mean working set of its
//     samples;
//   - a group (a service, a family, a cluster) adds its tasks' use and reservations
//     up before dividing, so CPUUtilization = Σ used ÷ Σ reserved × 100, as ECS
//     defines it, not a mean of per-task percentages;
//   - a cluster's utilization divides by what its instances registered, and its
//     capacity provider reservation by the capacity they have.
package utilization
