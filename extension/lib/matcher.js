// @ts-check
/**
 * Deciding URLs offline as the proxy would, and keeping what that takes in
 * step with the proxy.
 *
 * `Matcher` (pure): canonicalize (canonical.js) → lookup expressions, host
 * suffixes from the proxy's suffix list (psl.js) → SHA-256 (sha256.js,
 * synchronous: a page's links make thousands of short digests) → the proxy's key
 * prefixes (prefixes.js). No prefix hit: not listed, decided here exactly as
 * the proxy decides it, hashed entries included. A hit: only the proxy can
 * confirm it (its store holds the full keys), so the caller asks `/v1/check`;
 * when it cannot, `offlineResult` decides from the plaintext entries it knows,
 * and a hit they do not explain is "listed, unconfirmed": a warning, never a pass.
 *
 * `ListMirror`: the suffix list and the prefixes, synced from the local API
 * with ETags (the prefixes by diffs), each answer checked before it replaces
 * the last good one (syntax, sorting, consistency of a diff, and SHA-256 of the
 * result against the ETag it came with), and persisted through the functions it
 * is given. A bad answer is refused and named in `problem`; the last good data
 * stays in use.
 */

import { InvalidURL, NotDecidedHere, canonicalizeForLookup, expressionsOf, hostExpressions, canonicalize } from "./canonical.js";
import { PrefixSet } from "./prefixes.js";
import { SuffixList } from "./psl.js";
import { sha256Text } from "./sha256.js";

/** @typedef {import("./canonical.js").Canonical} Canonical */
/** @typedef {import("./rules.js").RuleEntry} RuleEntry */
/** @typedef {import("./api.js").CheckResult} CheckResult */
/**
 * @typedef {{kind: "unlisted", canonical: Canonical, expressions: string[]}
 *   | {kind: "hit", canonical: Canonical, expressions: string[], hits: {expression: string, key: string}[]}
 *   | {kind: "invalid", error: string}
 *   | {kind: "ask", reason: string}} Lookup
 */

/** The SHA-256 digest of *text*'s UTF-8 bytes, as WebCrypto gives it. @param {string} text */
export async function sha256(text) {
  return sha256Text(text);
}

/** @param {Uint8Array} bytes */
export function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export class Matcher {
  /**
   * @param {SuffixList} suffixes
   * @param {PrefixSet} prefixes
   */
  constructor(suffixes, prefixes) {
    this.suffixes = suffixes;
    this.prefixes = prefixes;
    this.registrable = (/** @type {string} */ host) => suffixes.registrableDomain(host);
  }

  /**
   * What the proxy's index says of *url* (`Checker.prefilter`).
   * @param {string} url
   * @returns {Promise<Lookup>}
   */
  async lookup(url) {
    return this.lookupNow(url);
  }

  /**
   * `lookup`, synchronously: for a caller deciding many URLs in one go.
   * @param {string} url
   * @returns {Lookup}
   */
  lookupNow(url) {
    let canonical;
    try {
      canonical = canonicalizeForLookup(url);
    } catch (error) {
      if (error instanceof InvalidURL) return { kind: "invalid", error: error.message };
      if (error instanceof NotDecidedHere) return { kind: "ask", reason: error.message };
      throw error;
    }
    const expressions = expressionsOf(canonical, this.registrable);
    const hits = [];
    for (const expression of expressions) {
      const digest = sha256Text(expression);
      if (this.prefixes.hasKey(digest)) hits.push({ expression, key: hex(digest) });
    }
    return hits.length ? { kind: "hit", canonical, expressions, hits } : { kind: "unlisted", canonical, expressions };
  }

  /**
   * Whether an entry could match a URL on the host *name* (`Checker.reads_host`): its
   * own host entry's key, or a host marker, for it or a parent domain. True in doubt.
   * @param {string} name
   */
  async hostMayBeListed(name) {
    if (this.prefixes.unmarked > 0) return true;
    let canonical;
    try {
      canonical = canonicalize(name.includes(":") ? `http://[${name}]/` : `http://${name}/`);
    } catch (error) {
      if (error instanceof InvalidURL || error instanceof NotDecidedHere) return true;
      throw error;
    }
    for (const host of hostExpressions(canonical.host, canonical.isIp, this.registrable)) {
      if (this.prefixes.hasMarker(sha256Text(host)) || this.prefixes.hasKey(sha256Text(`${host}/`))) return true;
    }
    return false;
  }
}

// -- deciding among known entries, as blocklists/matching.py does ------------------------------

const PRIORITY = { allow: 3, block: 2, warn: 1, audit: 0 };

/**
 * (path rank, host rank): larger is more specific (matching.py `_ranks`).
 * @param {string} expression
 * @param {Canonical} canonical
 */
