// @ts-check
/**
 * Marks listed links wherever a page has them, before they are clicked: link
 * elements (HTML `<a>` and `<area>`, SVG `<a>`), in the document, in open and
 * closed shadow roots, in every frame (this script runs in each), after a
 * `<base>` change or a `document.open`, and URLs written as plain text.
 *
 * What a page can and cannot do about the marks:
 * - A badge is an element with a name drawn at random for this page, whose
 *   content lives in a closed shadow root and is drawn by CSS: the page cannot
 *   read or restyle it, and its text never enters copied text. A badge the
 *   page removes or restyles is put back (three times; then the page is named
 *   as hiding its warnings), one the page forges under the same name is
 *   removed, and one it covers or fades is noticed the same way.
 * - Links inside editable content get no element (it would become part of
 *   what is typed): they, and plain-text URLs, are marked with a CSS highlight,
 *   which changes no node.
 * - A mark is shown only once its link is on screen, and at most
 *   REVEALS_PER_SECOND of them a second: a page learns which of its links are
 *   listed no faster than a person looking at it does. Hidden links are never
 *   marked (opening one is still warned about).
 *
 * Work is done in slices of at most BUDGET_MS, so that a page with tens of
 * thousands of links stays responsive. It reads link addresses and the text
 * of text nodes (for URLs in them); only URLs leave it, to the service worker.
 */
