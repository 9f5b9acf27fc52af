"""Task graphs: topological order and cycle detection, over the standard library's
``graphlib``. ``upstream`` maps each node to the nodes it depends on; names that are not
keys of the mapping are ignored."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from graphlib import CycleError, TopologicalSorter


def _sorter(upstream: Mapping[str, Sequence[str]]) -> TopologicalSorter[str]:
    """A prepared sorter of the known nodes; raises ``CycleError``."""
    sorter = TopologicalSorter(
        {node: [dep for dep in deps if dep in upstream] for node, deps in upstream.items()}
    )
    sorter.prepare()
    return sorter


def find_cycle(upstream: Mapping[str, Sequence[str]]) -> list[str] | None:
    """Return one dependency cycle as ``[a, b, ..., a]`` (``a`` depends on ``b``...), or
    ``None``."""
    try:
        _sorter(upstream)
    except CycleError as exc:
        return list(reversed(exc.args[1]))  # graphlib lists each node before its dependant
    return None


def topological_order(upstream: Mapping[str, Sequence[str]]) -> list[str]:
    """Order nodes so each comes after everything it depends on. Ties keep the mapping's
    order (the order of ``jobs.yaml``): the next node is always the first ready one.
    Raises ``ValueError`` naming a cycle."""
    try:
        sorter = _sorter(upstream)
    except CycleError as exc:
        raise ValueError("dependency cycle: " + " -> ".join(reversed(exc.args[1]))) from None
    position = {node: index for index, node in enumerate(upstream)}
    ready: list[str] = []
    order: list[str] = []
    while sorter.is_active():
        ready.extend(sorter.get_ready())
        node = min(ready, key=position.__getitem__)
        ready.remove(node)
        order.append(node)
        sorter.done(node)
    return order
