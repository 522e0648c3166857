"""The one image-retention rule (inspection.retention.expired), used by the edge box and the results service."""

from __future__ import annotations

from inspection.retention import Kept, expired

DAY = 86400.0
NOW = 100 * DAY


def _img(key: str, age_days: float, size: int = 10, protected: bool = False) -> Kept[str]:
    return Kept(key, NOW - age_days * DAY, size, protected)


def _decided(doomed) -> list[tuple[str, str]]:
    return [(k.key, reason) for k, reason in doomed]


def test_no_limits_keep_everything():
    items = [_img("a", 400), _img("b", 1)]
    assert expired(items, NOW, None, None) == ([], 20)


def test_age_deletes_unprotected_images_older_than_the_limit_only():
    items = [_img("old", 31), _img("old-protected", 40, protected=True), _img("edge", 30), _img("new", 1)]
    doomed, left = expired(items, NOW, 30 * DAY, None)
    assert _decided(doomed) == [("old", "age")]  # exactly 30 days old is not older than the limit
    assert left == 30


def test_bytes_delete_oldest_first_until_under_the_limit():
    items = [_img("c", 3), _img("a", 9), _img("d", 1), _img("b", 5)]  # given in no particular order
    doomed, left = expired(items, NOW, None, 20)
    assert _decided(doomed) == [("a", "bytes"), ("b", "bytes")]
    assert left == 20


def test_protected_images_go_only_when_nothing_else_is_left_and_are_counted_as_forced():
    items = [_img("fail-oldest", 9, protected=True), _img("p1", 8), _img("p2", 7),
             _img("fail-newer", 6, protected=True)]
    doomed, left = expired(items, NOW, None, 20)
    assert _decided(doomed) == [("p1", "bytes"), ("p2", "bytes")]  # the FAILs stay: 20 bytes fit
    doomed, left = expired(items, NOW, None, 5)
    assert _decided(doomed) == [("p1", "bytes"), ("p2", "bytes"), ("fail-oldest", "forced"), ("fail-newer", "forced")]
    assert left == 0
    doomed, left = expired(items, NOW, None, 10)
    assert _decided(doomed)[-1] == ("fail-oldest", "forced") and left == 10  # oldest protected first, then stop


def test_age_then_bytes_without_counting_an_image_twice():
    items = [_img("ancient", 50, 100), _img("old", 20, 10), _img("mid", 10, 10), _img("new", 1, 10)]
    doomed, left = expired(items, NOW, 30 * DAY, 15)
    assert _decided(doomed) == [("ancient", "age"), ("old", "bytes"), ("mid", "bytes")]
    assert left == 10


def test_zero_limit_deletes_everything_and_left_is_never_negative():
    items = [_img("a", 2, 7, protected=True), _img("b", 1, 3)]
    doomed, left = expired(items, NOW, 0.0, 0)
    assert sorted(_decided(doomed)) == [("a", "forced"), ("b", "age")]
    assert left == 0
