"""Seeded generators keyed by a string: every draw of a run comes from one of these.

A scenario declares the version of its streams (``streams:``). Both give each key its own stream,
so a draw depends on the seed and what it is for, never on the order of the run's other draws:

* version 1, the Mersenne Twister: ``random.Random(key)``. Every ledger written before version 2
  existed uses it, and a scenario that declares no version still does.
* version 2, BLAKE2b in counter mode: the stream of a key is the BLAKE2b digests of the key with
  the block number as salt, eight 64-bit words a digest. The engine and the offline policies key a
  stream per trader and turn, and most of those streams give one or two numbers: seeding a Mersenne
  Twister (its 624-word state set up twice, then turned) cost more than the rest of a quiet turn.
"""

from __future__ import annotations

import _random
import random
import struct
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, MutableSequence, Sequence
from hashlib import blake2b, sha512
from operator import length_hint
from types import MappingProxyType
from typing import Any, ClassVar

_BLOCK = struct.Struct("<8Q")  # one BLAKE2b digest (64 bytes): eight 64-bit words
_FIRST = struct.Struct("<Q")
_UNIT = 2.0**-53  # a 53-bit integer times this is a float in [0, 1), as random.random() makes them


def keyed_random(key: str) -> random.Random:
    """``random.Random(key)``, the same stream, seeded in one C call: for a str, ``Random.seed``
    (version 2) seeds with the integer of the key's bytes followed by their SHA-512."""
    data = key.encode()
    rng = random.Random.__new__(random.Random)
    _random.Random.seed(rng, int.from_bytes(data + sha512(data).digest()))
    rng.gauss_next = None  # as Random.seed leaves it
    return rng


def _block(key: bytes, number: int) -> tuple[int, ...]:
    """Block ``number`` of ``key``'s counter stream: eight 64-bit words."""
    # (block 0's salt is all zeros, which BLAKE2b's parameter block holds anyway: no salt to pass)
    digest = blake2b(key) if number == 0 else blake2b(key, salt=number.to_bytes(16, "little"))
    return _BLOCK.unpack(digest.digest())


class CounterRandom(random.Random):
    """A ``random.Random`` whose numbers come from BLAKE2b in counter mode (streams version 2).

    Every method of ``random.Random`` works on it (its ``random``, ``getrandbits`` and ``_randbelow``
    are the source); ``random()`` takes the top 53 bits of the next word."""

    def seed(self, a: Any = None, version: int = 2) -> None:
        """Key the stream with a str or bytes (there is no seeding from the time or the OS)."""
        if not isinstance(a, str | bytes):
            raise TypeError(f"a counter stream is keyed by a str or bytes, not {type(a).__name__}")
        self._key = a.encode() if isinstance(a, str) else a
        self._words: Iterator[int] = iter(())  # the rest of the block in use (none yet)
        self._blocks = 0  # blocks begun
        self.gauss_next = None

    def _word(self) -> int:
        """The next word: the block in use's next, or the first of the next block."""
        word = next(self._words, None)
        if word is None:
            self._words = iter(_block(self._key, self._blocks))
            self._blocks += 1
            word = next(self._words)
        return word

    def random(self) -> float:
        """The next float in [0, 1)."""
        return (self._word() >> 11) * _UNIT

    def uniform(self, a: float, b: float) -> float:
        """As ``random.Random.uniform`` (``a + (b - a) * random()``), in one call."""
        return a + (b - a) * ((self._word() >> 11) * _UNIT)

    def _randbelow(self, n: int) -> int:
        """An int in [0, n): the top bits of the next word, drawn again while too large (as CPython's
        ``_randbelow_with_getrandbits``, with the bits of ``n - 1``, in one call)."""
        if n <= 0:
            return 0
        if n > 1 << 64:
            return self._randbelow_with_getrandbits(n)
        shift = 64 - (n - 1).bit_length()
        while True:
            drawn = self._word() >> shift
            if drawn < n:
                return drawn

    def choice(self, seq: Sequence[Any]) -> Any:
        """As ``random.Random.choice``: ``seq[_randbelow(len(seq))]`` (without ``random.Random``'s own
        Python frame in between: a message's template is chosen this way on most turns)."""
        n = len(seq)
        if not n:
            raise IndexError("Cannot choose from an empty sequence")
        return seq[self._randbelow(n)]

    def getrandbits(self, k: int) -> int:
        """``k`` random bits: the top bits of the next words."""
        if k < 0:
            raise ValueError("number of bits must be non-negative")
        words = -(-k // 64) or 1
        value = 0
        for _ in range(words):
            value = value << 64 | self._word()
        return value >> (words * 64 - k)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its key and state (``random.Random`` would build one with no key)."""
        return (self.__class__, (self._key,), self.getstate())

    def getstate(self) -> tuple[Any, ...]:
        """The key and how many words have been drawn (the blocks begun, less the words left in the last)."""
        return (2, self._key, self._blocks * 8 - length_hint(self._words), self.gauss_next)

    def setstate(self, state: tuple[Any, ...]) -> None:
        """Back to a state ``getstate`` gave."""
        version, key, drawn, gauss_next = state
        if version != 2:
            raise ValueError(f"a counter stream's state is version 2, not {version}")
        self.seed(key)
        blocks, used = divmod(drawn, 8)
        if used:
            self._blocks = blocks + 1
            self._words = iter(_block(self._key, blocks)[used:])
        else:
            self._blocks = blocks
        self.gauss_next = gauss_next


class Streams(ABC):
    """A version of the keyed streams: a generator per key, and the one-number draws the engine makes."""

    version: ClassVar[int]

    @abstractmethod
    def generator(self, key: str) -> random.Random:
        """The stream of ``key``, as a ``random.Random``."""

    def uniform(self, key: str, a: float, b: float) -> float:
        """The first number of ``key``'s stream as ``generator(key).uniform(a, b)`` gives it."""
        return self.generator(key).uniform(a, b)

    def shuffle(self, key: str, items: MutableSequence[Any]) -> None:
        """Shuffle ``items`` in place with ``key``'s stream."""
        self.generator(key).shuffle(items)


class MersenneStreams(Streams):
    """Version 1: ``random.Random(key)``."""

    version = 1

    def generator(self, key: str) -> random.Random:
        """``random.Random(key)``."""
        return keyed_random(key)


class CounterStreams(Streams):
    """Version 2: BLAKE2b in counter mode (``CounterRandom``)."""

    version = 2

    def generator(self, key: str) -> random.Random:
        """A ``CounterRandom`` keyed by ``key``."""
        rng = CounterRandom.__new__(CounterRandom)
        rng.seed(key)
        return rng

    def uniform(self, key: str, a: float, b: float) -> float:
        """The first word of the first block alone: no generator is made."""
        (word,) = _FIRST.unpack_from(blake2b(key.encode()).digest())  # block 0: no salt (see _block)
        return a + (b - a) * ((word >> 11) * _UNIT)


STREAMS: Mapping[int, Streams] = MappingProxyType({1: MersenneStreams(), 2: CounterStreams()})
"""Each version of the streams a scenario can declare."""
