// @ts-check
/**
 * Marks listed links on the page, including links added later (timelines,
 * single-page apps): a badge after the link, the reason on hover.
 *
 * Links are gathered as the page changes, looked up in batches through the
 * service worker (which caches), and marked in small slices of work so that a
 * page with thousands of links stays responsive. It never reads the page's
 * text, only link addresses.
 */
(() => {
  const SLICE = 300; // links handled per task before yielding to the page
  const BATCH = 500; // URLs per lookup message
  const BADGE_CLASS = "linkwarn-badge";
  const LINKS = "a[href], area[href]";

  /** @type {Map<string, {action: string, reason: string | null, entry: string | null} | null>} */
  const known = new Map();
  /** @type {Set<HTMLAnchorElement | HTMLAreaElement>} */
  const queue = new Set();
  /** @type {WeakMap<Element, {url: string, badge: HTMLElement | null}>} */
  const marked = new WeakMap();
  let scheduled = false;

  /** @param {string} href */
  function keyOf(href) {
    const hash = href.indexOf("#");
    return hash === -1 ? href : href.slice(0, hash);
  }

  /** @param {ParentNode} root */
  function collect(root) {
    if (root instanceof HTMLAnchorElement || root instanceof HTMLAreaElement) queue.add(root);
    if ("querySelectorAll" in root) {
      for (const link of root.querySelectorAll(LINKS)) queue.add(/** @type {HTMLAnchorElement} */ (link));
    }
    schedule();
  }

  function schedule() {
    if (scheduled || queue.size === 0) return;
    scheduled = true;
    setTimeout(work, 0);
  }

  const yieldToPage = () => new Promise((resolve) => setTimeout(resolve, 0));

  async function work() {
    try {
      while (queue.size) {
        const links = [...queue];
        queue.clear();
        /** @type {Set<string>} */
        const unknown = new Set();
        for (let i = 0; i < links.length; i++) {
          const link = links[i];
          if (!link.isConnected || !/^https?:/.test(link.href)) continue;
          const key = keyOf(link.href);
          if (!known.has(key)) unknown.add(key);
          if (i % SLICE === SLICE - 1) await yieldToPage();
        }
        const ask = [...unknown];
        await Promise.all(
          Array.from({ length: Math.ceil(ask.length / BATCH) }, (_, n) => lookup(ask.slice(n * BATCH, (n + 1) * BATCH))),
        );
        for (let i = 0; i < links.length; i++) {
          apply(links[i]);
          if (i % SLICE === SLICE - 1) await yieldToPage();
        }
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

  /** @param {HTMLAnchorElement | HTMLAreaElement} link */
  function apply(link) {
    if (!link.isConnected) return;
    const key = /^https?:/.test(link.href) ? keyOf(link.href) : "";
    const verdict = key ? known.get(key) : null;
    const before = marked.get(link);
    if (before && before.url === key && verdict) return;
    if (before) {
      before.badge?.remove();
      link.removeAttribute("data-linkwarn");
      marked.delete(link);
    }
    if (!verdict) return;
    const badge = document.createElement("span");
    badge.className = BADGE_CLASS;
    badge.dataset.linkwarn = verdict.action;
    badge.textContent = verdict.action === "block" ? "⊘ blocked" : "⚠ listed";
    const why = verdict.reason || `listed: ${verdict.entry ?? "this address"}`;
    badge.title = `linkwarn — ${verdict.action === "block" ? "blocked" : "warning"}: ${why}`;
    badge.setAttribute("role", "note");
    link.setAttribute("data-linkwarn", verdict.action);
    if (link instanceof HTMLAnchorElement) link.insertAdjacentElement("afterend", badge);
    marked.set(link, { url: key, badge: link instanceof HTMLAnchorElement ? badge : null });
  }

  const observer = new MutationObserver((mutations) => {
    for (const mutation of mutations) {
      if (mutation.type === "attributes") {
        const target = /** @type {Element} */ (mutation.target);
        if (target.matches(LINKS)) collect(target);
        continue;
      }
      for (const node of mutation.addedNodes) {
        if (node.nodeType === Node.ELEMENT_NODE && !(/** @type {Element} */ (node).classList.contains(BADGE_CLASS))) {
          collect(/** @type {Element} */ (node));
        }
      }
    }
  });
  observer.observe(document.documentElement, { childList: true, subtree: true, attributes: true, attributeFilter: ["href"] });
  collect(document);
})();