export function ranks(expression, canonical) {
  const slash = expression.indexOf("/");
  const host = expression.slice(0, slash);
  const path = expression.slice(slash);
  let pathRank;
  if (path.includes("?")) pathRank = 1_000_000;
  else if (path === canonical.path) pathRank = 999_999;
  else pathRank = path.split("/").length - 2;
  return [pathRank, host.split(".").length];
}

/** @param {number[]} a @param {number[]} b */
function compare(a, b) {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}

/**
 * The winning entry among *known* ones (plaintext, by expression) for the hits of a
 * lookup, and the most specific hit that no known entry explains (a hashed entry,
 * or a prefix that only looks like one), each null when there is none.
 * @param {{canonical: Canonical, hits: {expression: string, key: string}[]}} lookup
 * @param {Map<string, RuleEntry[]>} known
 * @param {number} now  milliseconds
 */
export function decideKnown(lookup, known, now) {
  /** @type {{entry: RuleEntry, order: number[]} | null} */
  let best = null;
  /** @type {{expression: string, key: string, rank: number[]} | null} */
  let unexplained = null;
  for (const hit of lookup.hits) {
    const rank = ranks(hit.expression, lookup.canonical);
    const entries = (known.get(hit.expression) ?? []).filter((e) => e.expires_at == null || e.expires_at * 1000 > now);
    if (!entries.length) {
      if (!unexplained || compare(rank, unexplained.rank) > 0) unexplained = { ...hit, rank };
      continue;
    }
    for (const entry of entries) {
      const order = [...rank, entry.local ? 1 : 0, PRIORITY[entry.action]];
      if (!best || compare(order, best.order) > 0) best = { entry, order };
    }
  }
  // A hit nobody explains can only be outranked by a known entry more specific than it.
  const outranked = unexplained && best && compare(best.order.slice(0, 2), unexplained.rank) > 0;
  return { winner: best ? best.entry : null, unexplained: unexplained && !outranked ? unexplained : null };
}

/**
 * The answer for *url* when the proxy cannot confirm a lookup (unreachable).
 * @param {string} url
 * @param {Lookup} lookup
 * @param {Map<string, RuleEntry[]>} known  plaintext entries from /v1/rules
 * @param {{proceedAllowed?: boolean, proceedSeconds?: number, now?: number}} [options]
 * @returns {CheckResult}
 */
export function offlineResult(url, lookup, known, { proceedAllowed = true, proceedSeconds = 900, now = Date.now() } = {}) {
  /** @type {CheckResult} */
  const result = {
    url, canonical: null, listed: false, action: null, reason: null, entry: null, entry_key: null, list: null,
    expires_at: null, may_proceed: false, proceed_ttl_seconds: null, error: null, offline: true, confirmed: true,
  };
  if (lookup.kind === "invalid") return { ...result, error: { code: "invalid_url", message: lookup.error } };
  if (lookup.kind === "ask") {
    return { ...unconfirmed(result, null, null, "warn", proceedAllowed, proceedSeconds), reason: `linkwarn could not read this address without the proxy (${lookup.reason}), and the proxy cannot be reached.` };
  }
  result.canonical = lookup.canonical.url;
  if (lookup.kind === "unlisted") return result;
  const { winner, unexplained } = decideKnown(lookup, known, now);
  if (unexplained) {
    // An entry only the proxy knows may be the winner: a warning, or the block a known entry sets.
    const action = winner && winner.action === "block" ? "block" : "warn";
    return unconfirmed(result, unexplained.expression, unexplained.key, action, proceedAllowed, proceedSeconds);
  }
  if (!winner) return result;
  const passable = winner.action === "warn" && proceedAllowed;
  return {
    ...result,
    listed: winner.action !== "allow",
    action: winner.action,
    reason: winner.reason ?? null,
    entry: winner.expression,
    entry_key: lookup.hits.find((hit) => hit.expression === winner.expression)?.key ?? null,
    list: winner.list ?? null,
    expires_at: winner.expires_at ?? null,
    may_proceed: passable,
    proceed_ttl_seconds: passable ? proceedSeconds : null,
  };
}

/**
 * @param {CheckResult} result @param {string | null} expression @param {string | null} key
 * @param {"warn" | "block"} action @param {boolean} proceedAllowed @param {number} proceedSeconds
 * @returns {CheckResult}
 */
function unconfirmed(result, expression, key, action, proceedAllowed, proceedSeconds) {
  const passable = action === "warn" && proceedAllowed;
  return {
    ...result,
    listed: true,
    action,
    reason: "Listed (unconfirmed): the proxy holds an entry for this address, and cannot be asked which.",
    entry: expression,
    entry_key: key,
    may_proceed: passable,
    proceed_ttl_seconds: passable ? proceedSeconds : null,
    confirmed: false,
  };
}

// -- keeping the suffix list and the prefixes in step with the proxy ----------------------------

