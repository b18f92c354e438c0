// @ts-check
/**
 * Deciding a top-level navigation before its request is sent.
 *
 * Where the extension is installed by policy, Chromium lets it hold a request in
 * a blocking `webRequest.onBeforeRequest` listener, which must answer at once:
 * so `NavigationGate` decides synchronously, over what the service worker
 * already holds (the proxy's key prefixes and suffix list, the plaintext
 * entries, the passes, verdicts already asked). `verdict` says:
 *
 * - "go": no entry lists the address, or it may be opened (allow, audit, a pass);
 * - "stop": a known entry lists it (block, or warn without a pass);
 * - "ask": only the proxy can say (a prefix hit no plaintext entry explains: a
 *   hashed entry, an audit entry; an address canonicalization cannot read here),
 *   or the worker has not yet read its lists back after it was started.
 *
 * A navigation is let through on "go" and sent to the warning page otherwise
 * (`decide`), which asks and either warns or goes on to the address (`opens`).
 * Nothing of it has been fetched.
 */

import { TtlCache, cacheKey } from "./cache.js";
import { decideKnown } from "./matcher.js";
import { hasPass } from "./passes.js";

/** @typedef {import("./api.js").CheckResult} CheckResult */
/** @typedef {import("./rules.js").EntryIndex} EntryIndex */
/** @typedef {import("./passes.js").Pass} Pass */
/** @typedef {import("./matcher.js").Matcher} Matcher */
/** @typedef {import("./cache.js").TtlCache<CheckResult>} VerdictCache */
/** @typedef {"go" | "stop" | "ask"} Verdict */

/**
 * Whether a verdict lets the navigation through: not a block or warn listing,
 * a warn entry this browser has a live pass for, or any address when the
 * extension only marks links.
 * @param {CheckResult} result
 * @param {Record<string, Pass>} passes
 * @param {string} mode
 * @param {number} [now]
 */
export function opens(result, passes, mode, now = Date.now()) {
  if (mode !== "warn" || !result.listed || (result.action !== "block" && result.action !== "warn")) return true;
  return result.action === "warn" && result.entry_key !== null && hasPass(passes, result.entry_key, now);
}

export class NavigationGate {
  /**
   * @param {string} warningUrl
   * @param {VerdictCache} verdicts  the proxy's answers, as the service worker caches them
   * @param {{matcher: Matcher | null}} lists  the prefixes and suffix list (`ListMirror`), as they are now
   */
  constructor(warningUrl, verdicts, lists) {
    this.warningUrl = warningUrl;
    this.verdicts = verdicts;
    this.lists = lists;
    /** Addresses the warning page was told to go on to (`opens`), let through for a while:
     * a safety net, so that the page and the gate cannot send a tab back and forth. */
    this.cleared = new TtlCache(1000, 30_000);
    /** @type {string | null} the settings' mode; null until read */
    this.mode = null;
    /** @type {Record<string, Pass> | null} null until read */
    this.passes = null;
    /** @type {EntryIndex | null} the plaintext entries; null until read */
    this.known = null;
    /** Whether the prefixes were read back (`lists.matcher` stays null when none ever arrived). */
    this.restored = false;
    /** Navigations sent to the warning page since the worker started (the popup shows it). */
    this.held = 0;
  }

  /** Whether everything a decision takes has been read since the worker started. */
  get ready() {
    return this.mode !== null && this.passes !== null && this.known !== null && this.restored;
  }

  /** Lists or passes changed: what was decided before may no longer hold. */
  forget() {
    this.cleared.clear();
  }

  /**
   * The answer for a blocking `onBeforeRequest` listener on top-level requests: undefined lets
   * the request go, a redirect sends the tab to the warning page before anything is fetched.
   * A decision that fails is a stop, never a pass. A form sent (any method but GET) where only
   * the proxy can say is cancelled: the warning page could only go on with a GET, without it.
   * @param {string} url
   * @param {string} [method]
   * @param {number} [now]
   * @returns {{redirectUrl: string} | {cancel: true} | undefined}
   */
  decide(url, method = "GET", now = Date.now()) {
    let verdict;
    try {
      verdict = this.verdict(url, now);
    } catch (error) {
      console.error("linkwarn: a navigation could not be decided:", error);
      verdict = "ask";
    }
    if (verdict === "go") return undefined;
    this.held++;
    if (verdict === "ask" && method !== "GET" && method !== "HEAD") return { cancel: true };
    return { redirectUrl: `${this.warningUrl}#${url}` };
  }

  /**
   * The answer for a frame, or for a request a site's own service worker makes for the page it
   * answers: cancelled when a known entry lists the address; what only the proxy can decide goes
   * (the proxy refuses it, and the page's commit is checked).
   * @param {string} url
   * @returns {{cancel: true} | undefined}
   */
  refuse(url) {
    try {
      if (this.verdict(url) !== "stop") return undefined;
    } catch {
      return undefined;
    }
    this.held++;
    return { cancel: true };
  }

  /**
   * @param {string} url
   * @param {number} [now]
   * @returns {Verdict}
   */
  verdict(url, now = Date.now()) {
    if (this.mode !== null && this.mode !== "warn") return "go";
    if (!this.ready) return "ask"; // the warning page asks, and goes on if the address is clear
    const passes = /** @type {Record<string, Pass>} */ (this.passes);
    const key = cacheKey(url);
    if (this.cleared.get(key)) return "go";
    const asked = this.verdicts.get(key);
    if (asked && !asked.error) return opens(asked, passes, "warn", now) ? "go" : "stop";
    const known = /** @type {EntryIndex} */ (this.known);
    const matcher = this.lists.matcher;
    if (!matcher) {
      // No prefixes ever arrived (the popup says NOT PROTECTING): the plaintext entries only.
      const entry = known.match(url, now);
      if (!entry || entry.action === "allow" || entry.action === "audit") return "go";
      return entry.action === "warn" && this.#passed(entry.expression, now) ? "go" : "stop";
    }
    const found = matcher.lookupNow(key);
    if (found.kind === "unlisted" || found.kind === "invalid") return "go";
    if (found.kind === "ask") return "ask";
    const { winner, unexplained } = decideKnown(found, known.byExpression, now);
    if (unexplained) return "ask"; // only the proxy knows which entry that key is
    if (!winner || winner.action === "allow" || winner.action === "audit") return "go";
    if (winner.action === "warn") {
      const hit = found.hits.find((h) => h.expression === winner.expression);
      if (hit && hasPass(passes, hit.key, now)) return "go";
    }
    return "stop";
  }

  /**
   * Whether a pass names *expression* (passes are keyed by the entry's key, which the
   * plaintext-only path has not computed: it compares the expression they keep).
   * @param {string} expression @param {number} now
   */
  #passed(expression, now) {
    return Object.values(/** @type {Record<string, Pass>} */ (this.passes)).some(
      (pass) => pass.expression === expression && pass.expires > now,
    );
  }
}
