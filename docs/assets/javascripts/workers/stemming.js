// Search that finds other forms of a word (hooks/search_per_language.py puts this worker in place
// of material's own, whose file name it passes as ?worker=...).
//
// Why: material's search adds a trailing wildcard to every word of a query, and lunr runs no
// stemmer on wildcard terms, so an inflected word ("головами") never meets the stem the index
// holds ("голов"). This worker loads material's worker unchanged, then searches each word's stem
// too, through the index's own search pipeline (the Russian and English stemmers).
//
// Material marks a result with the query words it contains (`terms`): it lists the others as
// missing (struck through) and puts the found ones in the result link's `?h=`, which the page then
// highlights. A word found through its stem is neither missing nor highlightable as typed
// ("маски" is not on a page that says "маска"), so in such a result the word is replaced by its
// stem: nothing is struck through, and `?h=маск` highlights every form on the page.
//
// In the offline copy, material runs its worker in an iframe (the iframe-worker shim), where
// scripts load one after the other and lunr arrives later: the wrapper takes material's worker
// from its own script address and patches lunr when lunr is set.
(function () {
  const own = (self.document && document.currentScript && document.currentScript.src) || self.location.href;
  const worker = new URL(new URL(own).searchParams.get("worker"), own).href;
  let stemOf = new Map(); // query word -> its stem, for the last query
  let matched = new Map(); // result location -> the stems its match data holds

  function patch(lunr) {
    if (!lunr || !lunr.Index || lunr.Index.prototype.search.stems) return;
    const search = lunr.Index.prototype.search;
    lunr.Index.prototype.search = function (query) {
      stemOf = new Map();
      matched = new Map();
      for (const word of query.split(/\s+/)) {
        const match = /^([^*:^~+\-]+)\*$/.exec(word);
        if (!match) continue;
        const term = match[1].toLowerCase();
        for (const stem of this.pipeline.runString(term)) {
          if (stem && stem !== term) stemOf.set(term, stem);
        }
      }
      const stems = [...new Set(stemOf.values())];
      const results = search.call(this, stems.length ? query + " " + stems.map((s) => s + "*").join(" ") : query);
      for (const result of results) {
        const keys = Object.keys(result.matchData.metadata);
        matched.set(result.ref, new Set(stems.filter((stem) => keys.some((key) => key.startsWith(stem)))));
      }
      return results;
    };
    lunr.Index.prototype.search.stems = true;
  }

  // A page shown only as the head of its matching sections has no match data of its own: it
  // takes the stems its sections were found by, so that its link highlights them too.
  function stemsOf(location) {
    if (matched.has(location)) return matched.get(location);
    const page = location.split("#")[0];
    const stems = new Set();
    for (const [ref, found] of matched) if (ref.split("#")[0] === page) found.forEach((s) => stems.add(s));
    return stems.size ? stems : undefined;
  }

  function withStems(doc) {
    if (!doc || !doc.terms) return doc;
    const found = stemsOf(doc.location);
    if (!found) return doc;
    const terms = {};
    for (const [term, present] of Object.entries(doc.terms)) {
      const stem = stemOf.get(term);
      if (!present && stem && found.has(stem)) terms[stem] = true;
      else terms[term] = present;
    }
    if (!Object.values(terms).some(Boolean)) found.forEach((stem) => (terms[stem] = true));
    return Object.assign({}, doc, { terms });
  }

  const post = self.postMessage.bind(self);
  self.postMessage = function (message, ...rest) {
    const items = message && message.data && message.data.items;
    if (Array.isArray(items)) {
      const fixed = items.map((group) => (Array.isArray(group) ? group.map(withStems) : withStems(group)));
      message = Object.assign({}, message, { data: Object.assign({}, message.data, { items: fixed }) });
    }
    return post(message, ...rest);
  };

  if (self.lunr) patch(self.lunr);
  else {
    let value;
    Object.defineProperty(self, "lunr", {
      configurable: true,
      get: () => value,
      set: (v) => {
        value = v;
        patch(v);
      },
    });
  }
  importScripts(worker);
})();
