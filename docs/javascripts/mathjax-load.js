// Loads MathJax 2 from the site's own copy (javascripts/mathjax/, which tools/site.py copies from
// the jupyter-server-mathjax package), so math renders on a page opened from disk with nothing
// fetched. Every page runs this: the markdown pages (pymdownx.arithmatex writes \( \) and \[ \])
// and the notebook pages (mkdocs-jupyter loads it as its MathJax and then adds $ $ delimiters).
// The package ships the STIX-Web fonts, not MathJax's default TeX ones: hence the font settings.
if (!window.MathJax) {
  window.MathJax = {
    "HTML-CSS": {availableFonts: [], webFont: "STIX-Web", preferredFont: null, imageFont: null},
    SVG: {font: "STIX-Web"},
    tex2jax: {
      inlineMath: [["\\(", "\\)"]],
      displayMath: [["\\[", "\\]"]],
      processEscapes: true,
      processEnvironments: true,
    },
    messageStyle: "none",
    showMathMenu: false,
  };
  var here = document.currentScript.src;
  var mathjax = here.slice(0, here.lastIndexOf("/") + 1) + "mathjax/MathJax.js";
  // A parser-blocking script: MathJax is ready before the page's next script (a notebook page's
  // MathJax configuration) runs.
  document.write('<script src="' + mathjax + '?config=TeX-AMS-MML_HTMLorMML-full,Safe"><\/script>');
}
