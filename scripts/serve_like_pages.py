"""Serve a built site the way GitHub Pages serves a project site, for the browser tests and
``make lighthouse``.

- under the path of ``site_url`` (``/simple-llm/``), nothing at the root;
- text (HTML, CSS, JS, JSON, SVG, XML) gzip-compressed when the browser accepts it;
- a folder without its trailing slash redirected to it (301), a folder served by its index.html;
- a missing address answered with the site's ``404.html`` and status 404.

    python scripts/serve_like_pages.py site/ --port 8100    # then open http://127.0.0.1:8100/simple-llm/
"""

from __future__ import annotations

import argparse
import gzip
import http.server
import mimetypes
import threading
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

HOST = "127.0.0.1"
PREFIX = "/simple-llm/"
COMPRESSED = ("text/", "application/javascript", "application/json", "image/svg+xml", "application/xml")
mimetypes.add_type("application/javascript", ".js")
mimetypes.add_type("image/svg+xml", ".svg")


PAGES_CACHE_CONTROL = "max-age=600"  # what Pages sends


def compress(data: bytes) -> bytes:
    """gzip as the server sends it (level 6, no timestamp: the same bytes every time)."""
    return gzip.compress(data, compresslevel=6, mtime=0)


@lru_cache(maxsize=512)
def _gzipped(path: Path, mtime: float) -> bytes:
    return compress(path.read_bytes())


def transfer_bytes(path: Path) -> int:
    """What Pages sends for a file: gzip-compressed text, other files as they are."""
    kind = mimetypes.guess_type(path.name)[0] or ""
    if kind.startswith(COMPRESSED):
        return len(_gzipped(path, path.stat().st_mtime))
    return path.stat().st_size


class PagesHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    root: Path
    prefix: str
    cache_control = PAGES_CACHE_CONTROL

    def log_message(self, format, *args):
        pass

    def do_HEAD(self):
        self._serve(body=False)

    def do_GET(self):
        self._serve(body=True)

    def _serve(self, body: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        if path == self.prefix.rstrip("/"):
            return self._redirect(self.prefix)
        if not path.startswith(self.prefix):
            return self._missing(body)
        target = (self.root / path[len(self.prefix) :]).resolve()
        if self.root not in (target, *target.parents):
            return self._missing(body)
        if target.is_dir():
            if not path.endswith("/"):
                return self._redirect(path + "/")
            target = target / "index.html"
        if not target.is_file():
            return self._missing(body)
        self._send(200, target, body)

    def _redirect(self, location: str) -> None:
        self.send_response(301)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _missing(self, body: bool) -> None:
        page = self.root / "404.html"
        if page.is_file():
            return self._send(404, page, body)
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send(self, status: int, path: Path, body: bool) -> None:
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        data = path.read_bytes()
        encoding = None
        if kind.startswith(COMPRESSED) and "gzip" in self.headers.get("Accept-Encoding", ""):
            data, encoding = _gzipped(path, path.stat().st_mtime), "gzip"
        self.send_response(status)
        self.send_header("Content-Type", f"{kind}; charset=utf-8" if kind.startswith("text/") else kind)
        if encoding:
            self.send_header("Content-Encoding", encoding)
            self.send_header("Vary", "Accept-Encoding")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", self.cache_control)
        self.end_headers()
        if body:
            self.wfile.write(data)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A browser that closes a page while a file is on its way is no error of the site.
        import sys

        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class PagesServer:
    """The built site at ``http://127.0.0.1:<port><prefix>``, served by a thread."""

    def __init__(
        self, root: Path, prefix: str = PREFIX, port: int = 0, cache_control: str = PAGES_CACHE_CONTROL
    ):
        if not prefix.startswith("/") or not prefix.endswith("/"):
            raise ValueError(f"prefix must start and end with '/', got {prefix!r}")
        settings = {"root": Path(root).resolve(), "prefix": prefix, "cache_control": cache_control}
        handler = type("Handler", (PagesHandler,), settings)
        self.httpd = _Server((HOST, port), handler)
        self.prefix = prefix
        self.origin = f"http://{HOST}:{self.httpd.server_address[1]}"
        self.base = self.origin + prefix
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        """The address of ``path``, relative to the site root."""
        return self.base + path

    def path_of(self, url: str) -> str:
        """The site path of an address of this server (no query or fragment), '' for the home."""
        path = urlsplit(url).path
        if not path.startswith(self.prefix):
            raise ValueError(f"{url} is outside the site ({self.base})")
        return path[len(self.prefix) :]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--prefix", default=PREFIX)
    args = parser.parse_args()
    server = PagesServer(args.site, args.prefix, args.port)
    print(f"serving {args.site} at {server.base} (Ctrl+C stops)")
    try:
        server.thread.join()
    except KeyboardInterrupt:
        server.close()


if __name__ == "__main__":
    main()
