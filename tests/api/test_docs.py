"""The documentation pages work without the internet: every script, style, icon and document they load is
served by the API itself."""

from __future__ import annotations

import re

import httpx
import pytest

# Whatever a page loads: src= and href= attributes, Swagger UI's `url:` and ReDoc's spec-url.
_REFERENCES = re.compile(r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']|\burl:\s*["']([^"']+)["']""")


def references(page: str) -> list[str]:
    return [a or b for a, b in _REFERENCES.findall(page)]


@pytest.mark.parametrize(("path", "loads"), [("/docs", "SwaggerUIBundle"), ("/redoc", "Redoc")])
def test_a_docs_page_loads_only_same_origin_urls_that_answer(
    api: httpx.Client, path: str, loads: str
) -> None:
    page = api.get(path)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    urls = references(page.text)
    assert "/openapi.json" in urls
    assert any(url.endswith(".js") for url in urls), urls
    # No other origin: not a CDN, not Google Fonts, not Swagger's online validator.
    assert not re.search(r"(?:https?:)?//[\w.-]+", page.text), page.text
    for url in urls:
        assert url.startswith("/"), url
        assert not url.startswith("//"), url
        answer = api.get(url)
        assert answer.status_code == 200, url
        assert answer.content, url
    script = next(url for url in urls if url.endswith(".js"))
    assert loads in api.get(script).text
    assert '"validatorUrl": null' in page.text or path == "/redoc"


def test_the_swagger_oauth2_redirect_page_is_served(api: httpx.Client) -> None:
    assert api.get("/docs/oauth2-redirect").status_code == 200
