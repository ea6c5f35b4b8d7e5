// Click a figure to see it at full size; click again (or press Escape) to close.
// Lab figures are drawn for a wide column and read poorly at the page's ~600 px. Nothing is
// fetched: the overlay shows the image the page already holds, so it works from disk, offline.
(function () {
  function close() {
    var open = document.querySelector(".figure-zoom");
    if (open) { open.remove(); }
  }
  document.addEventListener("click", function (event) {
    var target = event.target;
    if (target.closest && target.closest(".figure-zoom")) { close(); return; }
    if (target.tagName !== "IMG" || !target.closest(".md-content")) { return; }
    if (target.closest("a")) { return; }  // an image that is a link keeps its link
    var overlay = document.createElement("div");
    overlay.className = "figure-zoom";
    var copy = document.createElement("img");
    copy.src = target.src;
    copy.alt = target.alt || "figure at full size";
    overlay.appendChild(copy);
    document.body.appendChild(overlay);
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") { close(); }
  });
})();
