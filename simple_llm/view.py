"""An interactive attention view (`attention_view`): self-contained HTML for Jupyter, Colab and the site.

The output is one ``<div data-attention-view>`` with its own ``<style>``, the rounded weights as
JSON and a small inlined script: no CDN, no framework, no server. The stylesheet and the script are
files of the package, ``simple_llm/assets/view.css`` and ``view.js``. Python renders every element
once (buttons, one panel per head, one cell per token) with the chosen query's weights, so that
without the script (an untrusted notebook) the view still shows them; the script only fills the
same elements in again for another query or layer.
"""

from __future__ import annotations

import functools
import hashlib
import html
import json
import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import torch

MAX_PAYLOAD_BYTES = 200_000  # the weights and tokens of one view, as JSON

_LABELS = {
    "ru": {
        "head": "Голова {h}",
        "layer": "Слой {l}",
        "tokens": "Токены: выберите запрос",
        "heads": "Головы",
        "layers": "Слои",
        "side": "Все головы",
        "query": "Запрос «{tok}» (позиция {t})",
        "looks": "{head} → «{tok}» (позиция {t}): {w}",
        "weight": "«{tok}» (позиция {t}): вес {w}",
    },
    "en": {
        "head": "Head {h}",
        "layer": "Layer {l}",
        "tokens": "Tokens: choose a query",
        "heads": "Heads",
        "layers": "Layers",
        "side": "All heads",
        "query": "Query “{tok}” (position {t})",
        "looks": "{head} → “{tok}” (position {t}): {w}",
        "weight": "“{tok}” (position {t}): weight {w}",
    },
}


class AttentionView:
    """The HTML of one attention view; shown by Jupyter and Colab through ``_repr_html_``.

    Build it with ``attention_view``.

    Attributes:
        html (str): The self-contained HTML fragment (a ``<div data-attention-view>``).
        lang (str): The language of its labels, ``"ru"`` or ``"en"``.
    """

    def __init__(self, fragment: str, *, lang: str = "ru") -> None:
        self.html = fragment
        self.lang = lang

    def _repr_html_(self) -> str:
        return self.html

    def save(self, path: str | Path) -> Path:
        """Write the view as a standalone HTML page (UTF-8) and return its path."""
        path = Path(path)
        page = (
            f'<!doctype html>\n<html lang="{self.lang}"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<meta name="color-scheme" content="light dark"><title>attention view</title>'
            "<style>body{margin:1em;background:Canvas;color:CanvasText}</style></head>\n"
            f"<body>\n{self.html}\n</body></html>\n"
        )
        path.write_text(page, encoding="utf-8")
        return path

    def __repr__(self) -> str:
        return f"AttentionView({len(self.html.encode('utf-8'))} bytes of HTML)"


def _as_layers(weights: object, batch_index: int) -> list[torch.Tensor]:
    """Turn the accepted inputs into a list of per-layer ``(H, T, T)`` float tensors on the CPU."""
    layers = list(weights) if isinstance(weights, (list, tuple)) else [weights]
    if not layers:
        raise ValueError("weights must not be an empty list: give one (H, T, T) or (B, H, T, T) per layer")
    if isinstance(batch_index, bool) or not isinstance(batch_index, int):
        raise TypeError(f"batch_index must be an int, got {batch_index!r}")
    result = []
    for number, w in enumerate(layers):
        where = f"weights[{number}]" if isinstance(weights, (list, tuple)) else "weights"
        if not isinstance(w, torch.Tensor):
            raise TypeError(
                f"{where} must be a torch.Tensor of shape (H, T, T) or (B, H, T, T), got {type(w).__name__}"
            )
        if not w.is_floating_point():
            raise TypeError(f"{where} must be a floating-point tensor, got dtype {w.dtype}")
        if w.dim() == 4:
            if not -w.size(0) <= batch_index < w.size(0):
                raise ValueError(
                    f"batch_index={batch_index} out of range for {where} with batch size {w.size(0)}"
                )
            w = w[batch_index]  # (H, T, T)
        elif w.dim() == 3 and batch_index != 0:  # an argument that would do nothing is refused
            raise ValueError(
                f"batch_index={batch_index} needs (B, H, T, T) weights, got {where} of shape {tuple(w.shape)}"
            )
        if w.dim() != 3 or w.size(1) != w.size(2) or w.size(0) == 0 or w.size(1) == 0:
            raise ValueError(f"{where} must have shape (H, T, T) or (B, H, T, T), got {tuple(w.shape)}")
        w = w.detach().cpu().double()
        if not torch.isfinite(w).all() or (w < 0).any() or (w > 1 + 1e-6).any():
            raise ValueError(f"{where} must hold attention weights in [0, 1], got values outside it")
        result.append(w)
    sizes = sorted({w.size(1) for w in result})
    if len(sizes) != 1:
        raise ValueError(f"every layer must have the same sequence length T, got {sizes}")
    return result


