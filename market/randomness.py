"""Seeded generators keyed by a string: every draw of a run comes from one of these."""

from __future__ import annotations

import _random
import random
from hashlib import sha512


def keyed_random(key: str) -> random.Random:
    """``random.Random(key)``, the same stream, seeded in one C call: for a str, ``Random.seed``
    (version 2) seeds with the integer of the key's bytes followed by their SHA-512. The engine and
    the offline policies seed a generator per trader and turn, and the Python-level set-up was a
    measurable share of a week."""
    data = key.encode()
    rng = random.Random.__new__(random.Random)
    _random.Random.seed(rng, int.from_bytes(data + sha512(data).digest()))
    rng.gauss_next = None  # as Random.seed leaves it
    return rng
