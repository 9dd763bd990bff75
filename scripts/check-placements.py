#!/usr/bin/env python3
"""Checks a `berth bench scheduler --placements FILE` output on its own: no node holds more cpu, memory
or pods than it has, every pod's nodeSelector holds on its node, and every pod is on a known node."""
import json
import sys


def main(path):
    nodes, pods = {}, []
    with open(path) as f:
        for line in f:
            row = json.loads(line)
            if "node" in row and "pod" not in row:
                nodes[row["node"]] = row
            else:
                pods.append(row)
    used = {name: [0, 0, 0] for name in nodes}
    problems = []
    for p in pods:
        node = nodes.get(p["node"])
        if node is None:
            problems.append(f"{p['pod']}: unknown node {p['node']}")
            continue
        u = used[p["node"]]
        u[0] += p["cpuMilli"]
        u[1] += p["memoryBytes"]
        u[2] += 1
        for key, value in p["nodeSelector"].items():
            if node["labels"].get(key) != value:
                problems.append(f"{p['pod']}: node {p['node']} does not have {key}={value}")
    for name, (cpu, memory, count) in used.items():
        n = nodes[name]
        if cpu > n["cpuMilli"] or memory > n["memoryBytes"] or count > n.get("pods", count):
            problems.append(f"{name}: over capacity (cpu {cpu}/{n['cpuMilli']}, memory {memory}/{n['memoryBytes']}, pods {count})")
    for line in problems[:20]:
        print(line)
    print(f"{len(pods)} placements on {len(nodes)} nodes checked: {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
