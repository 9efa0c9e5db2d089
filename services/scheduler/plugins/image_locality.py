"""ImageLocality: prefer nodes that already hold the pod's images (node.status.images),
weighted by how widely each image is spread, with Kubernetes' thresholds (23 MB .. 1000 MB
per container)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..framework import MAX_NODE_SCORE, CycleState, NodeInfo, PodInfo, normalized_image_name

__all__ = ["ImageLocality", "image_score", "normalized_image_name"]

MB = 1024 * 1024
MIN_THRESHOLD = 23 * MB
MAX_CONTAINER_THRESHOLD = 1000 * MB


def image_score(sizes: Sequence[tuple[int, int]], total_nodes: int, containers: int) -> int:
    """The score from (image size, nodes having it) of each pod image present on a node."""
    if not total_nodes or not containers:
        return 0
    total = sum(size * having // total_nodes for size, having in sizes)
    top = MAX_CONTAINER_THRESHOLD * containers
    total = min(max(total, MIN_THRESHOLD), top)
    return MAX_NODE_SCORE * (total - MIN_THRESHOLD) // (top - MIN_THRESHOLD)


class ImageLocality:
    """Score (weight 1). ``state["image_nodes"]`` (image → how many nodes have it) and
    ``state["total_nodes"]`` are set by the scheduler for the cycle."""

    name = "ImageLocality"
    weight = 1

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> bool:
        spec = pod.pod.spec
        images = [normalized_image_name(c.image)
                  for c in (*spec.init_containers, *spec.containers) if c.image]
        state[self.name] = images
        return bool(images) and bool(state.get("image_nodes"))

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        if not node.images:
            return 0
        counts: Mapping[str, int] = state["image_nodes"]
        sizes = [(node.images[i], counts.get(i, 1)) for i in state[self.name]
                 if i in node.images]
        return image_score(sizes, state.get("total_nodes", 0), len(state[self.name]))

    def normalize(self, state: CycleState, pod: PodInfo, scores: list[int]) -> None:
        return None
