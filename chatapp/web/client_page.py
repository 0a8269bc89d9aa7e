"""The web client: static files served at `/` by the same process, with a strict CSP.

The page is plain ES modules and CSS under `static/`; nothing is built. It
speaks only the public protocol (HTTP under `/api/v1` and the WebSocket), so
the server treats it as any other client. API answers keep their own headers;
only the client's files get the page's security headers.

The service worker is served at `/sw.js`, not under `/static/`, because a
worker controls only the paths below its own: at the root it can serve the
page offline. Its text starts with the list of the page's files and a digest
of them, so each release has a worker of its own.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from pathlib import Path

from aiohttp import web

from chatapp.config import Settings
from chatapp.services import SERVICES

STATIC_DIR = Path(__file__).parent / "static"
WEB_SETTINGS = web.AppKey("web_settings", Settings)
INDEX = STATIC_DIR / "index.html"
ADMIN_PAGE = STATIC_DIR / "admin.html"
STATIC_PREFIX = "/static/"
WORKER = STATIC_DIR / "sw.js"
WORKER_PATH = "/sw.js"
_PLAIN_HOST = re.compile(r"[A-Za-z0-9.\-]+(:\d{1,5})?|\[[0-9A-Fa-f:.]+\](:\d{1,5})?")

# Explicit, so a machine's own mime.types cannot turn a module into text/plain
# (browsers refuse to run module scripts served with a non-script type).
_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
}


def add_web_client(app: web.Application, settings: Settings) -> None:
    """Serve the page at `/`, the admin page at `/admin` and their files at `/static/...`."""
    app[WEB_SETTINGS] = settings
    app.router.add_get("/", _index)
    app.router.add_get(WORKER_PATH, _service_worker)
    app.router.add_get("/admin", _admin_page)
    app.router.add_get(STATIC_PREFIX + "{path:.+}", _static_file)


def content_security_policy(ws_origins: list[str]) -> str:
    """No inline script or style, no plugins, no framing; sockets only to this server."""
    connect = " ".join(["'self'", *dict.fromkeys(ws_origins)])
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            f"connect-src {connect}",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


async def _index(request: web.Request) -> web.StreamResponse:
    return _file_response(request, INDEX, cache="no-cache", sockets=await _socket_urls(request))


async def _admin_page(request: web.Request) -> web.StreamResponse:
    # Served to anyone, like `/`: the admin API, not the page, refuses members.
    return _file_response(request, ADMIN_PAGE, cache="no-cache", sockets=[])


async def _static_file(request: web.Request) -> web.StreamResponse:
    relative = request.match_info["path"]
    path = (STATIC_DIR / relative).resolve()
    if not path.is_relative_to(STATIC_DIR.resolve()) or not path.is_file():
        raise web.HTTPNotFound(reason=f"no file {relative}")
    if path.suffix not in _CONTENT_TYPES:
        raise web.HTTPNotFound(reason=f"no file {relative}")
    # Revalidated each time: a server upgrade must never leave a page mixing
    # old and new modules. ETags keep the revalidation cheap.
    return _file_response(request, path, cache="no-cache", sockets=[])


async def _service_worker(request: web.Request) -> web.StreamResponse:
    body = worker_script()
    response = web.Response(body=body, headers=_security_headers(request, []))
    response.headers["Content-Type"] = _CONTENT_TYPES[".js"]
    # Browsers revalidate a worker at least daily anyway; no-cache makes a
    # release reach every open page at its next load.
    response.headers["Cache-Control"] = "no-cache"
    return response


def shell_files() -> list[Path]:
    """Every file the page may load, the worker itself left out."""
    return sorted(
        path
        for path in STATIC_DIR.rglob("*")
        if path.is_file() and path.suffix in _CONTENT_TYPES and path not in (WORKER, INDEX)
    )


@functools.cache
def worker_script() -> bytes:
    """The worker's text, after the shell's URLs and a digest of their contents.

    Made once per process: browsers ask for it at every page load, and the files it
    digests change only with a release (which restarts the server).
    """
    files = shell_files()
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(STATIC_DIR).as_posix().encode())
        digest.update(path.read_bytes())
    digest.update(WORKER.read_bytes())
    urls = ["/", *(STATIC_PREFIX + path.relative_to(STATIC_DIR).as_posix() for path in files)]
    header = (
        f"const SHELL = {json.dumps(urls)};\n"
        f"const VERSION = {json.dumps(digest.hexdigest()[:16])};\n"
    )
    return header.encode() + WORKER.read_bytes()


async def _socket_urls(request: web.Request) -> list[str]:
    """Where discovery may send the page's socket: in a cluster, every live node's URL.

    Read when the page loads; a node that joins later is reachable after a reload.
    """
    services = request.app.get(SERVICES)
    if services is None:
        return []
    return await services.discovery.ws_urls()


def _file_response(
    request: web.Request, path: Path, *, cache: str, sockets: list[str]
) -> web.FileResponse:
    response = web.FileResponse(path)
    response.headers["Content-Type"] = _CONTENT_TYPES[path.suffix]
    response.headers.update(_security_headers(request, sockets))
    response.headers["Cache-Control"] = cache
    return response


def _security_headers(request: web.Request, sockets: list[str]) -> dict[str, str]:
    settings = request.app[WEB_SETTINGS]
    # The page's own origin (as the browser reached it), the configured public
    # one and those discovery may name: the client connects to whichever the
    # login or discovery answer allows.
    origins = [_origin_of(url) for url in (settings.ws_url, *sockets)]
    # The Host header comes from the client: only a plain host[:port] goes into a header.
    if _PLAIN_HOST.fullmatch(request.host):
        schemes = ("wss",) if request.secure else ("ws", "wss")
        origins += [f"{scheme}://{request.host}" for scheme in schemes]
    return {
        "Content-Security-Policy": content_security_policy(origins),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
    }


def _origin_of(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}".lower()
