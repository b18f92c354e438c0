// @ts-check
/**
 * Warns before a listed link is passed on: when one is typed or pasted into an
 * editable field (a textarea, a text input, a contenteditable editor, also
 * inside open shadow roots and in same-origin frames, where this script runs
 * too), a warning appears next to the field, and stays until the link is gone.
 * When the proxy holds a post back (an `X-Linkwarn: share-...` answer), the
 * service worker tells this page, which shows a banner saying so.
 *
 * It reads the text of the field being edited, only while it is edited, and
 * only to find links in it; nothing of it leaves the browser but those links,
 * which go to the local proxy's check like any link on the page.
 */
(() => {
  const WAIT_MS = 250; // after the last keystroke before the field is checked
  const MAX_TEXT = 100_000;
  const MAX_LINKS = 50;
  /** @type {{find: (text: string, limit?: number) => {url: string}[]}} */
  const textLinks = /** @type {any} */ (globalThis).linkwarnTextLinks; // textlinks.js, run before this

  /** @type {WeakMap<Element, {timer: number, warning: HTMLElement | null}>} */
  const fields = new WeakMap();

  /** @param {EventTarget | null} target */
  function editable(target) {
    if (target instanceof HTMLTextAreaElement) return target;
    if (target instanceof HTMLInputElement && /^(?:text|search|url|email|)$/.test(target.type)) return target;
    if (target instanceof HTMLElement && target.isContentEditable) {
      /** @type {HTMLElement} */
      let root = target;
      while (root.parentElement && root.parentElement.isContentEditable) root = root.parentElement;
      return root;
    }
    return null;
  }

  /** @param {HTMLElement} field */
  function textOf(field) {
    const text = field instanceof HTMLTextAreaElement || field instanceof HTMLInputElement ? field.value : field.innerText;
    return text.slice(0, MAX_TEXT);
  }

  /** @param {string} text */
  function linksIn(text) {
    return [...new Set(textLinks.find(text, MAX_LINKS).map((found) => found.url))];
  }

  /** @param {HTMLElement} field */
  async function check(field) {
    const links = linksIn(textOf(field));
    let listed = [];
    if (links.length) {
      try {
        const answer = await chrome.runtime.sendMessage({ type: "check", urls: links });
        if (answer && !answer.error) {
          listed = links.filter((url) => answer.listed[url]).map((url) => ({ url, ...answer.listed[url] }));
        }
      } catch {
        return; // the extension was reloaded: nothing to say
      }
    }
    show(field, listed);
  }

  /**
   * @param {HTMLElement} field
   * @param {{url: string, action: string, reason: string | null, entry: string | null}[]} listed
   */
  function show(field, listed) {
    const state = fields.get(field);
    if (!state) return;
    if (!listed.length) {
      state.warning?.remove();
      state.warning = null;
      return;
    }
    const warning = state.warning ?? document.createElement("div");
    warning.className = "linkwarn-share";
    warning.setAttribute("role", "alert");
    const blocked = listed.some((item) => item.action === "block");
    warning.dataset.linkwarn = blocked ? "block" : "warn";
    warning.replaceChildren();
    const title = document.createElement("strong");
    title.textContent = "linkwarn: this text carries a link to leaked material. ";
    const body = document.createElement("span");
    const first = listed[0];
    body.textContent =
      `${first.url}${first.reason ? ` (${first.reason})` : ""}` +
      (listed.length > 1 ? ` and ${listed.length - 1} more` : "") +
      ". Posting it passes the leak on" +
      (blocked ? "; your organisation's proxy will not send it." : ".");
    warning.append(title, body);
    if (!state.warning) field.insertAdjacentElement("afterend", warning);
    state.warning = warning;
  }

  /** @param {Event} event */
  function edited(event) {
    const field = editable(event.composedPath()[0] ?? event.target);
    if (!field) return;
    const state = fields.get(field) ?? { timer: 0, warning: null };
    fields.set(field, state);
    clearTimeout(state.timer);
    state.timer = Number(setTimeout(() => check(field), WAIT_MS));
  }

  for (const type of ["input", "paste", "drop"]) document.addEventListener(type, edited, true);

  /** @param {string} text */
  function banner(text) {
    const shown = document.createElement("div");
    shown.className = "linkwarn-share-banner";
    shown.setAttribute("role", "alert");
    shown.textContent = text;
    const close = document.createElement("button");
    close.type = "button";
    close.textContent = "×";
    close.setAttribute("aria-label", "Close");
    close.addEventListener("click", () => shown.remove());
    shown.append(close);
    document.documentElement.append(shown);
  }

  chrome.runtime.onMessage.addListener((message, sender) => {
    if (sender.id !== chrome.runtime.id || message?.type !== "share-refused") return;
    const blocked = String(message.verdict ?? "").startsWith("share-block");
    banner(
      `linkwarn held back what you sent: it carries a link to leaked material (${String(message.entry ?? "a listed entry")}).` +
        (blocked ? " It was not sent." : " It was not sent; remove the link, or send it from the page if you must."),
    );
  });
})();
