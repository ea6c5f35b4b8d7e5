// Search for a page opened from disk (file://), with nothing fetched from the network.
//
// The theme's search runs in a web worker that fetches search/search_index.json; a page opened
// as a file may do neither. tools/site.py therefore also writes the index as a script,
// search/search_index.js, which defines `sharpTheorySearchIndex` ({docs: [{location, title,
// text}]}). On a file:// page this script loads it with a <script> tag and answers the theme's
// search box itself: every word of the query must occur in a section's title or text; title hits
// rank first; each result shows the title, a snippet around the first hit, and links to the
// section relative to this page. Served over http(s), it does nothing (the theme's search works).
//
// `?q=words` in the page's address opens the search with those words (the browser test uses it).
(function () {
  if (location.protocol !== "file:") { return; }

  var MAX_RESULTS = 20;
  var SNIPPET = 160;   // characters around the first hit
  var sections = null; // [{href, title, text, lowerTitle, lowerText}] once the index has loaded

  function siteBase() {
    // The theme writes the way back to the site's root ("..", ".") into #__config.
    var config = document.getElementById("__config");
    try { return JSON.parse(config.textContent).base || "."; } catch (error) { return "."; }
  }

  function plainText(markup) {
    var text = markup.replace(/<[^>]*>/g, " ")
      .replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, "\"")
      .replace(/&#39;/g, "'").replace(/&amp;/g, "&");
    return text.replace(/\s+/g, " ").trim();
  }

  function prepare(index, base) {
    return index.docs.map(function (doc) {
      var title = plainText(doc.title || "");
      var text = plainText(doc.text || "");
      return { href: base + "/" + doc.location, title: title, text: text,
               lowerTitle: title.toLowerCase(), lowerText: text.toLowerCase() };
    });
  }

  function words(query) {
    return query.toLowerCase().split(/[\s\-]+/).filter(function (word) { return word.length > 0; });
  }

  // Sections holding every word, best first: words in the title count ten times a word in the
  // text; a whole page (no "#") before its sections on a tie.
  function search(query) {
    var wanted = words(query);
    if (!wanted.length || !sections) { return []; }
    var found = [];
    sections.forEach(function (section) {
      var score = 0;
      for (var i = 0; i < wanted.length; i++) {
        var inTitle = section.lowerTitle.indexOf(wanted[i]) >= 0;
        var inText = section.lowerText.indexOf(wanted[i]) >= 0;
        if (!inTitle && !inText) { return; }
        score += (inTitle ? 10 : 0) + (inText ? 1 : 0);
      }
      found.push({ section: section, score: score });
    });
    found.sort(function (a, b) {
      return b.score - a.score
        || (a.section.href.indexOf("#") >= 0) - (b.section.href.indexOf("#") >= 0);
    });
    return found.slice(0, MAX_RESULTS).map(function (hit) { return hit.section; });
  }

  function snippet(section, query) {
    var first = -1;
    words(query).forEach(function (word) {
      var at = section.lowerText.indexOf(word);
      if (at >= 0 && (first < 0 || at < first)) { first = at; }
    });
    if (first < 0) { return section.text.slice(0, SNIPPET); }
    var start = Math.max(0, first - SNIPPET / 3);
    return (start > 0 ? "… " : "") + section.text.slice(start, start + SNIPPET)
      + (start + SNIPPET < section.text.length ? " …" : "");
  }

  function show(query) {
    var meta = document.querySelector(".md-search-result__meta");
    var list = document.querySelector(".md-search-result__list");
    if (!meta || !list) { return; }
    list.textContent = "";
    if (!sections) { meta.textContent = "Loading the search index"; return; }
    if (!words(query).length) { meta.textContent = "Type to start searching"; return; }
    var hits = search(query);
    meta.textContent = hits.length === 0 ? "No matching documents"
      : hits.length === 1 ? "1 matching document"
      : (hits.length === MAX_RESULTS ? "The first " : "") + hits.length + " matching documents";
    hits.forEach(function (section) {
      var item = document.createElement("li");
      item.className = "md-search-result__item";
      var link = document.createElement("a");
      link.className = "md-search-result__link offline-search-hit";
      link.href = section.href;
      var article = document.createElement("article");
      article.className = "md-search-result__article md-typeset";
      var heading = document.createElement("h1");
      heading.textContent = section.title;
      var text = document.createElement("p");
      text.textContent = snippet(section, query);
      article.appendChild(heading);
      article.appendChild(text);
      link.appendChild(article);
      item.appendChild(link);
      list.appendChild(item);
    });
  }

  function start() {
    var input = document.querySelector("[data-md-component=search-query]");
    if (!input) { return; }
    var base = siteBase();
    // Answer before the theme's own handlers (its worker never starts on a file:// page).
    input.addEventListener("input", function (event) {
      event.stopImmediatePropagation();
      show(input.value);
    }, true);
    input.form.addEventListener("submit", function (event) {
      event.preventDefault();
      var first = document.querySelector(".offline-search-hit");
      if (first) { location.href = first.href; }
    }, true);
    var script = document.createElement("script");
    script.src = base + "/search/search_index.js";
    script.onload = function () {
      sections = prepare(window.sharpTheorySearchIndex || { docs: [] }, base);
      var asked = new URLSearchParams(location.search).get("q");
      if (asked) {
        input.value = asked;
        var toggle = document.getElementById("__search");
        if (toggle) { toggle.checked = true; }
      }
      show(input.value);
    };
    script.onerror = function () {
      var meta = document.querySelector(".md-search-result__meta");
      if (meta) { meta.textContent = "The search index (search/search_index.js) is missing"; }
    };
    document.head.appendChild(script);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
