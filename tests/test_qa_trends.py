"""Trends: the numbers (yield per hour, Pareto from reviews, score histogram, false alarms and escapes per
model version) on SQLite and PostgreSQL, CSV export, and the dashboard rendered in headless Chromium."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import qa_support
from qa_support import Page, at
from service_support import OTHER, make_result

qa_server, chromium = qa_support.qa_server, qa_support.chromium  # fixtures
T = "/api/v1/qa/trends"


def _mid_hour(hours_ago: int, minute: int) -> datetime:
    """Within the hour that began ``hours_ago`` hours before this one (never straddling an hour boundary)."""
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours_ago)
    return start + timedelta(minutes=20 + minute)


def _seed(post, review) -> dict[str, list[str]]:
    """Hour 3 ago: 3 PASS, 1 FAIL (v1). Hour 1 ago: 2 PASS, 2 FAIL (v2). Another station: 1 FAIL (ignored).
    Reviews: both v2 FAILs confirmed (crack, dent), the v1 FAIL a false alarm, one v2 PASS an escape (crack)."""
    old = [make_result(verdict=v, score=s, at=_mid_hour(3, i), model_version="1")
           for i, (v, s) in enumerate([("PASS", 0.1), ("PASS", 0.2), ("PASS", 0.3), ("FAIL", 0.6)])]
    new = [make_result(verdict=v, score=s, at=_mid_hour(1, i), model_version="2")
           for i, (v, s) in enumerate([("PASS", 0.2), ("PASS", 0.4), ("FAIL", 0.9), ("FAIL", 1.1)])]
    # regions on the 256 x 256 images: two centred in the top-left cell, one in the bottom-right
    region = {"width": 10, "height": 10, "area_px": 100, "peak_score": 0.9}
    new[2]["regions"] = [{"x": 5, "y": 5, **region}, {"x": 240, "y": 240, **region}]
    new[3]["regions"] = [{"x": 10, "y": 12, **region}]
    assert post([*old, *new, make_result(station=OTHER, verdict="FAIL", at=at(1))]).status_code == 200
    review([new[2]["inspection_id"]], "confirmed_defect", "crack")
    review([new[3]["inspection_id"]], "confirmed_defect", "dent")
    review([old[3]["inspection_id"]], "false_alarm", None)
    review([new[1]["inspection_id"]], "confirmed_defect", "crack")
    return {"old": [r["inspection_id"] for r in old], "new": [r["inspection_id"] for r in new]}


def _reviewer(client, headers):
    def review(ids, decision, cls):
        res = client.post("/api/v1/qa/reviews", json={"inspection_ids": ids, "decision": decision,
                                                      "defect_class": cls}, headers=headers)
        assert res.status_code == 200, res.text
    return review


def test_trend_numbers(service):
    _seed(service.post, _reviewer(service.client, service.h("qa")))
    t = service.get(T, station="plant1/area1/line1", since=at(6).isoformat()).json()
    assert [(p["total"], p["fail"]) for p in t["series"]] == [(4, 1), (4, 2)]
    assert [p["yield_rate"] for p in t["series"]] == [0.75, 0.5]
    assert [(r["defect_class"], r["count"], r["cumulative_share"]) for r in t["pareto"]] == [
        ("crack", 2, 2 / 3), ("dent", 1, 1.0)]
    bins = t["scores"]
    assert len(bins) == 20 and bins[0]["low"] == 0.1 and abs(bins[-1]["high"] - 1.1) < 1e-9
    assert sum(b["passed"] for b in bins) == 5 and sum(b["failed"] for b in bins) == 3
    assert bins[-1]["failed"] == 1 and bins[0]["passed"] == 1  # the maximum lands in the last bin
    assert t["thresholds"] == [0.5]
    models = {m["model_version"]: m for m in t["models"]}
    assert (models["1"]["false_alarms"], models["1"]["escapes"], models["1"]["confirmed_defects"]) == (1, 0, 0)
    assert (models["2"]["false_alarms"], models["2"]["escapes"], models["2"]["confirmed_defects"]) == (0, 1, 2)
    assert models["2"]["reviewed"] == 3
    assert t["region_grid_size"] == 8
    assert [(c["row"], c["column"], c["regions"]) for c in t["region_grid"]] == [(0, 0, 2), (7, 7, 1)]
    csv_rows = list(csv.reader(io.StringIO(service.get(f"{T}.csv", table="models", station="plant1/area1/line1",
                                                       since=at(6).isoformat()).text)))
    assert csv_rows[0][:3] == ["model_version", "total", "fail"] and [r[0] for r in csv_rows[1:]] == ["1", "2"]
    bad = service.get(T, since=at(1).isoformat(), until=at(2).isoformat())
    assert bad.status_code == 422 and "is not before until" in bad.json()["message"]
    assert service.get(f"{T}.csv", table="nope").status_code == 422


def test_trends_dashboard_renders_with_data(qa_server, chromium, tmp_path):
    _seed(lambda rows: httpx.post(f"{qa_server.url}/api/v1/results", json={"results": rows},
                                  headers=qa_server.h("edge")),
          _reviewer(httpx.Client(base_url=qa_server.url), qa_server.h("qa")))
    p = Page(chromium, qa_server, "operator", "/qa/trends", tmp_path)
    page = p.page
    page.fill("#f-station", "plant1/area1/line1")
    page.click("#apply")
    page.wait_for_function("document.body.dataset.loaded === '8'")
    assert "8 parts, 3 FAIL" in page.text_content("#summary")
    assert page.locator("#c-series polyline[data-series='yield']").count() == 1
    assert page.locator("#c-pareto rect.bar").count() == 2
    assert page.locator("#c-scores line.marker").count() == 1 and "threshold 0.500" in page.text_content("#c-scores")
    assert page.locator("#t-models tr").count() == 3
    assert page.locator("#c-regions rect.cell").count() == 2
    rows = page.locator("#t-pareto tr td:first-child").all_text_contents()
    assert rows == ["crack", "dent"]
    with page.expect_download() as download:
        page.click("button.csv[data-table='pareto']")
    text = Path(download.value.path()).read_text()
    assert text.splitlines() == ["defect_class,count,cumulative_share", "crack,2,0.6666666666666666", "dent,1,1.0"]
    p.finish("trends")


def test_csv_cells_are_never_spreadsheet_formulas():
    from edge_service.qa_models import ParetoRow, Trends
    from edge_service.qa_trends import to_csv

    t = Trends(station=None, since=at(1), until=at(0), bucket="hour", series=[], scores=[], thresholds=[],
               models=[], region_grid_size=8, region_grid=[],
               pareto=[ParetoRow(defect_class="=HYPERLINK(1)", count=2, cumulative_share=1.0)])
    assert to_csv(t, "pareto").splitlines()[1] == "'=HYPERLINK(1),2,1.0"
