// MathJax 2 for the markdown pages: it typesets only what pymdownx.arithmatex marked as math
// (\( ... \) and \[ ... \] inside class="arithmatex"). A notebook page has already loaded and
// configured MathJax (mkdocs-jupyter, from the same local copy): nothing is changed there.
if (!window.MathJax) {
  window.MathJax = {
    jax: ["input/TeX", "output/CommonHTML"],
    extensions: ["tex2jax.js"],
    TeX: {extensions: ["AMSmath.js", "AMSsymbols.js", "noErrors.js", "noUndefined.js"]},
    tex2jax: {
      inlineMath: [["\\(", "\\)"]],
      displayMath: [["\\[", "\\]"]],
      processEscapes: true,
      processEnvironments: true,
      ignoreClass: ".*|",
      processClass: "arithmatex",
    },
    messageStyle: "none",
    showMathMenu: false,
  };
}