/**
 * @typedef {object} Saved
 * @property {string} [pslBody]      the /v1/psl body as received
 * @property {string} [pslEtag]
 * @property {Uint8Array} [prefixes] the full set's bytes
 * @property {string} [prefixesEtag]
 * @property {number} [syncedAt]
 */
/**
 * @typedef {object} Source
 * @property {(etag?: string) => Promise<{status: number, bytes: Uint8Array | null, etag: string | null}>} psl
 * @property {(etag?: string) => Promise<{status: number, bytes: Uint8Array | null, etag: string | null}>} prefixes  since/If-None-Match: *etag*
 */

/** @param {Uint8Array} bytes */
async function etagOf(bytes) {
  return `"${hex(new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array(bytes)))).slice(0, 32)}"`;
}

export class ListMirror {
  /**
   * @param {{load: () => Promise<Saved | undefined>, save: (saved: Saved) => Promise<void>}} storage
   */
  constructor(storage) {
    this.storage = storage;
    /** @type {Saved} */
    this.saved = {};
    /** @type {SuffixList | null} */
    this.suffixes = null;
    /** @type {PrefixSet | null} */
    this.prefixes = null;
    /** @type {string | null} why the last answer was refused, or null */
    this.problem = null;
    /** @type {Matcher | null} */
    this.matcher = null;
  }

  /** Take up what was saved; what cannot be read is dropped (and synced afresh). */
  async restore() {
    const saved = (await this.storage.load()) ?? {};
    try {
      if (saved.pslBody) this.suffixes = SuffixList.fromRules(JSON.parse(saved.pslBody).rules);
      if (saved.prefixes) this.prefixes = PrefixSet.decode(saved.prefixes);
      this.saved = saved;
    } catch (error) {
      this.suffixes = this.prefixes = null;
      this.saved = {};
      this.problem = `the saved lists could not be read: ${error instanceof Error ? error.message : error}`;
    }
    this.#swap();
  }

  /** @type {Promise<void>} the sync under way: syncs run one after another */
  #syncing = Promise.resolve();

  /**
   * Bring the suffix list and the prefixes up to date. Throws only when the
   * proxy cannot be reached; a refused answer is kept in `problem`. Calls made
   * while one runs wait for it: two syncs applying the same diff to one set
   * would refuse the second.
   * @param {Source} source
   */
  sync(source) {
    const next = this.#syncing.then(() => this.#sync(source));
    this.#syncing = next.catch(() => {});
    return next;
  }

  /** @param {Source} source */
  async #sync(source) {
    /** @type {string[]} */
    const problems = [];
    const saved = { ...this.saved };
    const psl = await source.psl(saved.pslEtag);
    if (psl.status !== 304) {
      try {
        if (!psl.bytes || !psl.etag || (await etagOf(psl.bytes)) !== psl.etag) throw new Error("its ETag is not the SHA-256 of its body");
        const body = new TextDecoder("utf-8", { fatal: true }).decode(psl.bytes);
        this.suffixes = SuffixList.fromRules(JSON.parse(body).rules);
        Object.assign(saved, { pslBody: body, pslEtag: psl.etag });
      } catch (error) {
        problems.push(`the suffix list the proxy sent was refused: ${error instanceof Error ? error.message : error}`);
      }
    }
    const prefixes = await source.prefixes(this.prefixes ? saved.prefixesEtag : undefined);
    if (prefixes.status !== 304) {
      try {
        if (!prefixes.bytes || !prefixes.etag) throw new Error("no body or no ETag");
        const next = PrefixSet.isDiff(prefixes.bytes)
          ? (this.prefixes ?? PrefixSet.empty()).applyDiff(prefixes.bytes)
          : PrefixSet.decode(prefixes.bytes);
        const encoded = next.encode();
        if ((await etagOf(encoded)) !== prefixes.etag) throw new Error("the set does not match its ETag");
        this.prefixes = next;
        Object.assign(saved, { prefixes: encoded, prefixesEtag: prefixes.etag });
      } catch (error) {
        problems.push(`the prefixes the proxy sent were refused: ${error instanceof Error ? error.message : error}`);
        // Ask for the full set next time: the diff may have been against something else.
        delete saved.prefixesEtag;
      }
    }
    this.problem = problems.length ? `${problems.join("; ")}. The last good lists are kept.` : null;
    saved.syncedAt = Date.now();
    this.saved = saved;
    await this.storage.save(saved);
    this.#swap();
  }

  #swap() {
    this.matcher = this.suffixes && this.prefixes ? new Matcher(this.suffixes, this.prefixes) : null;
  }

  /** What the popup shows. */
  summary() {
    return {
      ready: this.matcher !== null,
      prefixes: this.prefixes ? this.prefixes.size : 0,
      markers: this.prefixes ? this.prefixes.markers.length : 0,
      suffixRules: this.suffixes ? this.suffixes.size : 0,
      syncedAt: this.saved.syncedAt ?? null,
      problem: this.problem,
    };
  }
}
