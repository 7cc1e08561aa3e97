"""The built site in a real browser: one Chromium for all checks, the site on 127.0.0.1.

The browser is Debian's Chromium (never a downloaded one): ``SIMPLE_LLM_CHROMIUM`` names another.
``SIMPLE_LLM_BUILT_SITE`` points the checks at a site built beforehand (to debug them quickly);
by default they use the ``built_site`` fixture (``mkdocs build --strict``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .browsing import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    DEVICES,
    FIRST_VISIT_BUDGET,
    FORMULA_PAGE_BUDGET,
    FORMULAS,
    INSPECT,
    OPEN_SHADOW_ROOTS,
    PROSE_FIRST_VISIT_BUDGET,
    READY,
    READY_TIMEOUT_MS,
    WEIGHTS,
    SiteServer,
    Visit,
    chromium_problem,
    first_visit_budget,
)

# Every host but this machine's fails to resolve: no request leaves it, none hangs. (Routing every
# request through Playwright to abort the others did the same for 15 % more CPU, measured.)
OTHER_HOSTS_FAIL = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
PARALLEL = 3  # pages loading at once (two cores: the browser works while the checks read)
# Material's search worker fetches the language's index and builds it, in the background, on every
# page: 0.4 s of CPU a visit (measured), the same worker and the same index on every page of a
# language. The visits on a phone load it for real (their requests are the first-visit weight); the
# tabs of the other visits get an empty worker instead. The search tests open pages of their own,
# with the real worker.
SEARCHING_DEVICE = "phone"
FORMULA_DEVICE = "phone"  # where a visit also looks at every formula (FORMULAS)
HAS_FORMULAS = "() => document.querySelector('.katex') !== null"
SEARCH_WORKER = "**/assets/javascripts/workers/search.*.min.js"


@pytest.fixture(scope="session")
def site_root(request) -> Path:
    prebuilt = os.environ.get("SIMPLE_LLM_BUILT_SITE")
    if prebuilt:
        return Path(prebuilt)
    return request.getfixturevalue("built_site")


@pytest.fixture(scope="session")
def server(site_root):
    server = SiteServer(site_root)
    yield server
    server.close()


@pytest.fixture(scope="package")
def browser():
    problem = chromium_problem()
    if problem:
        pytest.fail(problem, pytrace=False)
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, OTHER_HOSTS_FAIL]
        )
    except Exception as error:  # a broken binary is as loud as a missing one
        playwright.stop()
        pytest.fail(f"\n\n*** Chromium at {CHROMIUM} does not start: {error} ***\n", pytrace=False)
    yield browser
    browser.close()
    playwright.stop()


def record(page, owner) -> dict:
    """What ``page`` asks for and reports goes to the visit ``owner(request)`` returns (if
    any; ``request`` is None for a message); a request's failure goes to the visit that made
    the request. Returns the requests in flight with their visits."""
    made_for: dict = {}

    def requested(request) -> None:
        visit = owner(request)
        if visit is not None:
            made_for[request] = visit
            visit.requests.append(request.url)

    def failed(request, why: str) -> None:
        visit = made_for.get(request)
        if visit is not None:
            visit.failed.append(f"{request.url}: {why}")

    def report(attribute: str, text: str) -> None:
        visit = owner(None)
        if visit is not None:
            getattr(visit, attribute).append(text)

    page.on("request", requested)
    page.on("requestfinished", lambda r: made_for.pop(r, None))
    page.on("requestfailed", lambda r: failed(r, r.failure) or made_for.pop(r, None))
    page.on("response", lambda r: r.status >= 400 and failed(r.request, f"HTTP {r.status}"))
    page.on(
        "console",
        lambda m: (
            m.type == "error"
            and report(
                "console_errors",
                f"{m.text} ({m.location.get('url', '')}:{m.location.get('lineNumber', '')})",
            )
        ),
    )
    page.on("pageerror", lambda e: report("page_errors", str(e)))
    return made_for


class Browsing:
    """Visits pages in one browser: one context per colour scheme and device (``DEVICES``: a
    desktop and a phone), each visit made once. The server keeps the browser from caching
    (SiteServer): every visit is a first visit. Nothing leaves the machine: Chromium resolves no
    other host (OTHER_HOSTS_FAIL), so a request to one fails at once, and its page's checks name it.

    Visits go through ``PARALLEL`` tabs per context, kept open and navigated from page to page: a
    new tab per visit costs Chromium a new renderer and 2.5 times the CPU (measured: 20 pages, 30
    CPU-seconds in new tabs, 12 in reused ones), and the pages are the same (the cache is off, so a
    reused tab still asks for every file)."""

    def __init__(self, browser, server: SiteServer):
        self.browser, self.server = browser, server
        self.contexts: dict[tuple[str, str], object] = {}
        self.tabs: dict[tuple[str, str], list[Tab]] = {}
        self.visits: dict[tuple[str, str, str], Visit] = {}

    def context(self, scheme: str = "light", device: str = "desktop"):
        if (scheme, device) not in self.contexts:
            context = self.browser.new_context(
                **DEVICES[device], color_scheme=scheme, service_workers="block", locale="en-US"
            )
            context.add_init_script(OPEN_SHADOW_ROOTS)
            self.contexts[(scheme, device)] = context
        return self.contexts[(scheme, device)]

    def new_page(self, scheme: str = "light", visit: Visit | None = None, device: str = "desktop"):
        page = self.context(scheme, device).new_page()
        if visit is not None:
            record(page, lambda request: visit)
        return page

    def tab(self, number: int, scheme: str, device: str, visit: Visit):
        """Tab ``number`` of the context, about to show ``visit``'s page (opened on first use)."""
        tabs = self.tabs.setdefault((scheme, device), [])
        while len(tabs) <= number:
            tabs.append(Tab(self.context(scheme, device).new_page(), search=device == SEARCHING_DEVICE))
        return tabs[number].show(visit)

    def wait_ready(self, page) -> str | None:
        try:
            page.wait_for_function(READY, timeout=READY_TIMEOUT_MS, polling=100)
        except Exception as error:  # playwright's TimeoutError
            return (
                f"not ready after {READY_TIMEOUT_MS} ms (mermaid not rendered or images not loaded): {error}"
            )
        return None

    def visit(self, path: str, scheme: str = "light", device: str = "desktop") -> Visit:
        """The visit of ``path`` in ``scheme`` on ``device`` (made now if it was not made yet)."""
        if (path, scheme, device) not in self.visits:
            self.visit_all([path], scheme, device=device)
        return self.visits[(path, scheme, device)]

    def visit_all(
        self, paths, scheme: str = "light", screenshots: dict | None = None, device: str = "desktop"
    ) -> list[Visit]:
        """Visits the pages not visited yet, PARALLEL at a time (the browser loads the next pages
        while the checks read the first); ``screenshots`` maps a path to the PNG to write."""
        screenshots = screenshots or {}
        todo = [p for p in dict.fromkeys(paths) if (p, scheme, device) not in self.visits or p in screenshots]
        for path, visit in zip(todo, self.look(todo, INSPECT, scheme, device, screenshots)):
            self.visits[(path, scheme, device)] = visit
        return [self.visits[(p, scheme, device)] for p in paths]

    def look(
        self,
        paths,
        script: str,
        scheme: str = "light",
        device: str = "desktop",
        screenshots: dict | None = None,
    ) -> list[Visit]:
        """A new visit of each of ``paths`` (PARALLEL at a time), its ``info`` what ``script``
        returned once the page had loaded and its images were ready. On a phone, a page with
        formulas is then drawn whole and its fonts awaited (``formulas``: FORMULAS, read by
        test_math_in_browser.py), in the same visit: one visit serves both modules."""
        screenshots = screenshots or {}
        visits = []
        for start in range(0, len(paths), PARALLEL):
            batch = []
            for number, path in enumerate(paths[start : start + PARALLEL]):
                visit = Visit(path=path, scheme=scheme, device=device)
                page = self.tab(number, scheme, device, visit)
                response = page.goto(self.server.url(path), wait_until="commit")
                visit.status = response.status if response else None
                batch.append((visit, page))
            for visit, page in batch:
                page.wait_for_load_state("load", timeout=READY_TIMEOUT_MS)
                visit.not_ready = self.wait_ready(page)
                visit.loaded = len(visit.requests)
                visit.info = page.evaluate(script)
                shot = screenshots.get(visit.path)
                if shot is not None:
                    shot.parent.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(shot), full_page=True)
                visit.inspected = len(visit.requests)
                if device == FORMULA_DEVICE and page.evaluate(HAS_FORMULAS):
                    visit.formulas = page.evaluate(FORMULAS)
                visits.append(visit)
        return visits

    def close(self):
        for context in self.contexts.values():
            context.close()


