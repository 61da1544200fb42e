"""Commit graphs for the search tests: hand-made shapes, an oracle for a planted bug, and
hypothesis strategies for random DAGs.  Shared by tests/test_search.py and test_plan.py."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from harness.model.search import Outcome, ancestors

Graph = dict[str, list[str]]


def linear(names: Sequence[str]) -> Graph:
    """names[0] is the root; each commit's parent is the previous one."""
    graph: Graph = {names[0]: []}
    for prev, cur in zip(names, names[1:]):
        graph[cur] = [prev]
    return graph


def planted(graph: Mapping[str, Sequence[str]], first_new: str, skips: Collection[str] = ()):
    """Oracle for a bug introduced by ``first_new``: NEW iff it is an ancestor (inclusive)."""

    def outcome(sha: str) -> Outcome:
        if sha in skips:
            return Outcome.SKIP
        return Outcome.NEW if first_new in ancestors(graph, sha) else Outcome.OLD

    return outcome


def sha_of(i: int) -> str:
    return hashlib.sha1(str(i).encode()).hexdigest()[:12]


@st.composite
def dags(draw, max_commits: int = 60):
    """Random DAG: root 'old', each commit 1-2 earlier parents, then a merge chain to new."""
    n = draw(st.integers(2, max_commits))
    names = [sha_of(i) for i in range(n)]
    graph: Graph = {names[0]: []}
    for i in range(1, n):
        first = draw(st.integers(0, i - 1))
        ps = [names[first]]
        if i > 1 and draw(st.booleans()):
            second = draw(st.integers(0, i - 1))
            if second != first:
                ps.append(names[second])
        graph[names[i]] = ps
    has_child = {p for ps in graph.values() for p in ps}
    tips = [c for c in names if c not in has_child]
    new = tips[0]
    for j, tip in enumerate(tips[1:], start=n):
        merge = sha_of(j)
        graph[merge] = [new, tip]
        new = merge
    return graph, names[0], new


@st.composite
def scenarios(draw):
    graph, old, new = draw(dags())
    inner = sorted(set(graph) - {old})
    first_new = draw(st.sampled_from(inner))
    pool = sorted(set(inner) - {new})
    skips = draw(st.sets(st.sampled_from(pool), max_size=8)) if pool else set()
    k = draw(st.integers(1, 5))
    return graph, old, new, first_new, frozenset(skips), k


FAST = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