def _check_args(tokens: object, T: int, lang: object, query: object, side_by_side: object) -> list[str]:
    if isinstance(tokens, (str, bytes)) or not isinstance(tokens, Sequence):
        raise TypeError(
            f"tokens must be a sequence of {T} labels (a list of str), got {type(tokens).__name__}"
        )
    if len(tokens) != T:
        raise ValueError(f"tokens has {len(tokens)} labels but the weights have T={T}")
    if lang not in _LABELS:
        raise ValueError(f"lang must be one of {sorted(_LABELS)}, got {lang!r}")
    if query is not None and (isinstance(query, bool) or not isinstance(query, int)):
        raise TypeError(f"query must be an int position or None, got {query!r}")
    if query is not None and not -T <= query < T:
        raise ValueError(f"query={query} out of range for T={T}")
    if not isinstance(side_by_side, bool):
        raise TypeError(f"side_by_side must be a bool, got {side_by_side!r}")
    return [str(t) for t in tokens]


def _weight_text(percent: int) -> str:
    return f"{percent / 100:.2f}"


def _panels(payload: dict, layer: int, query: int, labels: dict, shown: list[bool]) -> str:
    """One panel per head (of any layer), one cell per token, filled in for ``layer`` and ``query``.

    The script (``assets/view.js``) fills the same cells in again; it creates no element. Heads
    that ``layer`` lacks or that are not ``shown`` are ``hidden``.
    """
    tokens = payload["tokens"]
    rows = payload["weights"][layer]
    parts = []
    for h, show in enumerate(shown):
        row = rows[h][query] if h < len(rows) else [0] * len(tokens)
        cells = []
        for t, (tok, p) in enumerate(zip(tokens, row, strict=True)):
            label = html.escape(labels["weight"].format(tok=tok, t=t, w=_weight_text(p)), quote=True)
            number = _weight_text(p) if p > 0 else ""
            mark = " data-query" if t == query else ""
            cells.append(
                f'<span class="sav-k" title="{label}" aria-label="{label}"{mark} style="--w:{p / 100:.2f}">'
                f'<span class="sav-kt">{html.escape(tok)}</span><span class="sav-kb"></span>'
                f'<span class="sav-kn">{number}</span></span>'
            )
        name = html.escape(labels["head"].format(h=h))
        hidden = "" if show and h < len(rows) else " hidden"
        parts.append(
            f'<div class="sav-panel" data-head="{h}"{hidden} style="--c:var(--sav-c{h % 8})">'
            f'<div class="sav-ph"><span class="sav-sw"></span>{name}</div>'
            f'<div class="sav-keys">{"".join(cells)}</div></div>'
        )
    return "".join(parts)


def attention_view(
    weights: torch.Tensor | Sequence[torch.Tensor],
    tokens: Sequence[object],
    *,
    lang: str = "ru",
    query: int | None = None,
    side_by_side: bool = True,
    batch_index: int = 0,
) -> AttentionView:
    """An interactive view of attention weights: choose a token, see where each head looks.

    The tokens are buttons (click, tap, or Enter/Space; the arrow keys move along them). Choosing
    one shows, per head, its weights over all tokens: a bar in the head's colour and the number,
    the exact label on hover and for screen readers. Heads are shown side by side or one at a time
    (the legend's buttons choose), layers one at a time. The HTML is deterministic: weights are
    rounded to two decimals and the element id is a hash of the content.

    Args:
        weights: Attention weights of one layer, ``(H, T, T)`` or ``(B, H, T, T)`` (as
            ``mha.get_attention_weights(x)``), or a list of them, one per layer.
        tokens: ``T`` labels, shown as the tokens (converted with ``str``).
        lang: Label language, ``"ru"`` or ``"en"``. Default: ``"ru"``.
        query: Position chosen at first, negative counts from the end. Default: ``None`` (the
            last token).
        side_by_side: Show all heads at first (else only head 0). Default: ``True``.
        batch_index: Batch item shown for ``(B, H, T, T)`` weights (``(H, T, T)`` weights take
            only ``0``). Default: ``0``.

    Returns:
        The view, an ``AttentionView``. The last expression of a notebook cell shows it;
            ``.html`` is the fragment, ``.save(path)`` writes a standalone page.

    Raises:
        TypeError: If ``weights``, ``tokens``, ``query``, ``side_by_side`` or ``batch_index`` has
            the wrong type.
        ValueError: If the shapes disagree, a weight is outside ``[0, 1]``, an index is out of
            range (``batch_index`` other than 0 for ``(H, T, T)`` weights too), ``lang`` is
            unknown or the payload exceeds 200 KB.

    Shape:
        - weights: ``(H, T, T)`` or ``(B, H, T, T)`` per layer; ``H`` may differ between layers.
        - tokens: ``T`` labels.

    Examples:
        >>> import torch
        >>> w = torch.softmax(torch.randn(2, 3, 3), dim=-1)  # (H, T, T)
        >>> view = attention_view(w, ["a", "b", "c"], lang="en")
        >>> view.html.startswith('<div class="sav" data-attention-view')
        True
        >>> view.html == attention_view(w, ["a", "b", "c"], lang="en").html
        True
    """
    layers = _as_layers(weights, batch_index)
    T = layers[0].size(1)
    token_labels = _check_args(tokens, T, lang, query, side_by_side)
    query = T - 1 if query is None else query % T
    payload = {
        "tokens": token_labels,
        "weights": [torch.round(w * 100).to(torch.int64).tolist() for w in layers],  # [layer][H][T][T], %
    }
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    if len(data.encode("utf-8")) > MAX_PAYLOAD_BYTES:
        raise ValueError(
            f"the view would carry {len(data.encode('utf-8'))} bytes of weights (limit {MAX_PAYLOAD_BYTES}): "
            f"show fewer tokens (T={T}), heads or layers"
        )
    labels = _LABELS[lang]
    settings = {"query": query, "side": side_by_side, "labels": labels}
    key = hashlib.sha256(
        (data + json.dumps(settings, ensure_ascii=False, sort_keys=True)).encode()
    ).hexdigest()
    uid = f"sav-{key[:12]}"
    return AttentionView(_render(uid, payload, data, settings, lang), lang=lang)