class Tab:
    """A tab kept open and navigated from visit to visit. The page it leaves lives on until the
    next one arrives (commits): what that page still asks for or reports (its search worker, still
    fetching) is nobody's, and what it had in flight, which the navigation aborts, is forgotten (as
    closing the tab did)."""

    def __init__(self, page, search: bool):
        self.page, self.shown, self.coming = page, None, None
        self.in_flight = record(page, self.owner)
        page.on("framenavigated", self.arrived)
        if not search:
            page.route(SEARCH_WORKER, lambda route: route.fulfill(content_type="text/javascript", body=""))

    def owner(self, request) -> Visit | None:
        if request is not None and self.coming is not None and request.is_navigation_request():
            return self.coming  # the coming page's own address
        return self.shown

    def arrived(self, frame) -> None:
        if frame == self.page.main_frame and self.coming is not None:
            self.shown, self.coming = self.coming, None

    def show(self, visit: Visit):
        self.shown, self.coming = None, visit
        self.in_flight.clear()
        return self.page


@pytest.fixture(scope="package")
def browsing(browser, server):
    browsing = Browsing(browser, server)
    yield browsing
    browsing.close()


def pytest_terminal_summary(terminalreporter):
    if not WEIGHTS:
        return
    table = weight_table()
    terminalreporter.write_sep("-", "first-visit weight, gzip (tests/browser)")
    terminalreporter.write_line(table)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "page-weight.md").write_text(
        "# Page weight\n\nEverything a first visit (cold cache, 390x844 phone) loads, in KB as GitHub Pages\n"
        f"sends it (gzip). Budgets: {FIRST_VISIT_BUDGET // 1024} KB a page, {FORMULA_PAGE_BUDGET // 1024} KB"
        f" a page with formulas and without a notebook, {PROSE_FIRST_VISIT_BUDGET // 1024} KB one with neither.\n\n"
        + table
        + "\n",
        encoding="utf-8",
    )


def weight_table() -> str:
    columns = ["page", "HTML", "CSS", "JS", "images", "other", "total", "budget"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for path in sorted(WEIGHTS):
        row = WEIGHTS[path]
        budget = first_visit_budget(row)
        cells = [f"/{path}"] + [
            f"{row[k] / 1024:,.0f}" for k in ("html", "css", "js", "images", "other", "total")
        ]
        cells.append(f"{budget // 1024}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
