"""An interactive attention view (`attention_view`): self-contained HTML for Jupyter, Colab and the site.

The output is one ``<div data-attention-view>`` with its own ``<style>``, the rounded weights as
JSON and a small inlined script: no CDN, no framework, no server. Without the script (an untrusted
notebook) the view still shows the weights of the chosen query, rendered here in Python.
"""

from __future__ import annotations

import hashlib
import html
import json
from collections.abc import Sequence
from pathlib import Path

import torch

MAX_PAYLOAD_BYTES = 200_000  # the weights and tokens of one view, as JSON

# One colour per head (the same index gets the same colour in every layer): the light palette
# and a lighter one for dark backgrounds.
HEAD_COLOURS = {
    "light": ["#1f6fd1", "#d1450f", "#148a4a", "#9c3fc4", "#b8860b", "#c2185b", "#00838f", "#5d6d7e"],
    "dark": ["#6fb1ff", "#ff8a5c", "#5fd68f", "#d39bff", "#f0c24f", "#ff7eb0", "#4fd8e6", "#b0bec5"],
}

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


def _panels(payload: dict, layer: int, query: int, labels: dict) -> str:
    """The per-head panels of ``layer`` for ``query``: the same markup the script renders."""
    tokens = payload["tokens"]
    parts = []
    for h, rows in enumerate(payload["weights"][layer]):
        row = rows[query]
        cells = []
        for t, (tok, p) in enumerate(zip(tokens, row)):
            label = html.escape(labels["weight"].format(tok=tok, t=t, w=_weight_text(p)), quote=True)
            number = _weight_text(p) if p > 0 else ""
            mark = " data-query" if t == query else ""
            cells.append(
                f'<span class="sav-k" title="{label}" aria-label="{label}"{mark} style="--w:{p / 100:.2f}">'
                f'<span class="sav-kt">{html.escape(tok)}</span><span class="sav-kb"></span>'
                f'<span class="sav-kn">{number}</span></span>'
            )
        name = html.escape(labels["head"].format(h=h))
        parts.append(
            f'<div class="sav-panel" data-head="{h}" style="--c:var(--sav-c{h % 8})">'
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
        batch_index: Batch item shown for ``(B, H, T, T)`` weights. Default: ``0``.

    Returns:
        The view, an ``AttentionView``. The last expression of a notebook cell shows it;
            ``.html`` is the fragment, ``.save(path)`` writes a standalone page.

    Raises:
        TypeError: If ``weights``, ``tokens``, ``query``, ``side_by_side`` or ``batch_index`` has
            the wrong type.
        ValueError: If the shapes disagree, a weight is outside ``[0, 1]``, an index is out of
            range, ``lang`` is unknown or the payload exceeds 200 KB.

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
    layer_buttons = ""
    if n_layers > 1:
        buttons = "".join(
            f'<button type="button" class="sav-b" data-layer="{i}" aria-pressed="{str(i == 0).lower()}">'
            f"{html.escape(labels['layer'].format(l=i + 1))}</button>"
            for i in range(n_layers)
        )
        layer_buttons = f'<div class="sav-row" role="group" aria-label="{labels["layers"]}">{buttons}</div>'
    head_buttons = "".join(
        f'<button type="button" class="sav-b" data-head="{h}" style="--c:var(--sav-c{h % 8})" '
        f'aria-pressed="{str(side or h == 0).lower()}"><span class="sav-sw"></span>'
        f"{html.escape(labels['head'].format(h=h))}</button>"
        for h in range(n_heads)
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
        f"<style>{_CSS.replace('#ID', '#' + uid)}</style>"
        f"{layer_buttons}"
        f'<div class="sav-row" role="group" aria-label="{labels["heads"]}">'
        f'<button type="button" class="sav-b sav-side" aria-pressed="{str(side).lower()}">{labels["side"]}</button>'
        f"{head_buttons}</div>"
        f'<div class="sav-row sav-tokens" role="group" aria-label="{labels["tokens"]}">{token_buttons}</div>'
        f'<div class="sav-readout" aria-live="polite">{readout}</div>'
        f'<div class="sav-panels" data-side="{str(side).lower()}">{_panels(payload, 0, query, labels)}</div>'
        f'<script type="application/json" class="sav-data">{_json_for_script(data)}</script>'
        f'<script type="application/json" class="sav-config">{_json_for_script(config)}</script>'
        f"<script>{_JS}</script></div>"
    )


def _json_for_script(text: str) -> str:
    """JSON that cannot close its ``<script>`` element early."""
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


_LIGHT = (
    "--sav-fg:#1b1f24;--sav-muted:#5b6470;--sav-line:#c5ccd6;--sav-on:#e8eefc;--sav-focus:#1f6fd1;"
    + "".join(f"--sav-c{i}:{c};" for i, c in enumerate(HEAD_COLOURS["light"]))
)
_DARK = (
    "--sav-fg:#e3e6ea;--sav-muted:#a3abb6;--sav-line:#4a5260;--sav-on:#2c3a55;--sav-focus:#6fb1ff;"
    + "".join(f"--sav-c{i}:{c};" for i, c in enumerate(HEAD_COLOURS["dark"]))
)

# Scoped to the view's id. The system's prefers-color-scheme first (Colab, a saved page), then
# JupyterLab's theme, then material's scheme last: on the site the notebook wrapper keeps
# data-jp-theme-light="true" whatever the reader's scheme, so material's must win.
_CSS = (
    f"#ID{{{_LIGHT}color:var(--sav-fg);font:14px/1.4 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;"
    "max-width:100%;box-sizing:border-box;margin:.5em 0;overflow-wrap:anywhere}"
    f"@media (prefers-color-scheme:dark){{#ID{{{_DARK}}}}}"
    f'[data-jp-theme-light="false"] #ID{{{_DARK}}}[data-jp-theme-light="true"] #ID{{{_LIGHT}}}'
    f'[data-md-color-scheme="slate"] #ID{{{_DARK}}}[data-md-color-scheme="default"] #ID{{{_LIGHT}}}'
    "#ID *{box-sizing:border-box}"
    "#ID .sav-row{display:flex;flex-wrap:wrap;gap:4px;margin:0 0 6px}"
    "#ID button{font:inherit;color:inherit;background:transparent;border:1px solid var(--sav-line);"
    "border-radius:4px;padding:2px 7px;margin:0;cursor:pointer;min-height:28px;white-space:nowrap}"
    "#ID .sav-t{max-width:12em;overflow:hidden;text-overflow:ellipsis}"
    "#ID button:focus-visible{outline:2px solid var(--sav-focus);outline-offset:1px}"
    '#ID button[aria-pressed="true"]{background:var(--sav-on);border-color:var(--sav-focus);font-weight:600}'
    "#ID .sav-t{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;min-width:28px}"
    "#ID .sav-sw{display:inline-block;width:.8em;height:.8em;border-radius:2px;background:var(--c);"
    "margin-right:5px;vertical-align:-1px}"
    '#ID .sav-b[data-head][aria-pressed="false"] .sav-sw{opacity:.35}'
    "#ID .sav-readout{min-height:1.4em;margin:0 0 6px;color:var(--sav-muted)}"
    "#ID .sav-panels{display:grid;gap:8px;grid-template-columns:repeat(auto-fill,minmax(min(100%,300px),1fr))}"
    "#ID .sav-panel{border:1px solid var(--sav-line);border-top:3px solid var(--c);border-radius:4px;"
    "padding:4px 6px;min-width:0}"
    "#ID .sav-ph{font-weight:600;margin-bottom:4px}"
    "#ID .sav-keys{display:flex;flex-wrap:wrap;gap:3px}"
    "#ID .sav-k{display:inline-flex;flex-direction:column;align-items:center;min-width:30px;padding:1px 2px;"
    "border-radius:3px;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}"
    "#ID .sav-k[data-query]{outline:1px dashed var(--sav-muted)}"
    "#ID .sav-kt{max-width:7em;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}"
    "#ID .sav-kb{display:block;width:100%;height:6px;border-radius:2px;background:var(--c);opacity:var(--w)}"
    "#ID .sav-kn{font-size:10px;color:var(--sav-muted);min-height:1.2em}"
)

# The script: finds its own root (or, where the page ran it detached from the output, as classic
# Jupyter's jQuery does, every view not started yet), reads the JSON, re-renders on every choice.
_JS = r"""(function(){
function init(root){
root.setAttribute("data-ready","");
var D=JSON.parse(root.querySelector(".sav-data").textContent),
    S=JSON.parse(root.querySelector(".sav-config").textContent),L=S.labels,
    st={layer:0,query:S.query,side:S.side,shown:{}},toks=D.tokens;
function nHeads(){return D.weights[st.layer].length;}
function fmt(p){return (p/100).toFixed(2);}
function f(t,o){return t.replace(/\{(\w+)\}/g,function(_,k){return o[k];});}
function el(tag,cls,text){var e=document.createElement(tag);if(cls)e.className=cls;if(text!=null)e.textContent=text;return e;}
var most=0;D.weights.forEach(function(l){most=Math.max(most,l.length);});
for(var h=0;h<most;h++)st.shown[h]=S.side||h===0;
function render(){
  var panels=root.querySelector(".sav-panels");panels.textContent="";panels.setAttribute("data-side",String(st.side));
  var best=[];
  for(var h=0;h<nHeads();h++){
    if(!st.shown[h])continue;
    var row=D.weights[st.layer][h][st.query],p=el("div","sav-panel"),top=0;
    p.setAttribute("data-head",h);p.style.setProperty("--c","var(--sav-c"+(h%8)+")");
    var ph=el("div","sav-ph");ph.appendChild(el("span","sav-sw"));ph.appendChild(document.createTextNode(f(L.head,{h:h})));
    p.appendChild(ph);var keys=el("div","sav-keys");
    for(var t=0;t<toks.length;t++){
      var k=el("span","sav-k"),lab=f(L.weight,{tok:toks[t],t:t,w:fmt(row[t])});
      k.title=lab;k.setAttribute("aria-label",lab);k.style.setProperty("--w",(row[t]/100).toFixed(2));
      if(t===st.query)k.setAttribute("data-query","");
      k.appendChild(el("span","sav-kt",toks[t]));k.appendChild(el("span","sav-kb"));
      k.appendChild(el("span","sav-kn",row[t]>0?fmt(row[t]):""));keys.appendChild(k);
      if(row[t]>row[top])top=t;
    }
    p.appendChild(keys);panels.appendChild(p);
    best.push(f(L.looks,{head:f(L.head,{h:h}),tok:toks[top],t:top,w:fmt(row[top])}));
  }
  root.querySelector(".sav-readout").textContent=[f(L.query,{tok:toks[st.query],t:st.query})].concat(best).join(" · ");
  root.querySelectorAll(".sav-t").forEach(function(b){b.setAttribute("aria-pressed",String(+b.getAttribute("data-t")===st.query));});
  root.querySelectorAll(".sav-b[data-layer]").forEach(function(b){b.setAttribute("aria-pressed",String(+b.getAttribute("data-layer")===st.layer));});
  root.querySelectorAll(".sav-b[data-head]").forEach(function(b){var h=+b.getAttribute("data-head");
    b.hidden=h>=nHeads();b.setAttribute("aria-pressed",String(!!st.shown[h]));});
  root.querySelector(".sav-side").setAttribute("aria-pressed",String(st.side));
}
function addHeadButtons(){
  var row=root.querySelector(".sav-side").parentNode,have=row.querySelectorAll(".sav-b[data-head]").length;
  for(var h=have;h<most;h++){var b=el("button","sav-b");b.type="button";b.setAttribute("data-head",h);
    b.style.setProperty("--c","var(--sav-c"+(h%8)+")");b.appendChild(el("span","sav-sw"));
    b.appendChild(document.createTextNode(f(L.head,{h:h})));row.appendChild(b);}
}
root.addEventListener("click",function(e){
  var b=e.target.closest("button");if(!b||!root.contains(b))return;
  if(b.hasAttribute("data-t"))st.query=+b.getAttribute("data-t");
  else if(b.hasAttribute("data-layer"))st.layer=+b.getAttribute("data-layer");
  else if(b.classList.contains("sav-side")){st.side=!st.side;var first=-1;
    for(var h=0;h<nHeads();h++){if(first<0&&st.shown[h])first=h;st.shown[h]=st.side;}
    if(!st.side)st.shown[first<0?0:first]=true;}
  else if(b.hasAttribute("data-head")){var h=+b.getAttribute("data-head");
    if(st.side)st.shown[h]=!st.shown[h];else{for(var i=0;i<nHeads();i++)st.shown[i]=i===h;}}
  render();
});
root.querySelector(".sav-tokens").addEventListener("keydown",function(e){
  var step={ArrowRight:1,ArrowDown:1,ArrowLeft:-1,ArrowUp:-1}[e.key];if(!step)return;
  var t=Math.max(0,Math.min(toks.length-1,st.query+step));e.preventDefault();st.query=t;render();
  root.querySelector('.sav-t[data-t="'+t+'"]').focus();
});
addHeadButtons();render();
}
var s=document.currentScript,own=s&&s.closest?s.closest("[data-attention-view]"):null,
    roots=own?[own]:document.querySelectorAll("[data-attention-view]");
for(var i=0;i<roots.length;i++)if(!roots[i].hasAttribute("data-ready"))init(roots[i]);
})();"""
