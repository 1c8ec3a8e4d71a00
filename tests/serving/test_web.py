"""The page, the API docs and the page's JSON routes, through the real Lambda handler (proxy events)."""

from __future__ import annotations

import json
import re

import pytest

from recsys import artifacts
from recsys.aws import client
from recsys.serving.http_server import LocalContext, proxy_event


@pytest.fixture()
def raw_call(service, monkeypatch):
    """Invoke the real Lambda handler; returns the whole proxy result."""
    import lambdas.api.handler as handler_module
    from recsys.serving.api import create_app

    monkeypatch.setattr(handler_module, "app", create_app(service, handler_module.metrics))

    def invoke(method: str, path: str, query: str = "", stage_path: str | None = None) -> dict:
        event = proxy_event(method, path, query, {"Accept": "*/*"})
        if stage_path is not None:  # as API Gateway sends it: the stage in front of the route's path
            event["requestContext"]["path"] = stage_path
        return handler_module.handler(event, LocalContext())

    return invoke


def _json(result: dict) -> dict:
    return json.loads(result["body"])


def _headers(result: dict) -> dict[str, str]:
    """Response headers as the local server sends them (single and multi-value ones merged)."""
    headers = {k.lower(): v for k, v in (result.get("headers") or {}).items()}
    for key, values in (result.get("multiValueHeaders") or {}).items():
        headers[key.lower()] = ", ".join(values)
    return headers


def test_page_is_html_with_its_base_and_no_secret(raw_call):
    result = raw_call("GET", "/")
    assert result["statusCode"] == 200
    headers = _headers(result)
    assert headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in headers["content-security-policy"]
    body = result["body"]
    assert '<base href="/">' in body
    assert 'src="static/app.js"' in body and 'href="docs"' in body
    assert "x-api-key" not in body.lower().replace("<code>x-api-key</code>", "")  # explained, never embedded
    behind_gateway = raw_call("GET", "/", stage_path="/dev/")
    assert '<base href="/dev/">' in behind_gateway["body"]


def test_static_files_of_the_page_and_of_swagger_ui(raw_call):
    js = raw_call("GET", "/static/app.js")
    assert js["statusCode"] == 200 and _headers(js)["content-type"].startswith("text/javascript")
    assert "recommendations/" in js["body"] and "interactions" in js["body"]
    bundle = raw_call("GET", "/static/swagger-ui-bundle.js")
    assert bundle["statusCode"] == 200 and len(bundle["body"]) > 500_000
    assert "max-age" in _headers(bundle)["cache-control"]
    css = raw_call("GET", "/static/swagger-ui.css")
    assert _headers(css)["content-type"].startswith("text/css")
    for name in ("nope.js", "..%2Fweb.py", "index.j2"):
        missing = raw_call("GET", f"/static/{name}")
        assert missing["statusCode"] == 404, name
        assert set(_json(missing)) == {"error"}


def test_docs_work_offline(raw_call):
    result = raw_call("GET", "/docs")
    assert result["statusCode"] == 200
    body = result["body"]
    assert 'src="static/swagger-ui-bundle.js"' in body and 'href="static/swagger-ui.css"' in body
    assert not re.search(r"(src|href)=\"(https?:)?//", body), "the docs page must not load anything remote"
    docs_js = raw_call("GET", "/static/docs.js")["body"]
    assert "openapi.json" in docs_js and "http" not in docs_js.replace("request.headers", "")


def test_openapi_documents_the_page_routes_and_leaves_out_the_files(raw_call):
    result = raw_call("GET", "/openapi.json")
    assert result["statusCode"] == 200
    spec = _json(result)
    assert {"/model", "/model/report", "/catalog", "/recommendations/{user_id}"} <= set(spec["paths"])
    assert not {"/", "/docs", "/static/{name}", "/openapi.json"} & set(spec["paths"])
    catalog = spec["paths"]["/catalog"]["get"]
    assert {p["name"] for p in catalog["parameters"]} == {"q", "category", "limit", "offset"}
    assert "CatalogPage" in json.dumps(catalog["responses"]["200"])


def test_model_route(raw_call, tiny_world):
    result = raw_call("GET", "/model")
    assert result["statusCode"] == 200, result["body"]
    body = _json(result)
    assert body["version"] == tiny_world.version and body["status"] == "production"
    assert body["serving"]["videos"] == len(tiny_world.video_ids)
    assert body["serving"]["ranker"] is True
    assert set(body["serving"]["categories"]) == set(tiny_world.category_of.values())
    assert body["example_users"] and set(body["example_users"]) <= set(tiny_world.user_ids)


def test_evaluation_report_route(raw_call, local_stack, tiny_world):
    key = artifacts.evaluation_key(tiny_world.version, "report.html")
    s3 = client("s3", local_stack)
    bucket = local_stack.names.bucket("artifacts")
    s3.delete_object(Bucket=bucket, Key=key)
    missing = raw_call("GET", "/model/report")
    assert missing["statusCode"] == 404
    assert "no evaluation report" in _json(missing)["error"]["message"]
    s3.put_object(Bucket=bucket, Key=key, Body=b"<html><body>gates passed</body></html>")
    try:
        found = raw_call("GET", "/model/report")
        assert found["statusCode"] == 200
        assert _headers(found)["content-type"].startswith("text/html")
        assert "gates passed" in found["body"]
        assert raw_call("GET", "/model/report", "version=v-unknown")["statusCode"] == 404
        assert raw_call("GET", "/model/report", "version=bad%20version")["statusCode"] == 422
    finally:
        s3.delete_object(Bucket=bucket, Key=key)


def test_catalog_browse_search_and_pages(raw_call, tiny_world):
    first = _json(raw_call("GET", "/catalog", "limit=5"))
    assert first["total"] == len(tiny_world.video_ids) and len(first["items"]) == 5
    assert [v["popularity_rank"] for v in first["items"]] == [1, 2, 3, 4, 5]
    second = _json(raw_call("GET", "/catalog", "limit=5&offset=5"))
    assert second["items"][0]["popularity_rank"] == 6
    music = _json(raw_call("GET", "/catalog", "category=music&limit=100"))
    expected = [v for v, c in tiny_world.category_of.items() if c == "music"]
    assert music["total"] == len(expected) and {v["video_id"] for v in music["items"]} == set(expected)
    one = tiny_world.video_ids[7]
    found = _json(raw_call("GET", "/catalog", f"q={one}"))
    assert [v["video_id"] for v in found["items"]] == [one]
    by_text = _json(raw_call("GET", "/catalog", "q=SPORT&limit=100"))
    assert {v["category"] for v in by_text["items"]} == {"sports"}
    assert _json(raw_call("GET", "/catalog", "q=zzz"))["total"] == 0
    bad = raw_call("GET", "/catalog", "limit=0")
    assert bad["statusCode"] == 422 and _json(bad)["error"]["code"] == "validation"


def test_wrong_method_on_a_page_route_is_405(raw_call):
    result = raw_call("POST", "/model")
    assert result["statusCode"] == 405
    assert _headers(result)["allow"] == "GET"
