import BerthModel
import BerthCluster
import BerthScheduler

extension NodeRecord {
    /// The scheduler's view of the node.
    var spec: NodeSpec {
        NodeSpec(name: name, labels: labels, taints: taints, allocatable: ResourceAmounts(cpuMilli: allocatable.cpuMilli, memory: allocatable.memory,
                                                                           pods: allocatable.pods, extended: allocatable.extended),
                 ready: ready, unschedulable: unschedulable)
    }
}
