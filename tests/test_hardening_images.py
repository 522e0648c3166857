"""Image bombs (issue 9 item 1): the header is read first, and an image declaring more pixels than the limit
is refused with 413 before it is decoded; the byte limit and undecodable bodies keep their answers."""

from __future__ import annotations

import struct
import zlib

import pytest
from service_support import make_result, png_bytes

from edge_service.image_store import DEFAULT_MAX_PIXELS, ImageStore, ImageTooLarge, UndecodableImage, check_image


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declaring(width: int, height: int, bit_depth: int = 16, idat: bytes = b"") -> bytes:
    """A PNG whose header declares ``width`` x ``height`` RGB pixels; its pixel data is ``idat``."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def real_png(width: int, height: int) -> bytes:
    """A complete, decodable 8-bit RGB PNG of zeros (compresses to almost nothing)."""
    row = b"\0" + b"\0" * (3 * width)
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return png_declaring(width, height, 8, idat)


def _put(service, rid, data, content_type="image/png"):
    return service.client.put(f"/api/v1/results/{rid}/images/original", content=data,
                              headers={**service.h("edge"), "Content-Type": content_type})


def test_declared_bomb_is_refused_from_its_header(service):
    r = make_result(verdict="FAIL")
    service.post([r])
    bomb = png_declaring(25000, 25000, idat=zlib.compress(b"\0" * 100_000))
    res = _put(service, r["inspection_id"], bomb)
    assert res.status_code == 413, res.text
    assert res.json()["error"] == "bad_image"
    assert "25000x25000" in res.json()["message"] and "pixels" in res.json()["message"]
    assert service.get(f"/api/v1/results/{r['inspection_id']}").json()["images"] == []


def test_a_decodable_image_over_the_pixel_limit_is_not_stored(service):
    r = make_result()
    service.post([r])
    res = _put(service, r["inspection_id"], real_png(8000, 6000))  # 48 MP, a few hundred KB
    assert res.status_code == 413, res.text
    assert service.get(f"/api/v1/results/{r['inspection_id']}").json()["images"] == []
    assert _put(service, r["inspection_id"], png_bytes()).status_code == 204  # a normal image still goes


def test_pixel_limit_is_configurable_and_checked_before_decoding(tmp_path, monkeypatch):
    assert DEFAULT_MAX_PIXELS == 40_000_000
    small = ImageStore(tmp_path, max_pixels=64 * 64)
    assert small.check(png_bytes(size=64), "image/png") == ".png"
    with pytest.raises(ImageTooLarge, match="65x65"):
        small.check(png_bytes(size=65), "image/png")

    def no_decoding(*_args, **_kwargs):
        raise AssertionError("decoded an image that its header already refused")

    monkeypatch.setattr("edge_service.image_store.decode_fully", no_decoding)
    with pytest.raises(ImageTooLarge):
        check_image(png_declaring(25000, 25000), "image/png", DEFAULT_MAX_PIXELS)


def test_a_header_that_lies_about_its_data_is_undecodable():
    with pytest.raises(UndecodableImage, match="PNG"):
        check_image(png_declaring(100, 100, 8, zlib.compress(b"\0" * 10)), "image/png", DEFAULT_MAX_PIXELS)
    with pytest.raises(UndecodableImage, match="PNG"):
        check_image(png_bytes()[:-40], "image/png", DEFAULT_MAX_PIXELS)
    with pytest.raises(UndecodableImage, match="JPEG"):  # a PNG sent as JPEG
        check_image(png_bytes(), "image/jpeg", DEFAULT_MAX_PIXELS)
