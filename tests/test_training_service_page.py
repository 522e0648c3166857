"""The training page in Debian's headless Chromium: pick a folder of good images (zipped by the page) and a
folder of labelled defects, start, watch the progress, read the report, publish; the model is then listed
as a new version on the models page. A bad folder shows the service's message naming the file. No request
leaves localhost."""

from __future__ import annotations

import shutil

import httpx
import qa_support
import training_support as ts
from qa_support import Page
from service_support import STATION, make_result

qa_server, chromium = qa_support.qa_server, qa_support.chromium  # fixtures


def _folders(tmp_path):
    line = ts.small_line(tmp_path / "data")
    good = tmp_path / "pick" / "good-images"
    good.mkdir(parents=True)
    for p in sorted((line / "train" / "good").glob("*.png")):
        shutil.copy(p, good / p.name)
    (good / ".DS_Store").write_bytes(b"junk")  # hidden files are left out
    defects = tmp_path / "pick" / "labelled"
    for name, data in ts.defect_members(line).items():
        (defects / name).parent.mkdir(parents=True, exist_ok=True)
        (defects / name).write_bytes(data)
    bad = tmp_path / "pick" / "bad"
    shutil.copytree(good, bad)
    (bad / "readme.txt").write_text("not an image")
    return good, defects, bad


def test_train_from_a_folder_and_publish(qa_server, chromium, tmp_path):
    good, defects, bad = _folders(tmp_path)
    p = Page(chromium, qa_server, "qa", "/qa/train", tmp_path)
    page = p.page
    page.wait_for_function("document.body.dataset.ready === '1'")
    page.fill("#name", "flange-browser")
    page.fill("#version", "3")
    page.select_option("#preset", "fast")
    page.fill("#target", "5")
    page.set_input_files("#good-folder", str(bad))
    page.click("#start")
    page.wait_for_function("document.getElementById('error').textContent.startsWith('Not started')")
    assert "readme.txt" in page.text_content("#error") and "not an image" in page.text_content("#error")
    page.set_input_files("#good-folder", str(good))
    page.set_input_files("#defects-folder", str(defects))
    page.click("#start")
    page.wait_for_function("['running', 'succeeded'].includes(document.body.dataset.jobState)")
    assert "17 good images for the model, 3 held out" in page.text_content("#job-summary")
    page.wait_for_function("document.body.dataset.jobState === 'succeeded'", timeout=240_000)
    assert page.eval_on_selector("#progress", "e => e.value") == 1
    report = page.text_content("#report")
    assert "threshold" in report and "image AUROC" in report and "pixel AUROC" in report, report
    assert "crack" in page.text_content("#per-kind")
    page.click("#publish")
    page.wait_for_function("document.getElementById('publish-message').textContent.startsWith('Published')")
    assert "flange-browser 3" in page.text_content("#publish-message")
    p.finish("trained-and-published")
    models = httpx.get(f"{qa_server.url}/api/v1/models", headers=qa_server.h("qa")).json()
    assert [(m["name"], m["version"], m["uploaded_by"]) for m in models] == [("flange-browser", "3", "qa-anna")]
    page.click("nav a[href='/qa/models']")  # the new version is on the models page, ready to be assigned
    page.wait_for_function("document.getElementById('models').textContent.includes('flange-browser')")
    p.finish("published-on-the-models-page")
    operator = Page(chromium, qa_server, "operator", "/qa/train", tmp_path)
    operator.page.wait_for_function("document.body.dataset.ready === '1'")
    assert operator.page.is_visible("#readonly") and operator.page.is_disabled("#start")
    assert operator.page.is_hidden("#publish")  # the last job is shown, read only
    operator.finish("operator-read-only")


def test_train_from_a_stations_good_results(qa_server, chromium, tmp_path):
    line = ts.small_line(tmp_path / "data")
    goods = sorted((line / "train" / "good").glob("*.png"))[:12]
    rows = [make_result(station=STATION, verdict="PASS", score=0.2) for _ in goods]
    rows.append(make_result(station=STATION, verdict="PASS", score=0.1))  # no image kept: not offered
    qa_server.post(rows)
    for row, path in zip(rows, goods, strict=False):
        qa_server.put_image(row["inspection_id"], "original", path.read_bytes())
    p = Page(chromium, qa_server, "qa", "/qa/train", tmp_path)
    page = p.page
    page.wait_for_function("document.body.dataset.ready === '1'")
    page.fill("#name", "from-results")
    page.select_option("#preset", "fast")
    page.check("input[name=source][value=results]")
    page.select_option("#station", STATION)
    page.wait_for_function("document.getElementById('results-count').textContent.startsWith('12 good results')")
    page.click("#start")
    page.wait_for_function("document.body.dataset.jobState === 'succeeded'", timeout=240_000)
    assert "10 good images for the model, 2 held out" in page.text_content("#job-summary")
    assert "threshold" in page.text_content("#report") and page.is_visible("#publish")
    p.finish("trained-from-results")
