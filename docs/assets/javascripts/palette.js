// Colours change at once when the reader switches the palette: while the new palette applies,
// <html> carries data-palette-switching (two frames), under which extra.css turns transitions
// off. Material's own rule for this restyled every element twice on each page load; it is taken
// out of the built palette.css (hooks/palette_css.py says why), and this mark is set only when
// the reader switches.
document.addEventListener(
  "change",
  (event) => {
    if (!(event.target instanceof Element) || !event.target.closest("[data-md-component=palette]")) return;
    const root = document.documentElement;
    root.setAttribute("data-palette-switching", "");
    requestAnimationFrame(() => requestAnimationFrame(() => root.removeAttribute("data-palette-switching")));
  },
  true,
);
