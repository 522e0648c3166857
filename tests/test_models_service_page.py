"""The models page in headless Chromium (Debian's): a bad file shows a clear error with nothing stored;
upload two versions, assign one to a station, assign the other with a threshold and a shadow candidate, see
the assignment and the previous one, roll back and see the first version assigned again; an operator sees
the page but cannot change anything. Screenshots under the test's output; no request leaves localhost."""

from __future__ import annotations

import httpx
import models_support as ms
import qa_support
from qa_support import Page
from service_support import STATION

qa_server, chromium = qa_support.qa_server, qa_support.chromium  # fixtures


def _wait_text(page, selector: str, text: str) -> None:
    page.wait_for_function("([s, t]) => (document.querySelector(s).textContent || '').includes(t)",
                           arg=[selector, text], timeout=15000)


def _models(server) -> list:
    return httpx.get(f"{server.url}/api/v1/models", headers=server.h("qa")).json()


def test_upload_assign_and_roll_back_in_the_page(qa_server, chromium, tmp_path):
    files = {"bad": tmp_path / "broken.onnx", "v2": tmp_path / "flange_v2.onnx", "foreign": tmp_path / "other.onnx"}
    files["bad"].write_bytes(ms.truncated())
    files["v2"].write_bytes(ms.variant("2"))
    files["foreign"].write_bytes(ms.foreign())
    p = Page(chromium, qa_server, "qa", f"/qa/models#station={STATION}", tmp_path)
    page = p.page
    page.wait_for_function(f"(document.body.dataset.loaded || '').startsWith('{STATION}|')")
    for name, why in (("bad", "not an ONNX model"), ("foreign", "not one of ours")):
        page.set_input_files("#model-file", str(files[name]))
        page.click("#upload")
        _wait_text(page, "#upload-message", f"Not uploaded: {files[name].name}")
        assert why in page.text_content("#upload-message")
    p.finish("models-bad-file")
    assert _models(qa_server) == []  # nothing stored
    assert not qa_server.app.state.settings.models_path.exists() or not any(
        qa_server.app.state.settings.models_path.iterdir())
    for path, version in ((ms.FLANGE, "1"), (files["v2"], "2")):
        page.set_input_files("#model-file", str(path))
        page.click("#upload")
        _wait_text(page, "#upload-message", f"Uploaded: demo_flange version {version}")
    page.wait_for_selector("#models tr[data-model='demo_flange/2']")
    threshold = f"{ms.card_of(ms.ours())['threshold']:.4f}"  # the card's threshold, as the model file has it
    assert threshold in page.text_content("#models tr[data-model='demo_flange/1']")
    # assign version 1 (index 1: newest first), then version 2 with a threshold and version 1 as its shadow
    page.select_option("#a-model", "1")
    page.fill("#a-reason", "first model on the line")
    page.click("#assign")
    _wait_text(page, "#assign-message", "Assigned: demo_flange 1")
    _wait_text(page, "#current-model", "demo_flange 1")
    page.fill("#a-threshold", "abc")
    page.select_option("#a-model", "0")
    page.fill("#a-reason", "typo")
    page.click("#assign")
    _wait_text(page, "#assign-message", "Not assigned")
    assert "threshold" in page.text_content("#assign-message")
    page.fill("#a-threshold", "0.72")
    page.select_option("#a-shadow", "1")
    page.fill("#a-reason", "retrained on the new batch")
    page.click("#assign")
    _wait_text(page, "#current-model", "demo_flange 2")
    assert page.text_content("#current-threshold") == "0.7200"
    assert page.text_content("#current-shadow") == "demo_flange 1"
    _wait_text(page, "#previous-model", "demo_flange 1")
    assert "qa-anna" in page.text_content("#current-by")
    p.finish("models-assigned")
    polled = httpx.get(f"{qa_server.url}/api/v1/stations/{STATION}/assignment", headers=qa_server.h("edge")).json()
    assert (polled["model"]["version"], polled["threshold"], polled["shadow"]["version"]) == ("2", 0.72, "1")
    page.fill("#rollback-reason", "candidate rejects good parts")
    page.click("#rollback")
    _wait_text(page, "#rollback-message", "Rolled back: demo_flange 1")
    _wait_text(page, "#current-model", "demo_flange 1")
    assert page.text_content("#current-threshold").startswith("the model's own")
    assert page.text_content("#previous-model").startswith("none")
    assert page.is_disabled("#rollback")
    history = page.locator("#history tr").all_text_contents()
    assert len(history) == 4 and "model_rollback" in history[1] and "candidate rejects good parts" in history[1]
    p.finish("models-rolled-back")
    polled = httpx.get(f"{qa_server.url}/api/v1/stations/{STATION}/assignment", headers=qa_server.h("edge")).json()
    assert polled["model"]["version"] == "1" and polled["threshold"] is None and polled["shadow"] is None


def test_operators_see_models_but_cannot_change_them(qa_server, chromium, tmp_path):
    res = httpx.post(f"{qa_server.url}/api/v1/models", content=ms.ours(),
                     headers={**qa_server.h("qa"), "Content-Type": "application/octet-stream"})
    assert res.status_code == 201, res.text
    p = Page(chromium, qa_server, "operator", f"/qa/models#station={STATION}", tmp_path)
    page = p.page
    page.wait_for_selector("#models tr[data-model='demo_flange/1']")
    assert page.is_visible("#readonly") and "Read only" in page.text_content("#readonly")
    for button in ("#upload", "#assign", "#rollback"):
        assert page.is_disabled(button), button
    p.finish("models-read-only")
    refused = httpx.put(f"{qa_server.url}/api/v1/stations/{STATION}/assignment", headers=qa_server.h("operator"),
                        json={"model_name": "demo_flange", "model_version": "1", "reason": "x"})
    assert refused.status_code == 403


