"""Task graphs: topological order and cycle detection."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def find_cycle(upstream: Mapping[str, Sequence[str]]) -> list[str] | None:
    """Return one dependency cycle as ``[a, b, ..., a]`` (``a`` depends on ``b``...), or
    ``None``. ``upstream`` maps each node to the nodes it depends on; unknown names are
    ignored."""
    white, grey, black = 0, 1, 2
    color = {node: white for node in upstream}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        color[node] = grey
        stack.append(node)
        for dep in upstream[node]:
            if dep not in color:
                continue
            if color[dep] == grey:
                return stack[stack.index(dep) :] + [dep]
            if color[dep] == white:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        color[node] = black
        return None

    for node in upstream:
        if color[node] == white:
            found = visit(node)
            if found:
                return found
    return None


def topological_order(upstream: Mapping[str, Sequence[str]]) -> list[str]:
    """Order nodes so each comes after everything it depends on. Ties keep the mapping's
    order (the order of ``jobs.yaml``). Raises ``ValueError`` naming a cycle."""
    cycle = find_cycle(upstream)
    if cycle:
        raise ValueError("dependency cycle: " + " -> ".join(cycle))
    done: set[str] = set()
    order: list[str] = []
    remaining = list(upstream)
    while remaining:
        for node in remaining:
            if all(dep in done or dep not in upstream for dep in upstream[node]):
                order.append(node)
                done.add(node)
                remaining.remove(node)
                break
    return order
