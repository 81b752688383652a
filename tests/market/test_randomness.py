"""Keyed generators: version 1 the stream of random.Random(key), version 2 BLAKE2b in counter mode."""

from __future__ import annotations

import copy
import pickle
import random
from hashlib import blake2b

import pytest

from market.randomness import STREAMS, keyed_random


def test_a_keyed_generator_gives_random_randoms_stream_for_the_same_key() -> None:
    for key in ("0:A:p01:0:wake", "20251:market B:p17:12:react:offer_made:O123", "", "é:ключ"):
        fast, slow = keyed_random(key), random.Random(key)
        assert fast.getstate() == slow.getstate()
        assert [fast.random() for _ in range(700)] == [slow.random() for _ in range(700)]  # past a twist
        assert fast.uniform(3, 9) == slow.uniform(3, 9) and fast.gauss(0, 1) == slow.gauss(0, 1)
        order, again = list(range(40)), list(range(40))
        fast.shuffle(order)
        slow.shuffle(again)
        assert order == again and order != list(range(40))


# --- version 2: BLAKE2b in counter mode ----------------------------------------------------------

def test_version_1_streams_are_random_randoms() -> None:
    streams, key = STREAMS[1], "7:A:p03:4:wake"
    assert streams.version == 1
    assert streams.uniform(key, 5, 40) == random.Random(key).uniform(5, 40)
    order, again = list(range(30)), list(range(30))
    streams.shuffle(key, order)
    random.Random(key).shuffle(again)
    assert order == again


def test_a_counter_stream_is_the_blake2b_words_of_its_key_and_block() -> None:
    rng = STREAMS[2].generator("k")
    words = [int.from_bytes(blake2b(b"k", salt=block.to_bytes(16, "little")).digest()[i:i + 8], "little")
             for block in range(3) for i in range(0, 64, 8)]
    assert [rng.getrandbits(64) for _ in range(24)] == words  # across two block boundaries
    again = STREAMS[2].generator("k")
    assert [again.random() for _ in range(24)] == [(w >> 11) * 2.0**-53 for w in words]


def test_version_2_draws_as_random_random_draws_from_its_numbers() -> None:
    streams = STREAMS[2]
    for key in ("0:A:p01:0:wake", "", "é:ключ", "x" * 500):
        assert streams.uniform(key, 5, 40) == streams.generator(key).uniform(5, 40)
        assert 5 <= streams.uniform(key, 5, 40) < 40
        a, b = streams.generator(key), streams.generator(key)
        assert [a.random() for _ in range(20)] == [b.random() for _ in range(20)]
        assert a.choice("abcdef") == b.choice("abcdef") and a.randint(1, 10**30) == b.randint(1, 10**30)
        assert a.gauss(0, 1) == b.gauss(0, 1) and a.sample(range(100), 5) == b.sample(range(100), 5)
        order, again = list(range(40)), list(range(40))
        streams.shuffle(key, order)
        streams.generator(key).shuffle(again)
        assert order == again and sorted(order) == list(range(40)) and order != list(range(40))
    assert streams.generator("a").random() != streams.generator("b").random()


def test_a_counter_stream_resumes_from_its_state_and_draws_any_number_of_bits() -> None:
    rng = STREAMS[2].generator("state")
    [rng.random() for _ in range(11)]
    state = rng.getstate()
    ahead = [rng.random() for _ in range(9)]
    rng.setstate(state)
    assert [rng.random() for _ in range(9)] == ahead
    pickled, copied = pickle.loads(pickle.dumps(rng)), copy.copy(rng)
    following = [rng.random() for _ in range(5)]
    assert [pickled.random() for _ in range(5)] == following == [copied.random() for _ in range(5)]
    assert rng.getrandbits(0) == 0 and 0 <= rng.getrandbits(1) <= 1
    assert rng.getrandbits(200).bit_length() <= 200 and rng.getrandbits(65).bit_length() <= 65
    with pytest.raises(ValueError, match="non-negative"):
        rng.getrandbits(-1)
    with pytest.raises(TypeError, match="keyed by a str or bytes"):
        STREAMS[2].generator("k").seed(None)


def test_a_counter_streams_numbers_are_uniform() -> None:
    """Fixed keys, so fixed numbers: the mean and the spread of 20,000 draws, each inside 4 standard errors."""
    rng = STREAMS[2].generator("uniformity")
    draws = [rng.random() for _ in range(20_000)]
    mean = sum(draws) / len(draws)
    assert abs(mean - 0.5) < 4 * (1 / 12) ** 0.5 / len(draws) ** 0.5
    deciles = [0] * 10
    for x in draws:
        deciles[int(x * 10)] += 1
    assert all(abs(n - 2000) < 4 * (2000 * 0.9) ** 0.5 for n in deciles)
    firsts = [STREAMS[2].uniform(f"wake:{i}", 0, 1) for i in range(20_000)]  # one number per key, as the engine draws
    assert abs(sum(firsts) / len(firsts) - 0.5) < 4 * (1 / 12) ** 0.5 / len(firsts) ** 0.5
    counts = [0, 0, 0]
    for _ in range(30_000):
        counts[rng.randrange(3)] += 1  # (3 is not a power of two: some draws are refused and drawn again)
    assert all(abs(n - 10_000) < 4 * (30_000 * (1 / 3) * (2 / 3)) ** 0.5 for n in counts)
    assert {rng.randrange(1) for _ in range(10)} == {0} and 2**64 < rng.randrange(2**65, 2**66) < 2**66


def test_a_counter_streams_choice_is_randbelow_of_the_length_and_a_state_resumes_mid_block() -> None:
    streams = STREAMS[2]
    for size in (1, 2, 3, 7, 8, 9, 1000, 2**40 + 3):
        chosen, below = streams.generator(f"c{size}"), streams.generator(f"c{size}")
        seq = range(size)
        assert [chosen.choice(seq) for _ in range(30)] == [below._randbelow(size) for _ in range(30)]
        assert chosen.getstate() == below.getstate()  # the same words drawn, rejected ones included
    with pytest.raises(IndexError):
        streams.generator("empty").choice([])
    for drawn in (0, 1, 7, 8, 9, 17):
        rng = streams.generator("resume")
        for _ in range(drawn):
            rng.random()
        again = streams.generator("other")
        again.setstate(rng.getstate())
        assert [again.random() for _ in range(20)] == [rng.random() for _ in range(20)]
