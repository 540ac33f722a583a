"""Split a manifest so that one plate (or one video) never lands in two splits."""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict

from data.errors import DataError
from data.manifest import LabeledImage


def group_key(item: LabeledImage, key: str) -> str:
    """The unit that must stay together: the image's plate texts, or a record field (e.g. video)."""
    if key == "text":
        texts = sorted(p.text for p in item.plates if p.text)
        return "text:" + "|".join(texts) if texts else "image:" + item.image
    value = item.extra.get(key, getattr(item, key, None))
    return f"{key}:{value}" if value is not None else "image:" + item.image


def assign_splits(
    items: list[LabeledImage],
    ratios: dict[str, float],
    key: str = "text",
    seed: int = 0,
    keep_existing: bool = False,
) -> Counter:
    """Set ``split`` on every item (in place); returns images per split.

    Groups are ordered by a seeded hash (stable when images are added: existing groups keep their
    split unless the ratios change) and filled into the splits by cumulative image count. An image
    showing two plates ties their groups together, so that neither text leaks across splits.
    """
    total = sum(ratios.values())
    if total <= 0 or any(r < 0 for r in ratios.values()):
        raise DataError(f"split ratios must be non-negative with a positive sum, got {dict(ratios)}")
    # Union-find over texts: an image with plates A and B joins A's and B's groups.
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    todo = [it for it in items if not (keep_existing and it.split)]
    for it in todo:
        keys = [f"text:{p.text}" for p in it.plates if p.text] if key == "text" else []
        keys = keys or [group_key(it, key)]
        for k in keys[1:]:
            parent[find(k)] = find(keys[0])
        find(keys[0])
    members: dict[str, list[LabeledImage]] = defaultdict(list)
    for it in todo:
        keys = [f"text:{p.text}" for p in it.plates if p.text] if key == "text" else []
        members[find((keys or [group_key(it, key)])[0])].append(it)
    order = sorted(members, key=lambda g: hashlib.sha1(f"{seed}:{g}".encode()).hexdigest())
    names = list(ratios)
    bounds, acc = [], 0.0
    for name in names:
        acc += ratios[name] / total
        bounds.append(acc)
    n, seen = len(todo), 0
    for g in order:
        frac = (seen + len(members[g]) / 2) / max(n, 1)  # the group's midpoint decides its split
        split = (
            next(name for name, b in zip(names, bounds, strict=False) if frac <= b + 1e-9) if names else None
        )
        for it in members[g]:
            it.split = split
        seen += len(members[g])
    return Counter(it.split for it in items)
