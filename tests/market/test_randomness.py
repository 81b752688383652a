"""Keyed generators: the stream of random.Random(key)."""

from __future__ import annotations

import random

from market.randomness import keyed_random


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