def test_shadow_comparison_table(qa_server, chromium, tmp_path):
    from test_models_service import post_shadow_results

    post_shadow_results(qa_server.post)
    p = Page(chromium, qa_server, "qa", f"/qa/models#station={STATION}", tmp_path)
    page = p.page
    page.wait_for_selector("#shadow tr.pair")
    cells = page.locator("#shadow tr.pair td").all_text_contents()
    assert cells == ["demo 1", "demo_flange 2", "8", "62.5 %", "3", "2", "1", "2"]
    assert page.locator("#shadow tr.disagreement").count() == 3
    assert page.locator("#shadow tr.disagreement a").first.text_content() == "S-7"
    p.finish("models-shadow")


def test_assign_to_every_station_under_a_prefix_in_the_page(qa_server, chromium, tmp_path):
    from service_support import OTHER

    res = httpx.post(f"{qa_server.url}/api/v1/models", content=ms.ours(),
                     headers={**qa_server.h("qa"), "Content-Type": "application/octet-stream"})
    assert res.status_code == 201, res.text
    p = Page(chromium, qa_server, "qa", f"/qa/models#station={STATION}", tmp_path)
    page = p.page
    page.wait_for_selector("#models tr[data-model='demo_flange/1']")
    options = page.locator("#a-scope option").all_text_contents()
    assert options[0] == "this station only" and "all 2 stations under plant1/area1" in options
    page.select_option("#a-scope", "plant1/area1")
    page.fill("#a-reason", "whole area")
    page.click("#assign")
    _wait_text(page, "#assign-message", "Assigned: demo_flange 1 on 2 stations under plant1/area1")
    _wait_text(page, "#current-model", "demo_flange 1")
    page.click("#rollback")  # no reason given: refused, named
    _wait_text(page, "#rollback-message", "Not rolled back")
    assert "reason" in page.text_content("#rollback-message")
    page.fill("#rollback-reason", "undo")
    page.click("#rollback")  # neither station has an earlier assignment: 409 named in the page
    _wait_text(page, "#rollback-message", "no earlier assignment")
    for station in (STATION, OTHER):
        polled = httpx.get(f"{qa_server.url}/api/v1/stations/{station}/assignment", headers=qa_server.h("qa")).json()
        assert polled["model"]["version"] == "1"


def test_a_model_assigned_in_the_page_judges_the_line_and_rolls_back(qa_server, chromium, tmp_path):
    """End to end: the simulated line polls the service; a version assigned in the page (with the old one as
    shadow) judges the next results, the shadow table fills from them, and the rollback in the page brings
    the first version back; every result names the model that judged it."""
    import itertools

    from assignment_support import assignment_config
    from line_support import wait_for

    from inspection.line.config import load_config
    from inspection.line.runner import LineRunner

    for data in (ms.ours(), ms.variant("2")):
        res = httpx.post(f"{qa_server.url}/api/v1/models", content=data,
                         headers={**qa_server.h("qa"), "Content-Type": "application/octet-stream"})
        assert res.status_code == 201, res.text
    (tmp_path / "line").mkdir()
    cfg = load_config(assignment_config(tmp_path / "line", qa_server.url, qa_server.tokens["edge"],
                                        'kind = "simulated"\nrate = 10\nqueue_size = 32\ndefect_rate = 0.3'))
    runner = LineRunner(cfg, flush_timeout=60)
    runner.start()
    try:
        p = Page(chromium, qa_server, "qa", f"/qa/models#station={STATION}", tmp_path)
        page = p.page
        page.wait_for_selector("#models tr[data-model='demo_flange/2']")
        page.select_option("#a-model", "1")
        page.fill("#a-reason", "the model the line runs")
        page.click("#assign")
        _wait_text(page, "#current-model", "demo_flange 1")
        wait_for(lambda: runner.counters.passed + runner.counters.rejected_parts >= 5, 60, "results of version 1")
        page.select_option("#a-model", "0")
        page.select_option("#a-shadow", "1")
        page.fill("#a-reason", "promote version 2, keep 1 beside it")
        page.click("#assign")
        _wait_text(page, "#current-model", "demo_flange 2")
        wait_for(lambda: runner.running_model().info.version == "2", 60, "the line to run version 2")
        page.wait_for_timeout(1500)  # a few parts judged by version 2 with version 1 in shadow
        page.reload()
        page.wait_for_selector("#shadow tr.pair")
        cells = page.locator("#shadow tr.pair td").all_text_contents()
        assert cells[:2] == ["demo_flange 2", "demo_flange 1"] and int(cells[2]) >= 1
        p.finish("models-line-shadow")
        page.fill("#rollback-reason", "back to version 1")
        page.click("#rollback")
        _wait_text(page, "#rollback-message", "Rolled back: demo_flange 1")
        wait_for(lambda: runner.running_model().info.version == "1", 60, "the line back on version 1")
        page.wait_for_timeout(1000)
    finally:
        runner.stop()
    items, cursor = [], None
    while True:
        params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        body = httpx.get(f"{qa_server.url}/api/v1/results", params=params, headers=qa_server.h("operator")).json()
        items += body["items"]
        cursor = body["next_cursor"]
        if not cursor:
            break
    items.sort(key=lambda r: int(r["part_id"].rsplit("-", 1)[1]))
    shas = {m["version"]: m["sha256"] for m in _models(qa_server)}
    assert all(r["model"]["sha256"] == shas[r["model"]["version"]] for r in items)
    assert [v for v, _ in itertools.groupby(r["model"]["version"] for r in items)] == ["1", "2", "1"]
    assert all((r.get("shadow") or {}).get("model", {}).get("version") == "1"
               for r in items if r["model"]["version"] == "2")
