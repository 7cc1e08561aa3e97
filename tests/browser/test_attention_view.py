"""The interactive attention view on the built site: its script runs, a token can be chosen by
click, tap and keyboard, the view changes, nothing leaves the site, and a phone needs no
sideways scrolling. On the induction-heads page the view also shows what the notebook asserts:
a layer-2 head of the trained model looks 9 tokens back from a query of the repeat, and a
layer-1 head one token back.
"""

from __future__ import annotations

import pytest

from tests.docs.helpers import NOTEBOOKS

from .browsing import contrast, is_local, url_path

PAGES = [
    url_path(NOTEBOOKS / name) for name in ("13_induction_heads.ru.ipynb", "13_induction_heads.en.ipynb")
]
PAGES += [url_path(NOTEBOOKS / name) for name in ("05_seeing_heads.ru.ipynb", "05_seeing_heads.en.ipynb")]
DEVICES = {
    "desktop": {"viewport": {"width": 1280, "height": 800}},
    "phone": {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True},
}

# The state of every view on the page, in one round trip.
STATE = """
() => [...document.querySelectorAll("[data-attention-view]")].map(v => ({
  ready: v.hasAttribute("data-ready"),
  query: [...v.querySelectorAll(".sav-t")].findIndex(b => b.getAttribute("aria-pressed") === "true"),
  tokens: v.querySelectorAll(".sav-t").length,
  readout: v.querySelector(".sav-readout").textContent,
  panels: [...v.querySelectorAll(".sav-panel:not([hidden])")].map(p =>
    [...p.querySelectorAll(".sav-k")].map(k => Number(k.style.getPropertyValue("--w")))),
  layer: [...v.querySelectorAll(".sav-b[data-layer]")].findIndex(b => b.getAttribute("aria-pressed") === "true"),
  right: v.getBoundingClientRect().right,
}))
"""


@pytest.fixture(scope="module", params=list(DEVICES))
def device(request, browsing):
    """A browser context per device; requests outside the site are recorded and aborted."""
    context = browsing.browser.new_context(**DEVICES[request.param], service_workers="block", locale="en-US")
    outside: list[str] = []

    def guard(route):
        if is_local(route.request.url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort("blockedbyclient")

    context.route("**/*", guard)
    yield request.param, context, outside
    context.close()


def open_page(context, server, path):
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.url(path), wait_until="load")
    page.wait_for_function("document.querySelectorAll('[data-attention-view][data-ready]').length > 0")
    return page, errors


@pytest.mark.parametrize("path", PAGES)
def test_choose_a_token_by_pointer_and_keyboard(device, server, path):
    name, context, outside = device
    page, errors = open_page(context, server, path)
    try:
        before = page.evaluate(STATE)
        assert before and all(v["ready"] for v in before), "a view's script did not run"
        view = page.locator("[data-attention-view]").first
        first = before[0]
        assert first["query"] == first["tokens"] - 1  # the last token is chosen at first

        # Pointer: a click on the desktop, a tap on the phone.
        button = view.locator(".sav-t").nth(2)
        button.scroll_into_view_if_needed()
        if name == "phone":
            button.tap()
        else:
            button.click()
        after = page.evaluate(STATE)[0]
        assert after["query"] == 2 and after["readout"] != first["readout"]
        assert after["panels"] != first["panels"]
        assert all(row[3:] == [0.0] * (len(row) - 3) for row in after["panels"])  # causal: no future

        # Keyboard: Enter on a focused token, the arrow keys, then Space.
        view.locator(".sav-t").nth(5).focus()
        page.keyboard.press("Enter")
        assert page.evaluate(STATE)[0]["query"] == 5
        page.keyboard.press("ArrowLeft")
        assert page.evaluate(STATE)[0]["query"] == 4
        assert page.evaluate("document.activeElement.getAttribute('data-t')") == "4"
        view.locator(".sav-t").nth(1).focus()
        page.keyboard.press("Space")
        assert page.evaluate(STATE)[0]["query"] == 1

        # One head at a time, then side by side again.
        side = view.locator(".sav-side")
        side.click()
        assert len(page.evaluate(STATE)[0]["panels"]) == 1
        side.click()
        assert len(page.evaluate(STATE)[0]["panels"]) == len(first["panels"])

        if name == "phone":
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"the page scrolls sideways on a phone: {width} px wide"
            assert all(v["right"] <= 390 for v in page.evaluate(STATE))
        assert not errors, f"console errors: {errors}"
        assert not outside, f"requests outside the site: {outside}"
    finally:
        page.close()


