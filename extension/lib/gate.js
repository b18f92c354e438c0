// @ts-check
/**
 * Deciding a top-level navigation before its request is sent.
 *
 * Where the extension is installed by policy, Chromium lets it hold a request in
 * a blocking `webRequest.onBeforeRequest` listener, which must answer at once:
 * so `NavigationGate.decide` is synchronous, over what the service worker
 * already holds (the proxy's key prefixes and suffix list, the plaintext
 * entries, the passes, verdicts already asked). An address it can clear is let
 * through; one a known entry lists, or one only the proxy can decide (a prefix
 * hit no plaintext entry explains: a hashed entry, an audit entry), or any
 * address while the worker has not yet read its lists back after a restart, is
 * sent to the warning page instead, which asks and either warns or goes on to
 * the address (`opens`). Nothing of it has been fetched.
 */

import { TtlCache, cacheKey } from "./cache.js";
import { decideKnown } from "./matcher.js";
import { hasPass } from "./passes.js";

/** @typedef {import("./api.js").CheckResult} CheckResult */
/** @typedef {import("./rules.js").RuleEntry} RuleEntry */
/** @typedef {import("./rules.js").EntryIndex} EntryIndex */
/** @typedef {import("./passes.js").Pass} Pass */
/** @typedef {import("./matcher.js").Matcher} Matcher */
/** @typedef {import("./cache.js").TtlCache<CheckResult>} VerdictCache */

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
    /** Addresses the warning page was told to go on to (`opens`): let through, so the two can never disagree in a loop. */
    this.cleared = new TtlCache(1000, 30_000);
    /** @type {string | null} the settings' mode; null until read */
    this.mode = null;
    /** @type {Record<string, Pass> | null} null until read */
    this.passes = null;
    /** @type {EntryIndex | null} the plaintext entries; null until read */
    this.known = null;
    /** Whether the prefixes were read back (`lists.matcher` stays null when none ever arrived). */
    this.restored = false;
  }

  /** Whether everything a decision takes has been read since the worker started. */
  get ready() {
    return this.mode !== null && this.passes !== null && this.known !== null && this.restored;
  }

  /**
   * The answer for a blocking `onBeforeRequest` listener: undefined lets the request go,
   * a redirect sends the tab to the warning page before anything is fetched.
   * @param {string} url
   * @param {number} [now]
   * @returns {{redirectUrl: string} | undefined}
   */
  decide(url, now = Date.now()) {
    const stop = { redirectUrl: `${this.warningUrl}#${url}` };
    if (!this.ready) return stop; // the warning page asks, and goes on if the address is clear
    const passes = /** @type {Record<string, Pass>} */ (this.passes);
    const mode = /** @type {string} */ (this.mode);
    if (mode !== "warn") return undefined;
    const key = cacheKey(url);
    if (this.cleared.get(key)) return undefined;
    const asked = this.verdicts.get(key);
    if (asked) return opens(asked, passes, mode, now) ? undefined : stop;
    const known = /** @type {EntryIndex} */ (this.known);
    const matcher = this.lists.matcher;
    if (!matcher) {
      // No prefixes ever arrived (the popup says NOT PROTECTING): the plaintext entries only.
      const entry = known.match(url, now);
      return entry && (entry.action === "block" || (entry.action === "warn" && !this.#passed(entry.expression, now))) ? stop : undefined;
    }
    const found = matcher.lookupNow(key);
    if (found.kind === "unlisted" || found.kind === "invalid") return undefined;
    if (found.kind === "ask") return stop;
    const { winner, unexplained } = decideKnown(found, known.byExpression, now);
    if (unexplained) return stop; // only the proxy knows which entry that key is
    if (!winner || winner.action === "allow" || winner.action === "audit") return undefined;
    if (winner.action === "warn") {
      const hit = found.hits.find((h) => h.expression === winner.expression);
      if (hit && hasPass(passes, hit.key, now)) return undefined;
    }
    return stop;
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
