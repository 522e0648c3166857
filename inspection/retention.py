"""Image retention: which kept images to delete, by age and by total size, oldest first.

One rule for the edge box's local images and the results service's image store. Pure Python (no numpy),
so the results service can use it without the inspection runtime. Protected images (the service protects
an unreviewed FAIL's images) are deleted only when the size limit cannot be met otherwise ("forced").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

Key = TypeVar("Key")
Reason = Literal["age", "bytes", "forced"]


@dataclass(frozen=True)
class Kept(Generic[Key]):
    """One kept image: ``created`` in seconds since the epoch, ``size`` in bytes."""

    key: Key
    created: float
    size: int
    protected: bool = False


def expired(items: Sequence[Kept[Key]], now: float, max_age_s: float | None,
            max_bytes: int | None) -> tuple[list[tuple[Kept[Key], Reason]], int]:
    """The images to delete with the reason for each, and the total bytes left afterwards.

    First every unprotected image older than ``max_age_s``; then, while the total is over ``max_bytes``,
    unprotected images oldest first, and protected ones oldest first only if that was not enough.
    ``None`` switches a limit off.
    """
    ordered = sorted(items, key=lambda k: k.created)
    total = sum(k.size for k in ordered)
    doomed: list[tuple[Kept[Key], Reason]] = []
    chosen: set[int] = set()
    if max_age_s is not None:
        cutoff = now - max_age_s
        for i, k in enumerate(ordered):
            if k.created < cutoff and not k.protected:
                doomed.append((k, "age"))
                chosen.add(i)
                total -= k.size
    if max_bytes is not None:
        steps: tuple[tuple[Reason, bool], ...] = (("bytes", False), ("forced", True))
        for reason, allow_protected in steps:
            for i, k in enumerate(ordered):
                if total <= max_bytes:
                    break
                if i in chosen or (k.protected and not allow_protected):
                    continue
                doomed.append((k, reason))
                chosen.add(i)
                total -= k.size
    return doomed, max(total, 0)
