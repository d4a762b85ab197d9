"""Distinct 64-bit hashes in bounded memory: the uniqueness and duplicate-row checks' memory of what they saw."""

from __future__ import annotations

from typing import Any

COMPACT_EVERY = 1 << 20  # hashes kept before a deduplication pass


class HashSet:
    """Distinct 64-bit hashes, deduplicated as they come (8 bytes per distinct value): :meth:`add` says how
    many of a batch's hashes were seen before, in the batch itself or in an earlier one."""

    def __init__(self, compact_every: int = COMPACT_EVERY) -> None:
        self.chunks: list[Any] = []  # each sorted and distinct; together disjoint
        self.compact_every = compact_every

    def add(self, hashes: Any) -> int:
        import numpy as np

        distinct = np.unique(hashes)
        repeats = len(hashes) - len(distinct)
        seen = np.zeros(len(distinct), dtype=bool)
        for chunk in self.chunks:
            if len(chunk):
                at = np.minimum(np.searchsorted(chunk, distinct), len(chunk) - 1)
                seen |= chunk[at] == distinct
        self.chunks = _add_hashes(self.chunks, distinct[~seen], self.compact_every)
        return repeats + int(seen.sum())

    def __len__(self) -> int:
        return sum(len(c) for c in self.chunks)


def _distinct_hashes(chunks: list[Any]) -> Any:
    import numpy as np

    if not chunks:
        return np.zeros(0, dtype="uint64")
    merged = np.concatenate(chunks)
    merged.sort()  # in place: one copy of the hashes, not np.unique's three
    keep = np.empty(len(merged), dtype=bool)
    keep[:1] = True
    np.not_equal(merged[1:], merged[:-1], out=keep[1:])
    return merged[keep]


def _add_hashes(chunks: list[Any], new: Any, floor: int) -> list[Any]:
    """Append deduplicated hashes; merge the pending chunks into the first (distinct, sorted) one when they
    outgrow it, so each hash is sorted O(log n) times in all (amortised), not once per batch."""
    chunks.append(new)
    pending = sum(len(c) for c in chunks[1:])
    if pending > max(floor, len(chunks[0])):
        return [_distinct_hashes(chunks)]
    return chunks
