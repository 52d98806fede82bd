"""Duplicate groups: the connected components of the pairs found, numbered deterministically."""

from __future__ import annotations

import numpy as np
import scipy.sparse
from scipy.sparse.csgraph import connected_components


def components(n: int, pairs: np.ndarray) -> np.ndarray:
    """Union-find over n nodes and (m, 2) edges: component label of each node.

    Labels are numbered in order of each component's smallest node (deterministic).
    """
    graph = scipy.sparse.coo_matrix((np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    # renumber by first occurrence so the numbering never depends on scipy's traversal
    _, first = np.unique(labels, return_index=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[labels]
