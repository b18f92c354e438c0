// @ts-check
/**
 * Links written as text: the URLs a post, a message or a paragraph carries
 * without being a link element. Shared by content.js (which marks them on the
 * page) and share.js (which warns when one is typed into a field); both run
 * after this script in the same isolated world.
 */
globalThis.linkwarnTextLinks = (() => {
  // A URL with a scheme, or a bare host with a dot and a path, as the proxy's link finder reads them;
  // typographic quotes and guillemets end a link, as straight quotes do.
  const LINK =
    /(?:https?:(?:\/\/|\\\\)[^\s"'<>`\u201c\u201d\u2018\u2019\u00ab\u00bb\u201e\u201a\u2039\u203a]+|(?<![\w@.-])(?:www\.)?(?:[\p{L}\p{N}-]+\.)+\p{L}{2,}(?::\d{1,5})?[/\\][^\s"'<>`\u201c\u201d\u2018\u2019\u00ab\u00bb\u201e\u201a\u2039\u203a]*)/giu;
  const TRAILING = /[.,;:!?)\]}'"]+$/;
  const MAYBE = /[.:]/; // no text without a dot or a colon holds a link: most text nodes are skipped at once

  /**
   * The links in *text*, each with where it is and the absolute URL it reads as.
   * @param {string} text
   * @param {number} [limit]
   * @returns {{url: string, start: number, end: number}[]}
   */
  function find(text, limit = 50) {
    /** @type {{url: string, start: number, end: number}[]} */
    const found = [];
    if (!MAYBE.test(text)) return found;
    for (const match of text.matchAll(LINK)) {
      const written = match[0].replace(TRAILING, "");
      const absolute = /^https?:/i.test(written) ? written : `http://${written}`;
      let url;
      try {
        url = new URL(absolute).href;
      } catch {
        continue;
      }
      const start = match.index ?? 0;
      found.push({ url, start, end: start + written.length });
      if (found.length >= limit) break;
    }
    return found;
  }

  return { find };
})();
