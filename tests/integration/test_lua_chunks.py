"""The write scripts on real Redis: thousands of arguments to one command go through in runs (Lua's `unpack`
has a stack limit), none lost, none repeated."""

from __future__ import annotations

import uuid

import pytest
import redis

from processors.drone.separation import WRITE_FIXES
from processors.sink import SET_ADD_MANY, ZADD_MANY

pytestmark = pytest.mark.integration


def _keys(n: int) -> list[str]:
    tag = uuid.uuid4().hex[:8]
    return [f"test-chunks:{tag}:{i}" for i in range(n)]


def test_set_add_many_adds_every_member_of_sets_larger_than_a_run(redis_client: redis.Redis) -> None:
    big, small = _keys(2)
    members = [f"m{i}" for i in range(2_501)]
    redis_client.eval(SET_ADD_MANY, 2, big, small, 600, len(members), *members, 3, "a", "b", "c")
    assert redis_client.scard(big) == 2_501
    assert redis_client.smembers(small) == {b"a", b"b", b"c"}
    assert 0 < redis_client.ttl(big) <= 600


def test_zadd_many_adds_every_pair_past_a_run(redis_client: redis.Redis) -> None:
    first, second = _keys(2)
    pairs = [x for i in range(1_501) for x in (i, f"s{i}")]  # 3,002 arguments: runs of 1,000 split no pair
    redis_client.eval(ZADD_MANY, 2, first, second, 1_501, *pairs, 1, 7, "only")
    assert redis_client.zcard(first) == 1_501
    assert redis_client.zscore(first, "s1500") == 1_500
    assert redis_client.zrange(second, 0, -1, withscores=True) == [(b"only", 7.0)]


def test_write_fixes_adds_every_fix_past_a_run_and_raises_the_stamps(redis_client: redis.Redis) -> None:
    geo, stamp = _keys(2)
    fixes = [x for i in range(1_000) for x in (113.6 + i * 1e-5, 22.8, f"d{i}")]  # 3,000 values, runs of 999
    redis_client.eval(WRITE_FIXES, 2, geo, stamp, 600, len(fixes), *fixes)
    assert redis_client.zcard(geo) == 1_000
    assert redis_client.get(stamp) == b"1"
