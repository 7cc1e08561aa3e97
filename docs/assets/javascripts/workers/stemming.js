// Search that finds other forms of a word (hooks/search_per_language.py puts this worker in place
// of material's own, whose file name it passes as ?worker=...).
//
// Why: material's search adds a trailing wildcard to every word of a query, and lunr runs no
// stemmer on wildcard terms, so an inflected word ("головами") never meets the stem the index
// holds ("голов"). This worker loads material's worker unchanged, then searches each word's stem
// too, through the index's own search pipeline (the Russian and English stemmers).
importScripts(new URLSearchParams(self.location.search).get("worker"));

(function () {
  const search = lunr.Index.prototype.search;
  lunr.Index.prototype.search = function (query) {
    const stems = [];
    for (const word of query.split(/\s+/)) {
      const match = /^([^*:^~+\-]+)\*$/.exec(word);
      if (!match) continue;
      const term = match[1].toLowerCase();
      for (const stem of this.pipeline.runString(term)) {
        if (stem && stem !== term) stems.push(stem + "*");
      }
    }
    return search.call(this, stems.length ? query + " " + stems.join(" ") : query);
  };
})();
