"""A few lines of CSS added to optuna-dashboard's page so that long values wrap instead of widening the page.

optuna-dashboard shows each user attribute on one unbreakable line (`white-space: nowrap`), so a trial's `cell`
attribute (its spec as one JSON line) made a trial page twice as wide as the window; a long line in a note's code
block did the same. The rules below let such text wrap inside the page; nothing else about the page changes.
"""
from __future__ import annotations

from typing import Callable, Iterable

PAGE_STYLE = b"""<style id="attnas-page-style">
main p.MuiTypography-body1 { white-space: normal; overflow-wrap: anywhere; }
main pre, main code { white-space: pre-wrap; overflow-wrap: anywhere; }
main img { max-width: 100%; height: auto; }
</style>"""


def with_page_style(app: Callable) -> Callable:
    """The WSGI app `app` with `PAGE_STYLE` added to the head of every HTML page it serves."""

    def styled(environ: dict, start_response: Callable) -> Iterable[bytes]:
        captured: dict = {}

        def capture(status: str, headers: list, exc_info=None):
            captured.update(status=status, headers=headers, exc_info=exc_info)
            return lambda data: captured.setdefault("written", []).append(data)

        body = app(environ, capture)
        headers = captured["headers"]
        html = any(k.lower() == "content-type" and v.startswith("text/html") for k, v in headers)
        encoded = any(k.lower() == "content-encoding" for k, _ in headers)
        if not html or encoded:
            write = start_response(captured["status"], headers, captured["exc_info"])
            for data in captured.get("written", []):
                write(data)
            return body
        try:
            page = b"".join(captured.get("written", [])) + b"".join(body)
        finally:
            if hasattr(body, "close"):
                body.close()
        page = page.replace(b"</head>", PAGE_STYLE + b"</head>", 1)
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        start_response(captured["status"], headers + [("Content-Length", str(len(page)))], captured["exc_info"])
        return [page]

    return styled
