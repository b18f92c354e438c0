// @ts-check
/**
 * Which displays of the warning page are the extension's own: only such a display is
 * recorded as a warning shown. A page that loads the warning page itself (at its dynamic
 * address, were it to leak) shows a person a warning, but writes nothing into IT's log.
 *
 * A tab is marked when the worker sends it there (`sentThere`), and when the browser's
 * rules or the navigation gate redirect it: the warning page's request then follows, in
 * the same tab, the request of that very address (`watch`). The browser reports the rules'
 * redirect itself only when the navigation did not reach the address through a site's
 * redirect, so the requests are compared instead. Marks are kept in session storage, one
 * key per tab: the worker may be stopped between the redirect and the page's message.
 */

import { cacheKey } from "./cache.js";

/** @param {number} tabId */
const keyOf = (tabId) => `sent:${tabId}`;

/** Mark *tabId* as sent to the warning page for *url*. @param {number} tabId @param {string} url */
export async function sentThere(tabId, url) {
  await chrome.storage.session.set({ [keyOf(tabId)]: cacheKey(url) });
}

/** Whether the extension sent *tabId* to the warning page for *url*; asked once. @param {number} tabId @param {string} url */
export async function wasSent(tabId, url) {
  const key = keyOf(tabId);
  const ours = (await chrome.storage.session.get(key))[key] === cacheKey(url);
  if (ours) await chrome.storage.session.remove(key);
  return ours;
}

/**
 * Follow top-level requests, marking the tabs the extension redirected.
 * @param {(url: string) => string | null} warnedAbout  the listed address a warning page's URL names, or null
 */
export function watch(warnedAbout) {
  /** @type {Map<number, string>} each tab's last top-level request to a web address */
  const lastRequest = new Map();
  chrome.webRequest.onBeforeRequest.addListener(
    (details) => {
      const listed = details.tabId >= 0 ? warnedAbout(details.url) : null;
      if (listed === null) {
        if (details.tabId >= 0 && /^https?:/.test(details.url)) lastRequest.set(details.tabId, details.url);
      } else if (cacheKey(lastRequest.get(details.tabId) ?? "") === cacheKey(listed)) {
        void sentThere(details.tabId, listed);
      }
      return undefined;
    },
    { urls: ["<all_urls>"], types: ["main_frame"] },
  );
  chrome.tabs.onRemoved.addListener((tabId) => {
    lastRequest.delete(tabId);
    void chrome.storage.session.remove(keyOf(tabId));
  });
}
