// A figure opens full size on tap or click (a phone shows it at the width of its screen): a
// dialog holds it at its natural size, scrolling both ways; a tap, Escape or the close button
// closes it. The image is the one the page shows (a file beside the page): it comes from the cache.
(function () {
  const figures = () => document.querySelectorAll(".md-typeset .jp-RenderedImage img, .md-typeset img.figure");
  const label = { ru: ["Открыть рисунок целиком", "Закрыть"], en: ["Open the figure full size", "Close"] };
  const words = label[document.documentElement.lang] || label.en;
  let dialog = null;

  function open(img) {
    if (!dialog) {
      dialog = document.createElement("dialog");
      dialog.className = "figure-dialog";
      dialog.setAttribute("aria-label", words[0]);
      dialog.addEventListener("click", () => dialog.close());
      dialog.addEventListener("close", () => dialog.replaceChildren());
      document.body.append(dialog);
    }
    const close = document.createElement("button");
    close.type = "button";
    close.className = "figure-dialog__close md-button";
    close.textContent = words[1];
    const full = new Image();
    full.src = img.currentSrc || img.src;
    full.alt = img.alt;
    dialog.replaceChildren(close, full);
    dialog.showModal();
    close.focus();
  }

  function wire() {
    for (const img of figures()) {
      if (img.dataset.fullSize) continue;
      img.dataset.fullSize = "1";
      img.tabIndex = 0;
      img.setAttribute("role", "button");
      img.title = words[0];
      img.addEventListener("click", () => open(img));
      img.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          open(img);
        }
      });
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", wire);
  else wire();
})();
