"""Offline docs (issue 9 item 8): /docs and /redoc load their scripts and styles from the service itself, and
render the API's operations in real headless Chromium with every request off localhost refused."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest
from service_support import RunningServer, chromium_browser

from edge_service.app import ServiceSettings, create_app


@pytest.fixture
def server(tmp_path):
    app = create_app(ServiceSettings(database_url=f"sqlite:///{tmp_path / 'r.db'}", image_dir=tmp_path / "img"))
    with RunningServer(app) as running:
        yield running


@pytest.fixture
def page():
    with chromium_browser() as browser:
        context = browser.new_context()
        context.offline_refused = []

        def only_localhost(route):
            if urlparse(route.request.url).hostname in ("127.0.0.1", "localhost"):
                route.continue_()
            else:
                context.offline_refused.append(route.request.url)
                route.abort("internetdisconnected")

        context.route("**/*", only_localhost)
        yield context.new_page()


def test_docs_pages_name_only_local_assets(server):
    import httpx

    for path in ("/docs", "/redoc"):
        html = httpx.get(server.url + path, timeout=10).text
        assert "cdn.jsdelivr.net" not in html and "fonts.googleapis" not in html, path
        assert "/docs-assets/" in html
    assert httpx.get(server.url + "/docs-assets/swagger-ui-bundle.js", timeout=10).status_code == 200
    assert httpx.get(server.url + "/docs-assets/redoc.standalone.js", timeout=10).status_code == 200


def test_swagger_ui_renders_the_operations_offline(server, page):
    page.goto(server.url + "/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=20000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert any("/api/v1/results" in p for p in paths), paths
    assert page.context.offline_refused == []


def test_redoc_renders_the_operations_offline(server, page):
    page.goto(server.url + "/redoc")
    page.wait_for_function("document.body.innerText.includes('/api/v1/results/{inspection_id}/review')",
                           timeout=20000)
    assert page.locator("h2").count() > 3  # one per operation
    # ReDoc's bundle always tries its vendor's "powered by" logo and removes the image when it fails
    assert set(page.context.offline_refused) <= {"https://cdn.redoc.ly/redoc/logo-mini.svg"}