@pytest.mark.parametrize("path", PAGES[:2])
def test_induction_head_looks_back_nine_tokens_in_the_view(device, server, path):
    _, context, _ = device
    page, errors = open_page(context, server, path)
    try:
        view = page.locator("[data-attention-view]").first
        view.locator('.sav-b[data-layer="1"]').click()  # layer 2
        view.locator('.sav-t[data-t="15"]').click()  # a query in the repeat (T = 20, L = 10)
        state = page.evaluate(STATE)[0]
        assert state["layer"] == 1 and state["query"] == 15
        looks_at = [row.index(max(row)) for row in state["panels"]]
        assert 15 - 9 in looks_at, f"no layer-2 head looks at position 6 from query 15: {looks_at}"
        view.locator('.sav-b[data-layer="0"]').click()  # layer 1: a previous-token head
        view.locator('.sav-t[data-t="12"]').click()
        looks_at = [row.index(max(row)) for row in page.evaluate(STATE)[0]["panels"]]
        assert 11 in looks_at, f"no layer-1 head looks at position 11 from query 12: {looks_at}"
        assert not errors, f"console errors: {errors}"
    finally:
        page.close()


# The colour of a view's token text, its panel headings and the page behind them, as [r, g, b].
COLOURS = """
() => {
  const rgb = (css) => css.match(/[\\d.]+/g).slice(0, 3).map(Number);
  const v = document.querySelector("[data-attention-view]");
  return {
    page: rgb(getComputedStyle(document.body).backgroundColor),
    token: rgb(getComputedStyle(v.querySelector(".sav-t")).color),
    heading: rgb(getComputedStyle(v.querySelector(".sav-ph")).color),
    readout: rgb(getComputedStyle(v.querySelector(".sav-readout")).color),
  };
}
"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_view_follows_the_site_palette(browsing, server, scheme):
    """On the slate scheme the text is light, on the default one dark: readable on the page either
    way (the notebook wrapper says data-jp-theme-light="true" in both, material's scheme wins)."""
    page = browsing.new_page(scheme)
    try:
        page.goto(server.url(PAGES[1]), wait_until="load")
        colours = page.evaluate(COLOURS)
        for part in ("token", "heading", "readout"):
            ratio = contrast(colours[part], colours["page"])
            assert ratio >= 4.5, f"{scheme}: the view's {part} text has contrast {ratio:.1f} on the page"
    finally:
        page.close()


def test_view_starts_wherever_its_script_runs(browsing, tmp_path):
    """Three ways the HTML reaches a page: a saved standalone page (the parser runs the script),
    an output whose scripts are re-created in place (JupyterLab, Colab), and one whose scripts are
    run detached in <head> (classic Jupyter's jQuery): the view starts and answers a click."""
    import torch

    from simple_llm import attention_view

    weights = torch.softmax(torch.randn(2, 2, 6, 6), dim=-1).tril()  # (B, H, T, T), no renormalizing
    view = attention_view(weights, list("abcdef"), lang="en")
    standalone = view.save(tmp_path / "view.html")
    inject = """([html, detached]) => {
      const out = document.createElement("div");
      out.innerHTML = html;                  // scripts set by innerHTML do not run
      document.body.appendChild(out);
      for (const old of out.querySelectorAll("script:not([type])")) {
        const s = document.createElement("script");
        s.text = old.text;
        if (detached) { document.head.appendChild(s); s.remove(); } else { old.replaceWith(s); }
      }
    }"""
    for way in ("saved page", "in place", "detached"):
        page = browsing.browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
        try:
            if way == "saved page":
                page.goto(standalone.as_uri())
            else:
                page.set_content("<!doctype html><meta charset='utf-8'><body></body>")
                page.evaluate(inject, [view.html, way == "detached"])
            root = page.locator("[data-attention-view]")
            assert root.get_attribute("data-ready") == "", f"{way}: the script did not start the view"
            root.locator('.sav-t[data-t="1"]').click()
            assert "position 1" in root.locator(".sav-readout").inner_text(), way
            assert not errors, f"{way}: {errors}"
        finally:
            page.close()
