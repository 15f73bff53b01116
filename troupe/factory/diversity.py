"""Diversity within a population: unique names and no near-duplicate people.

Near-duplicates are found with MinHash over word shingles of the persona text (name left out),
indexed in datasketch's LSH so a population of thousands is checked in one pass rather than by
comparing every pair. Earlier people win: a later person who repeats a name or nearly repeats a
person is the one regenerated.
"""

from __future__ import annotations

import re
import zlib
from functools import lru_cache
from typing import Any, Sequence

from ..agent.render import persona_outline

NUM_PERM = 128
SHINGLE = 3


def name_key(name: str) -> str:
    return " ".join(name.casefold().split())


def persona_text(persona: dict[str, Any]) -> str:
    """What two people are compared on: the persona outline without the name."""
    return persona_outline(persona)


@lru_cache(maxsize=1)
def _permutations() -> Any:
    from datasketch import MinHash

    return MinHash(num_perm=NUM_PERM, seed=1, scheme="affine32").permutations  # drawn once, shared by every sketch


@lru_cache(maxsize=16_384)  # diversity rounds and the profile hash the same people again
def _minhash(text: str) -> Any:
    """The MinHash of text's word shingles; CRC-32 hashes them (stable across processes, ~5x faster than SHA-1)."""
    from datasketch import MinHash

    words = re.findall(r"\w+", text.lower())
    shingles = {" ".join(words[i : i + SHINGLE]) for i in range(max(1, len(words) - SHINGLE + 1))}
    sketch = MinHash(num_perm=NUM_PERM, hashfunc=zlib.crc32, permutations=_permutations(), scheme="affine32")
    sketch.update_batch([s.encode() for s in shingles])
    return sketch


def near_duplicates(texts: Sequence[str], threshold: float) -> dict[int, int]:
    """For each text nearly repeating an earlier one (estimated Jaccard >= threshold), that earlier index.

    A text found to be a near-duplicate is not indexed, so it is judged against originals only.
    """
    from datasketch import MinHashLSH

    index = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    sketches: dict[int, Any] = {}
    found: dict[int, int] = {}
    for position, text in enumerate(texts):
        sketch = _minhash(text)
        close = [int(key) for key in index.query(sketch) if sketches[int(key)].jaccard(sketch) >= threshold]
        if close:
            found[position] = min(close)
        else:
            index.insert(str(position), sketch)
            sketches[position] = sketch
    return found


def duplicate_names(names: Sequence[str]) -> dict[int, int]:
    """For each name already used earlier in names (case and spacing ignored), the first index using it."""
    first: dict[str, int] = {}
    found: dict[int, int] = {}
    for position, name in enumerate(names):
        key = name_key(name)
        if key in first:
            found[position] = first[key]
        else:
            first[key] = position
    return found