(() => {
  const BUDGET_MS = 8; // work per task before the page gets the thread back
  const BATCH = 500; // URLs per lookup message
  const REVEALS_PER_SECOND = 20;
  const RESTORES = 3; // a removed or restyled badge is put back this often, then the page is named
  const SKIPPED = new Set(["script", "style", "noscript", "template", "textarea", "title"]);
  // The elements that can hold a shadow root (attachShadow refuses every other, and a custom
  // element's name has a hyphen): the only ones whose shadow root is looked for.
  const SHADOW_HOSTS = new Set(["article", "aside", "blockquote", "body", "div", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "main", "nav", "p", "section", "span"]);
  const CHECK_EVERY = 32; // nodes or links between two looks at the clock
  const XLINK = "http://www.w3.org/1999/xlink";
  const randomName = () => Array.from(crypto.getRandomValues(new Uint8Array(6)), (b) => b.toString(16).padStart(2, "0")).join("");
  const TAG = `linkwarn-${randomName()}`;
  // Named apart from the badges: a page can read its adopted style sheets, which style these.
  const HIGHLIGHT = { warn: `h${randomName()}`, block: `h${randomName()}` };
  const HOST_STYLE = [
    "all: initial", "display: inline-block", "visibility: visible", "opacity: 1", "position: static",
    "margin: 0 0 0 0.3em", "user-select: none", "-webkit-user-select: none", "pointer-events: auto",
    "transform: none", "filter: none", "clip-path: none", "mask: none", "vertical-align: baseline",
  ].map((rule) => `${rule} !important`).join("; ");
  const BADGE_CSS = `
    span { display: inline-block; padding: 0 0.35em; border-radius: 0.3em; cursor: help; white-space: nowrap;
           font: bold 12px/1.5 system-ui, sans-serif; user-select: none; }
    span.warn { background: #f5a623; color: #1c1300; }
    span.block { background: #b3261e; color: #fff; }
    span.warn::before { content: "⚠ listed"; }
    span.block::before { content: "⊘ blocked"; }
    span:focus-visible { outline: 2px solid #1a73e8; outline-offset: 1px; }`;

  /** @typedef {{action: string, reason: string | null, entry: string | null}} Verdict */
  /**
   * @typedef {object} Mark
   * @property {string} url
   * @property {string} action
   * @property {HTMLElement | null} badge  null: marked by a highlight
   * @property {boolean} shown
   * @property {number} restores
   */

  /** @type {Map<string, Verdict | null>} */
  const known = new Map();
  /** @type {Set<Node>} subtrees to read */
  const toScan = new Set();
  /** @type {Set<Element>} links to look up and mark */
  const links = new Set();
  /** @type {Set<Text>} */
  const texts = new Set();
  /** @type {Map<Element, Mark>} every marked link (an unmarked or removed one is taken out) */
  const marks = new Map();
  /** @type {WeakMap<Element, Element>} badge -> its link */
  const badges = new WeakMap();
  /** @type {Map<Text, Range[]>} */
  const textRanges = new Map();
  /** @type {Map<Element, Set<Element>>} what is watched coming on screen -> its links */
  const watched = new Map();
  /** @type {Map<Element, Range>} links in editable content */
  const editableRanges = new Map();
  /** @type {Set<Node>} */
  const roots = new Set();
  /** @type {Element[]} links on screen, waiting to be shown */
  const reveal = [];
  let scheduled = false;
  let warned = false;
  let styled = false;

  /** @type {{find: (text: string, limit?: number) => {url: string, start: number, end: number}[]}} */
  const textLinks = /** @type {any} */ (globalThis).linkwarnTextLinks; // textlinks.js, run before this
  // The page gets the thread back through a message to ourselves: a timeout would wait 4 ms more
  // each time once nested (HTML's clamping), a third of each slice.
  const channel = new MessageChannel();
  /** @type {(() => void)[]} */
  const resumes = [];
  channel.port1.onmessage = () => resumes.shift()?.();
  const yieldToPage = () =>
    new Promise((resolve) => {
      resumes.push(() => resolve(undefined));
      channel.port2.postMessage(null);
    });

  /** @param {Element} element */
  function shadowOf(element) {
    const dom = /** @type {any} */ (chrome).dom;
    try {
      const root = dom?.openOrClosedShadowRoot ? dom.openOrClosedShadowRoot(element) : /** @type {any} */ (element).openOrClosedShadowRoot;
      return root instanceof ShadowRoot ? root : null;
    } catch {
      return element.shadowRoot; // an element the API refuses (one of another document's)
    }
  }

  /** @param {Element} element */
  function isLink(element) {
    const name = element.localName;
    return (name === "a" || name === "area") && (element.hasAttribute("href") || element.hasAttributeNS(XLINK, "href"));
  }

  /** The address a link opens, without its fragment; "" for anything but http(s). @param {Element} link */
  function urlOf(link) {
    let href = "";
    if (link instanceof HTMLAnchorElement || link instanceof HTMLAreaElement) {
      href = link.href;
    } else {
      const raw = link.getAttribute("href") ?? link.getAttributeNS(XLINK, "href");
      try {
        href = raw == null ? "" : new URL(raw, link.baseURI).href;
      } catch {
        return "";
      }
    }
    if (!/^https?:/i.test(href)) return "";
    const hash = href.indexOf("#");
    return hash === -1 ? href : href.slice(0, hash);
  }

  /** @param {Node} node */
  function inEditable(node) {
    const element = node instanceof Element ? node : node.parentElement;
    return element instanceof HTMLElement ? element.isContentEditable : Boolean(element?.closest("[contenteditable]"));
  }

  // -- reading the page --------------------------------------------------------------

  /** @param {Node} root */
  function observe(root) {
    if (roots.has(root)) return;
    roots.add(root);
    observer.observe(root, { childList: true, subtree: true, characterData: true, attributes: true, attributeFilter: ["href"] });
  }

  /** @param {Node} node */
  function enqueue(node) {
    toScan.add(node);
    schedule();
  }

  function schedule() {
    if (scheduled || (!toScan.size && !links.size && !texts.size)) return;
    scheduled = true;
    setTimeout(work, 0);
  }

  let sliceStart = 0;
  /** Whether this task has used its budget: then the caller yields (`breathe`). */
  const spent = () => performance.now() - sliceStart >= BUDGET_MS;
  async function breathe() {
    await yieldToPage();
    sliceStart = performance.now();
  }

  /** The walker's next node past the subtree of its current one, or null. @param {TreeWalker} walker */
  function pastSubtree(walker) {
    for (;;) {
      const next = walker.nextSibling();
      if (next) return next;
      if (!walker.parentNode()) return null;
    }
  }

  /**
   * Collect the links, text nodes and shadow roots under *node*. Not read: badges, the
   * insides of SKIPPED elements, and the text of links (a link with only text is not entered).
   * @param {Node} node
   */
  async function scan(node) {
    if (node.nodeType === Node.TEXT_NODE) {
      texts.add(/** @type {Text} */ (node));
      return;
    }
    // No filter: one call into JavaScript per node costs more than the walk itself.
    const walker = document.createTreeWalker(node, NodeFilter.SHOW_ELEMENT | NodeFilter.SHOW_TEXT);
    /** @type {Node | null} */
    let current = walker.currentNode;
    let count = 0;
    while (current) {
      let enter = true;
      if (current.nodeType === Node.TEXT_NODE) {
        const text = /** @type {Text} */ (current);
        if (text.data.length > 4 && !text.parentElement?.closest("a")) texts.add(text);
      } else if (current.nodeType === Node.ELEMENT_NODE) {
        const element = /** @type {Element} */ (current);
        const name = element.localName;
        if (current !== node && (SKIPPED.has(name) || badges.has(element))) {
          enter = false;
        } else if (name === "a" || name === "area") {
          if (isLink(element) && links.add(element).size >= BATCH) takeLinks();
          enter = element.childElementCount > 0; // else only text, which is never read in a link
        } else if (SHADOW_HOSTS.has(name) || name.includes("-")) {
          const shadow = shadowOf(element);
          if (shadow && !roots.has(shadow)) {
            observe(shadow);
            toScan.add(shadow);
          }
        }
      }
      current = enter ? walker.nextNode() : pastSubtree(walker);
      if (++count % CHECK_EVERY === 0 && spent()) await breathe();
    }
  }

  /**
   * One pass over what was found: the links read (with the address each had then), the URLs
   * asked about, and the answers awaited. A batch is asked about as soon as it is full, while
   * the page is still being read, and the links it lists are marked as soon as it is answered.
   * @typedef {object} Pass
   * @property {Element[]} links
   * @property {string[]} urls
   * @property {Map<string, Element[]>} waiting  the links of each URL asked about
   * @property {string[]} unsent
   * @property {Promise<void>[]} answers
   */
  /** @returns {Pass} */
  const newPass = () => ({ links: [], urls: [], waiting: new Map(), unsent: [], answers: [] });
  let pass = newPass();

  /** Ask about the URLs not yet asked about; mark the links of those listed when answered. */
  function ask() {
    if (!pass.unsent.length) return;
    const urls = pass.unsent;
    const { waiting } = pass;
    pass.unsent = [];
    pass.answers.push(
      lookup(urls).then(() => {
        for (const url of urls) {
          const found = waiting.get(url);
          waiting.delete(url);
          if (found && known.get(url)) for (const link of found) apply(link);
        }
      }),
    );
  }

  /** Read the addresses of the links found so far; ask about each full batch of new ones. */
  function takeLinks() {
    for (const link of links) {
      const url = urlOf(link);
      pass.links.push(link);
      pass.urls.push(url);
      if (url && !known.has(url)) {
        const others = pass.waiting.get(url);
        if (others) others.push(link);
        else {
          pass.waiting.set(url, [link]);
          pass.unsent.push(url);
          if (pass.unsent.length >= BATCH) ask();
        }
      }
    }
    links.clear();
  }

  async function work() {
    sliceStart = performance.now();
    try {
      while (toScan.size || links.size || texts.size) {
        pass = newPass();
        while (toScan.size) {
          const [node] = toScan;
          toScan.delete(node);
          if (node.isConnected) await scan(node);
        }
        takeLinks();
        const batchTexts = [...texts];
        texts.clear();
        /** @type {Map<Text, {url: string, start: number, end: number}[]>} */
        const inText = new Map();
        for (const text of batchTexts) {
          if (!text.isConnected) continue;
          const found = textLinks.find(text.data);
          if (found.length || textRanges.has(text)) inText.set(text, found);
          for (const { url } of found) {
            if (known.has(url) || pass.waiting.has(url)) continue;
            pass.waiting.set(url, []);
            pass.unsent.push(url);
          }
          if (spent()) await breathe();
        }
        ask();
        await Promise.all(pass.answers);
        sliceStart = performance.now();
        // The links not marked as their answer came: those known before, and marks to take off.
        const { links: passLinks, urls } = pass;
        for (let i = 0; i < passLinks.length; i++) {
          const link = passLinks[i];
          if (!marks.has(link) && !(urls[i] && known.get(urls[i]))) continue; // a link changed since is in `links` again
          apply(link);
          if (i % CHECK_EVERY === 0 && spent()) await breathe();
        }
        for (const [text, found] of inText) markText(text, found);
        paintHighlights();
      }
    } finally {
      scheduled = false;
      schedule();
    }
  }

  /** @param {string[]} urls */
  async function lookup(urls) {
    if (!urls.length) return;
    let answer;
    try {
      answer = await chrome.runtime.sendMessage({ type: "check", urls });
    } catch {
      return; // the extension was reloaded or updated: this page keeps what it has
    }
    if (!answer || answer.error) return;
    for (const url of urls) known.set(url, answer.listed[url] ?? null);
  }

  // -- marking -----------------------------------------------------------------------

  /** @param {Element} link */
  function apply(link) {
    const url = link.isConnected ? urlOf(link) : "";
    const verdict = url ? known.get(url) : null;
    const before = marks.get(link);
    if (before && verdict && before.url === url && before.action === verdict.action) return;
    if (before) unmark(link, before);
    if (!verdict) return;
    if (inEditable(link)) {
      const range = document.createRange();
      range.selectNodeContents(link);
      editableRanges.set(link, range);
      marks.set(link, { url, action: verdict.action, badge: null, shown: true, restores: 0 });
      return;
    }
    marks.set(link, { url, action: verdict.action, badge: badge(verdict), shown: false, restores: 0 });
    const target = seenAs(link);
    watched.set(target, (watched.get(target) ?? new Set()).add(link));
    onScreen.observe(target);
  }

  /** @param {Element} link @param {Mark} mark */
  function unmark(link, mark) {
    const target = seenAs(link);
    const others = watched.get(target);
    others?.delete(link);
    if (!others?.size) {
      watched.delete(target);
      onScreen.unobserve(target);
    }
    if (mark.badge) {
      badges.delete(mark.badge);
      mark.badge.remove();
    }
    editableRanges.delete(link);
    marks.delete(link);
  }

  /** @param {Verdict} verdict */
  function badge(verdict) {
    const host = document.createElement(TAG);
    host.setAttribute("style", HOST_STYLE);
    const shadow = host.attachShadow({ mode: "closed" });
    const style = document.createElement("style");
    style.textContent = BADGE_CSS;
    const label = document.createElement("span");
    const blocked = verdict.action === "block";
    label.className = blocked ? "block" : "warn";
    const why = verdict.reason || `listed: ${verdict.entry ?? "this address"}`;
    label.title = `linkwarn — ${blocked ? "blocked" : "warning"}: ${why}`;
    label.setAttribute("role", "img");
    label.setAttribute("aria-label", `linkwarn: ${blocked ? "blocked" : "listed"} link. ${why}`);
    label.tabIndex = 0;
    shadow.append(style, label);
    return host;
  }

  /** Where a link's badge goes: after it, after the image of its map, after the drawing it is in. @param {Element} link */
  function anchorOf(link) {
    if (link instanceof HTMLAreaElement) {
      const map = link.closest("map");
      const name = map?.name || map?.id;
      const root = link.getRootNode();
      const image = name && "querySelector" in root ? /** @type {ParentNode} */ (root).querySelector(`img[usemap="#${CSS.escape(name)}"]`) : null;
      return image ?? map;
    }
    if (link instanceof SVGElement) return link.ownerSVGElement ? outermostSvg(link) : link;
    return link;
  }

  /** @param {SVGElement} element */
  function outermostSvg(element) {
    /** @type {SVGElement} */
    let svg = element;
    while (svg.ownerSVGElement) svg = svg.ownerSVGElement;
    return svg;
  }

  /** What a person sees of a link: the image of an area's map, else the link. @param {Element} link */
  function seenAs(link) {
    return link instanceof HTMLAreaElement ? anchorOf(link) ?? link : link;
  }

  /** @param {Element} link */
  function show(link) {
    const mark = marks.get(link);
    if (!mark?.badge || !link.isConnected) return;
    const anchor = anchorOf(link);
    if (!anchor) return;
    badges.set(mark.badge, link);
    guard.observe(mark.badge, { attributes: true });
    anchor.after(mark.badge);
    mark.shown = true;
    seen.observe(mark.badge);
  }

  // Marks appear for links on screen, no faster than REVEALS_PER_SECOND.
  const onScreen = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      if (!entry.isIntersecting) continue;
      for (const link of watched.get(entry.target) ?? []) {
        const mark = marks.get(link);
        if (mark && !mark.shown && !reveal.includes(link)) reveal.push(link);
      }
    }
  });
  setInterval(() => {
    for (let n = 0; n < REVEALS_PER_SECOND / 10 && reveal.length; n++) {
      const link = /** @type {Element} */ (reveal.shift());
      const target = seenAs(link);
      if (target.checkVisibility({ opacityProperty: true, visibilityProperty: true })) show(link);
      else if (marks.has(link)) {
        onScreen.unobserve(target); // looked at again when it moves or changes
        onScreen.observe(target);
      }
    }
  }, 100);

  // A shown badge that is covered, faded or clipped while its link is visible is being hidden.
  const seen = new IntersectionObserver(
    (entries) => {
      for (const entry of entries) {
        const link = badges.get(entry.target);
        const hidden = entry.isIntersecting && "isVisible" in entry && !entry.isVisible;
        if (link && hidden && link.checkVisibility({ opacityProperty: true, visibilityProperty: true })) tamper(link);
      }
    },
    /** @type {IntersectionObserverInit} */ ({ trackVisibility: true, delay: 500 }),
  );

  // A badge whose style the page changes is put back as it was.
  const guard = new MutationObserver((mutations) => {
    for (const mutation of mutations) {
      const host = /** @type {Element} */ (mutation.target);
      const link = badges.get(host);
      if (link && host.getAttribute("style") !== HOST_STYLE && tamper(link)) host.setAttribute("style", HOST_STYLE);
    }
  });

  /** Count a page's move against a link's mark; whether the mark is still to be put back. @param {Element} link */
  function tamper(link) {
    const mark = marks.get(link);
    if (!mark) return false;
    mark.restores += 1;
    if (mark.restores <= RESTORES) return true;
    named();
    return false;
  }

  function named() {
    if (warned) return;
    warned = true;
    const host = document.createElement(TAG);
    host.setAttribute("style", "all: initial !important; position: fixed !important; inset: 0.5em 0.5em auto auto !important; z-index: 2147483647 !important");
    const shadow = host.attachShadow({ mode: "closed" });
    const style = document.createElement("style");
    style.textContent = "p { margin: 0; max-width: 28em; padding: 0.6em 0.9em; border-radius: 0.4em; font: 14px/1.4 system-ui, sans-serif; background: #b3261e; color: #fff; }";
    const text = document.createElement("p");
    text.setAttribute("role", "alert");
    text.textContent = "linkwarn: this page hides linkwarn's marks on links to leaked material. Do not trust its links; linkwarn still warns when one is opened.";
    shadow.append(style, text);
    badges.set(host, host);
    document.documentElement.append(host);
  }

  /** @param {Text} text @param {{url: string, start: number, end: number}[]} found */
  function markText(text, found) {
    /** @type {Range[]} */
    const ranges = [];
    for (const { url, start, end } of found) {
      const verdict = known.get(url);
      if (!verdict) continue;
      const range = document.createRange();
      range.setStart(text, start);
      range.setEnd(text, end);
      /** @type {any} */ (range).linkwarnAction = verdict.action;
      ranges.push(range);
    }
    if (ranges.length) textRanges.set(text, ranges);
    else textRanges.delete(text);
  }

  function paintHighlights() {
    const registry = /** @type {any} */ (globalThis.CSS)?.highlights;
    const Highlight = /** @type {any} */ (globalThis).Highlight;
    if (!registry || !Highlight) return;
    const byAction = { warn: new Highlight(), block: new Highlight() };
    for (const [text, ranges] of textRanges) {
      if (!text.isConnected) {
        textRanges.delete(text);
        continue;
      }
      for (const range of ranges) byAction[/** @type {any} */ (range).linkwarnAction === "block" ? "block" : "warn"].add(range);
    }
    for (const [link, range] of editableRanges) {
      if (!link.isConnected) editableRanges.delete(link);
      else byAction[marks.get(link)?.action === "block" ? "block" : "warn"].add(range);
    }
    if (!styled && !byAction.warn.size && !byAction.block.size) return;
    if (!styled) styleHighlights();
    registry.set(HIGHLIGHT.warn, byAction.warn);
    registry.set(HIGHLIGHT.block, byAction.block);
  }

  /**
   * The highlight styles, in the page (a highlight is styled by its name, which is this page's own),
   * added when the first highlight is painted: a new style sheet makes the page restyle every element.
   */
  function styleHighlights() {
    styled = true;
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(
      `::highlight(${HIGHLIGHT.warn}) { background-color: #f5a62366; text-decoration: underline wavy #b26a00; }` +
        `::highlight(${HIGHLIGHT.block}) { background-color: #b3261e33; text-decoration: underline wavy #b3261e; }`,
    );
    document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
  }

  // -- following changes -------------------------------------------------------------

  const observer = new MutationObserver((mutations) => {
    for (const mutation of mutations) {
      const target = mutation.target;
      if (mutation.type === "characterData") {
        if (!target.parentElement?.closest("a")) texts.add(/** @type {Text} */ (target));
        continue;
      }
      if (mutation.type === "attributes") {
        const element = /** @type {Element} */ (target);
        if (element.localName === "base") recheckAll();
        else if (isLink(element) || marks.has(element)) links.add(element);
        continue;
      }
      for (const node of mutation.removedNodes) {
        const link = node instanceof Element ? badges.get(node) : undefined;
        if (link && link !== node) restore(link);
      }
      for (const node of mutation.addedNodes) {
        if (node instanceof Element && badges.has(node)) continue; // our own
        if (node instanceof Element && node.localName === TAG) {
          node.remove(); // a forged badge
          continue;
        }
        if (node instanceof Element && (node.localName === "base" || node.querySelector?.("base"))) recheckAll();
        if (node.nodeType === Node.ELEMENT_NODE || node.nodeType === Node.TEXT_NODE) toScan.add(node);
      }
    }
    schedule();
  });

  /** @param {Element} link */
  function restore(link) {
    const mark = marks.get(link);
    if (!mark?.badge || !mark.shown || !link.isConnected) return;
    if (!tamper(link)) return; // past RESTORES: the page is named instead of fought
    const anchor = anchorOf(link);
    if (anchor && !mark.badge.isConnected) anchor.after(mark.badge);
  }

  function recheckAll() {
    for (const root of roots) {
      if ("querySelectorAll" in root) {
        for (const link of /** @type {ParentNode} */ (root).querySelectorAll("a, area")) if (isLink(link)) links.add(link);
      }
    }
    schedule();
  }

  // What this frame has marked, for the extension's own tests: a global of this isolated world,
  // which the page's scripts cannot reach.
  // `{links: false}`: only the counts, cheap enough to poll on a page with thousands of marks.
  /** @type {any} */ (globalThis).linkwarnMarks = ({ links: details = true } = {}) => ({
    busy: scheduled || toScan.size + links.size + texts.size > 0,
    known: known.size,
    marked: marks.size,
    waiting: reveal.length,
    hidden: warned,
    links: !details ? null : [...marks.values()].map((mark) => {
      const label = mark.badge ? /** @type {HTMLElement | null} */ (shadowOf(mark.badge)?.querySelector("span") ?? null) : null;
      return {
        url: mark.url,
        action: mark.action,
        shown: mark.shown,
        badge: mark.badge ? "element" : "highlight",
        text: label ? getComputedStyle(label, "::before").content : null,
        title: label?.title ?? null,
        label: label?.getAttribute("aria-label") ?? null,
        visible: Boolean(mark.badge?.checkVisibility({ opacityProperty: true, visibilityProperty: true })),
        after: mark.badge?.previousElementSibling?.localName ?? null,
      };
    }),
    text: !details ? null : [...textRanges.values()].flat().map((range) => ({ text: range.toString(), action: /** @type {any} */ (range).linkwarnAction })),
  });

  observe(document); // the document itself, so that `document.open` does not leave it unwatched
  enqueue(document);
})();