def _render(uid: str, payload: dict, data: str, settings: dict, lang: str) -> str:
    labels = settings["labels"]
    query, side = settings["query"], settings["side"]
    tokens = payload["tokens"]
    n_layers = len(payload["weights"])
    n_heads = len(payload["weights"][0])
    shown = [side or h == 0 for h in range(max(len(layer) for layer in payload["weights"]))]
    layer_buttons = ""
    if n_layers > 1:
        buttons = "".join(
            f'<button type="button" class="sav-b" data-layer="{i}" aria-pressed="{str(i == 0).lower()}">'
            f"{html.escape(labels['layer'].format(l=i + 1))}</button>"
            for i in range(n_layers)
        )
        layer_buttons = f'<div class="sav-row" role="group" aria-label="{labels["layers"]}">{buttons}</div>'
    head_buttons = "".join(
        f'<button type="button" class="sav-b" data-head="{h}"{" hidden" if h >= n_heads else ""} '
        f'style="--c:var(--sav-c{h % 8})" aria-pressed="{str(show).lower()}"><span class="sav-sw"></span>'
        f"{html.escape(labels['head'].format(h=h))}</button>"
        for h, show in enumerate(shown)
    )
    token_buttons = "".join(
        f'<button type="button" class="sav-t" data-t="{t}" aria-pressed="{str(t == query).lower()}" '
        f'title="{t}: {html.escape(tok, quote=True)}">{html.escape(tok)}</button>'
        for t, tok in enumerate(tokens)
    )
    readout = html.escape(labels["query"].format(tok=tokens[query], t=query))
    config = json.dumps(settings, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return (
        f'<div class="sav" data-attention-view id="{uid}" lang="{lang}">'
        f"<style>{_asset('view.css').replace('#ID', '#' + uid)}</style>"
        f"{layer_buttons}"
        f'<div class="sav-row" role="group" aria-label="{labels["heads"]}">'
        f'<button type="button" class="sav-b sav-side" aria-pressed="{str(side).lower()}">{labels["side"]}</button>'
        f"{head_buttons}</div>"
        f'<div class="sav-row sav-tokens" role="group" aria-label="{labels["tokens"]}">{token_buttons}</div>'
        f'<div class="sav-readout" aria-live="polite">{readout}</div>'
        f'<div class="sav-panels" data-side="{str(side).lower()}">{_panels(payload, 0, query, labels, shown)}</div>'
        f'<script type="application/json" class="sav-data">{_json_for_script(data)}</script>'
        f'<script type="application/json" class="sav-config">{_json_for_script(config)}</script>'
        f"<script>{_asset('view.js')}</script></div>"
    )


def _json_for_script(text: str) -> str:
    """JSON that cannot close its ``<script>`` element early."""
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@functools.cache
def _asset(name: str) -> str:
    """``simple_llm/assets/<name>`` without comments and indentation, as the view inlines it."""
    text = resources.files("simple_llm").joinpath("assets", name).read_text(encoding="utf-8")
    if name.endswith(".css"):
        text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)  # comments
        text = re.sub(r"\s+", " ", text)
        return re.sub(r"\s*([{};,:])\s*", r"\1", text).replace(";}", "}").strip()
    lines = (line.strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line and not line.startswith("//"))
