"""Request ids the server makes: unpredictable, unique across its batches of randomness, and
never repeated by a forked child."""

from __future__ import annotations

import os
import re

from nepse_predictor.middleware import RequestIds

HEX_ID = re.compile(rb"[0-9a-f]{32}")


def test_ids_are_unique_hex_across_batches() -> None:
    ids = RequestIds()
    made = [ids.next() for _ in range(3 * RequestIds.BATCH + 7)]
    assert all(HEX_ID.fullmatch(request_id) for request_id in made)
    assert len(set(made)) == len(made)


def test_a_forked_child_does_not_repeat_its_parents_ids() -> None:
    ids = RequestIds()
    ids.next()  # the parent holds a batch of randomness when it forks
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(read_end)
        os.write(write_end, ids.next())
        os._exit(0)
    os.close(write_end)
    from_child = os.read(read_end, 64)
    os.close(read_end)
    os.waitpid(child, 0)
    assert HEX_ID.fullmatch(from_child)
    assert from_child != ids.next()
