"""The part viewer in real headless Chromium: a real model's result with its original and its colour-mapped
heatmap (stored as the `heatmap` image kind), toggled on and off, zoomed, with regions and metadata."""

from __future__ import annotations

import cv2
import httpx
import numpy as np
import qa_support
from qa_support import Page
from service_support import STATION

from inspection.model.runtime import InspectionModel
from inspection.model.shipped import default_model_path
from inspection.results.overlay import heat_colours
from inspection.schema import StationContext

qa_server, chromium = qa_support.qa_server, qa_support.chromium  # fixtures
SAMPLE = qa_support.REPO / "datasets" / "samples" / "flange" / "test" / "crack" / "000.png"


def _png(rgb: np.ndarray) -> bytes:
    return cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()


def _inspected_part(server) -> dict:
    """Inspect a sample with a crack using the shipped model; store the result, its original and heatmap."""
    model = InspectionModel.load(default_model_path())
    image = cv2.cvtColor(cv2.imread(str(SAMPLE)), cv2.COLOR_BGR2RGB)
    found = model.inspect(image)
    record = found.to_result(station=StationContext.from_path(STATION), part_id="CRACK-1").model_dump(mode="json")
    server.post([record])
    heat, _alpha = heat_colours(found.anomaly_map, float(np.percentile(found.anomaly_map, 5)), found.threshold)
    server.put_image(record["inspection_id"], "original", _png(image))
    server.put_image(record["inspection_id"], "heatmap", _png(heat))
    return record


def test_the_heatmap_is_its_own_image_kind(qa_server):
    record = _inspected_part(qa_server)
    detail = httpx.get(f"{qa_server.url}/api/v1/results/{record['inspection_id']}", headers=qa_server.h("qa"))
    assert detail.json()["images"] == ["heatmap", "original"]
    got = httpx.get(f"{qa_server.url}/api/v1/results/{record['inspection_id']}/images/heatmap",
                    headers=qa_server.h("operator"))
    assert got.status_code == 200 and got.headers["content-type"] == "image/png"
    heat = cv2.imdecode(np.frombuffer(got.content, np.uint8), cv2.IMREAD_COLOR)
    assert heat.shape[:2] == (record["image_height"], record["image_width"])
    assert len({tuple(p) for p in heat.reshape(-1, 3)[::97]}) > 20  # colour-mapped, not a flat picture
    bad = httpx.put(f"{qa_server.url}/api/v1/results/{record['inspection_id']}/images/thermal", content=b"x",
                    headers={**qa_server.h("edge"), "Content-Type": "image/png"})
    assert bad.status_code == 422 and "heatmap" in bad.text


def _heat_visible(page) -> bool:
    return page.evaluate("(() => { const h = document.getElementById('heatmap'); return !h.hidden && h.complete"
                         " && h.naturalWidth > 0 && getComputedStyle(h).display !== 'none'; })()")


def test_open_a_part_and_toggle_the_heatmap(qa_server, chromium, tmp_path):
    record = _inspected_part(qa_server)
    rid = record["inspection_id"]
    p = Page(chromium, qa_server, "operator", f"/qa/part#id={rid}", tmp_path)
    page = p.page
    page.wait_for_function(f"document.body.dataset.loaded === '{rid}'")
    page.wait_for_function("document.getElementById('original').naturalWidth > 0")
    assert page.evaluate("document.getElementById('original').naturalWidth") == record["image_width"]
    meta = page.text_content("#meta")
    assert STATION in meta and record["model"]["sha256"] in meta and record["model"]["version"] in meta
    assert f"{record['threshold']:.4f}" in meta and "Inference" in meta
    assert page.locator("#regions rect").count() == len(record["regions"]) >= 1
    assert not _heat_visible(page)
    page.check("#t-heatmap")
    page.wait_for_function("document.getElementById('heatmap').naturalWidth > 0")
    assert _heat_visible(page)
    p.page.screenshot(path=str(tmp_path / "heatmap-on.png"))
    page.keyboard.press("h")  # the key toggles it too
    assert not _heat_visible(page)
    page.uncheck("#t-regions")
    assert page.evaluate("getComputedStyle(document.getElementById('regions')).display") == "none"
    page.uncheck("#t-threshold")
    assert page.evaluate("getComputedStyle(document.getElementById('threshold-line')).display") == "none"
    before = float(page.get_attribute("#stage", "data-scale"))
    page.click("#z-in")
    assert float(page.get_attribute("#stage", "data-scale")) > before
    page.click("#z-one")
    assert page.get_attribute("#stage", "data-scale") == "1.000"
    page.check("#t-heatmap")
    p.finish("part-viewer")


def test_review_from_the_part_viewer(qa_server, chromium, tmp_path):
    record = _inspected_part(qa_server)
    httpx.put(f"{qa_server.url}/api/v1/qa/defect-classes", headers=qa_server.h("qa"),
              json={"station_prefix": "plant1", "names": ["crack", "dent"]}).raise_for_status()
    rid = record["inspection_id"]
    viewer = Page(chromium, qa_server, "operator", f"/qa/part#id={rid}", tmp_path)
    viewer.page.wait_for_function(f"document.body.dataset.loaded === '{rid}'")
    assert viewer.page.is_visible("#readonly") and viewer.page.is_disabled("#do-defect")
    viewer.finish("part-viewer-read-only")
    p = Page(chromium, qa_server, "qa", f"/qa/part#id={rid}", tmp_path)
    page = p.page
    page.wait_for_function(f"document.body.dataset.loaded === '{rid}'")
    page.select_option("#class", "crack")
    page.fill("#comment", "crack at 9 o'clock")
    page.keyboard.press("Escape")
    page.keyboard.press("d")
    page.wait_for_function("document.getElementById('history').textContent.includes('qa-anna')")
    assert "crack at 9 o'clock" in page.text_content("#history")
    assert "confirmed defect · crack" in page.text_content("#meta")
    p.finish("part-viewer-reviewed")
    got = httpx.get(f"{qa_server.url}/api/v1/results/{rid}", headers=qa_server.h("qa")).json()
    assert [(r["decision"], r["defect_class"], r["reviewer"]) for r in got["reviews"]] == [
        ("confirmed_defect", "crack", "qa-anna")]
