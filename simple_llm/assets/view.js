// The attention view's script (simple_llm.attention_view inlines it). Python renders every part
// of the view once: token, layer and head buttons, and a panel per head with a cell per token.
// This script only fills them in for the chosen layer and query: the weights, labels, the marked
// query, which panels show, and the readout. It finds its own root (or, where the page ran it
// detached from the output, as classic Jupyter's jQuery does, every view not started yet).
(function () {
function init(root) {
  root.setAttribute("data-ready", "");
  var D = JSON.parse(root.querySelector(".sav-data").textContent),
      S = JSON.parse(root.querySelector(".sav-config").textContent), L = S.labels,
      st = {layer: 0, query: S.query, side: S.side, shown: {}}, toks = D.tokens,
      headButtons = root.querySelectorAll(".sav-b[data-head]"), panels = root.querySelectorAll(".sav-panel");
  function nHeads() { return D.weights[st.layer].length; }
  function fmt(p) { return (p / 100).toFixed(2); }
  function f(t, o) { return t.replace(/\{(\w+)\}/g, function (_, k) { return o[k]; }); }
  for (var h = 0; h < headButtons.length; h++) st.shown[h] = S.side || h === 0;
  function render() {
    var best = [];
    root.querySelector(".sav-panels").setAttribute("data-side", String(st.side));
    panels.forEach(function (p) {
      var h = +p.getAttribute("data-head");
      p.hidden = !(h < nHeads() && st.shown[h]);
      if (p.hidden) return;
      var row = D.weights[st.layer][h][st.query], top = 0;
      p.querySelectorAll(".sav-k").forEach(function (k, t) {
        var lab = f(L.weight, {tok: toks[t], t: t, w: fmt(row[t])});
        k.title = lab; k.setAttribute("aria-label", lab); k.style.setProperty("--w", fmt(row[t]));
        k.toggleAttribute("data-query", t === st.query);
        k.querySelector(".sav-kn").textContent = row[t] > 0 ? fmt(row[t]) : "";
        if (row[t] > row[top]) top = t;
      });
      best.push(f(L.looks, {head: f(L.head, {h: h}), tok: toks[top], t: top, w: fmt(row[top])}));
    });
    root.querySelector(".sav-readout").textContent =
      [f(L.query, {tok: toks[st.query], t: st.query})].concat(best).join(" · ");
    root.querySelectorAll(".sav-t").forEach(function (b) {
      b.setAttribute("aria-pressed", String(+b.getAttribute("data-t") === st.query));
    });
    root.querySelectorAll(".sav-b[data-layer]").forEach(function (b) {
      b.setAttribute("aria-pressed", String(+b.getAttribute("data-layer") === st.layer));
    });
    headButtons.forEach(function (b) {
      var h = +b.getAttribute("data-head");
      b.hidden = h >= nHeads(); b.setAttribute("aria-pressed", String(!!st.shown[h]));
    });
    root.querySelector(".sav-side").setAttribute("aria-pressed", String(st.side));
  }
  root.addEventListener("click", function (e) {
    var b = e.target.closest("button");
    if (!b || !root.contains(b)) return;
    if (b.hasAttribute("data-t")) st.query = +b.getAttribute("data-t");
    else if (b.hasAttribute("data-layer")) st.layer = +b.getAttribute("data-layer");
    else if (b.classList.contains("sav-side")) {
      st.side = !st.side; var first = -1;
      for (var h = 0; h < nHeads(); h++) { if (first < 0 && st.shown[h]) first = h; st.shown[h] = st.side; }
      if (!st.side) st.shown[first < 0 ? 0 : first] = true;
    } else if (b.hasAttribute("data-head")) {
      var h = +b.getAttribute("data-head");
      if (st.side) st.shown[h] = !st.shown[h]; else { for (var i = 0; i < nHeads(); i++) st.shown[i] = i === h; }
    }
    render();
  });
  root.querySelector(".sav-tokens").addEventListener("keydown", function (e) {
    var step = {ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1}[e.key];
    if (!step) return;
    var t = Math.max(0, Math.min(toks.length - 1, st.query + step));
    e.preventDefault(); st.query = t; render();
    root.querySelector('.sav-t[data-t="' + t + '"]').focus();
  });
  render();
}
var s = document.currentScript, own = s && s.closest ? s.closest("[data-attention-view]") : null,
    roots = own ? [own] : document.querySelectorAll("[data-attention-view]");
for (var i = 0; i < roots.length; i++) if (!roots[i].hasAttribute("data-ready")) init(roots[i]);
})();
