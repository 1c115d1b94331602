"""/docs renders from local assets only: the page and everything it loads."""

from __future__ import annotations

import re


async def test_the_docs_page_and_every_asset_it_references_load(client):
    resp = await client.get("/docs")
    assert resp.status == 200
    assert resp.content_type == "text/html"
    assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
    page = await resp.text()
    refs = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert len(refs) >= 4
    for ref in refs:
        assert ref.startswith("/"), f"{ref} is not served by us: the page must work offline"
        asset = await client.get(ref)
        assert asset.status == 200, ref
        assert len(await asset.read()) > 0
    types = {ref.rsplit(".", 1)[-1]: ref for ref in refs}
    assert {"css", "js", "png"} <= set(types)
    js = await client.get(types["js"])
    assert js.content_type in ("application/javascript", "text/javascript")


async def test_the_page_starts_swagger_ui_on_our_document(client):
    init = await (await client.get("/docs/init.js")).text()
    assert 'url: "/openapi.json"' in init
    assert "SwaggerUIBundle(" in init


async def test_nothing_else_is_served_from_the_docs_folder(client):
    for name in ("index.html", "..%2F..%2Fsettings.py", "swagger-ui-bundle.js.map", "x"):
        resp = await client.get(f"/docs/{name}")
        assert resp.status == 404
        assert resp.content_type == "application/problem+json"
