// @ts-check
/**
 * Entries the browser can enforce by itself: declarativeNetRequest rules, and
 * the same precedence for matching a URL against known entries when the proxy
 * cannot be asked.
 *
 * The proxy is the one implementation of Safe Browsing canonicalization; this
 * module does not repeat it. Its matcher (`EntryIndex`) normalizes a URL the way
 * the browser's URL parser does (case, IPv4 spellings, dot segments, default
 * ports) plus unreserved percent-escapes, and derives lookup expressions as the
 * proxy does. It answers only while the proxy is unreachable.
 *
 * Precedence follows the proxy: the longer path wins, then the longer host,
 * then a local entry over a feed's, then allow > block > warn. `priorityOf`
 * encodes that order as one integer, which is also the rule priority the
 * browser compares, so a proceed pass, an allow or a more specific entry wins
 * in the browser exactly as it would in the proxy.
 */

/** @typedef {"block" | "warn" | "allow" | "audit"} RuleAction */
/**
 * @typedef {object} RuleEntry
 * @property {string} expression  host/, host/dir/, host/page or host/page?query
 * @property {RuleAction} action
 * @property {boolean} local       listed on this proxy rather than by a feed
 * @property {string} [reason]
 * @property {string} [list]
 * @property {number | null} [expires_at]
 */

/** At equal specificity: allow > block > a proceed pass > warn > audit. */
export const ACTION_RANK = Object.freeze({ allow: 4, block: 3, proceed: 2, warn: 1, audit: 0 });

/** Regex rules a browser allows per extension is 1000; leave room for proceed passes. */
export const MAX_REGEX_RULES = 900;
/** Only top-level pages: a frame or a subresource is the proxy's to refuse. */
export const RESOURCE_TYPES = /** @type {chrome.declarativeNetRequest.ResourceType[]} */ (["main_frame"]);
const MAX_PATH = 4095;
const MAX_HOST = 255;

/**
 * @param {string} expression
 * @returns {{host: string, path: string}}
 */
export function splitExpression(expression) {
  const slash = expression.indexOf("/");
  if (slash <= 0) throw new Error(`not an expression (host/path): ${JSON.stringify(expression)}`);
  return { host: expression.slice(0, slash), path: expression.slice(slash) };
}

/**
 * The rule priority of an entry: bigger wins.
 * @param {string} expression
 * @param {boolean} local
 * @param {keyof typeof ACTION_RANK} action
 */
export function priorityOf(expression, local, action) {
  const { host, path } = splitExpression(expression);
  const specificity = Math.min(path.length, MAX_PATH) * (MAX_HOST + 1) + Math.min(host.length, MAX_HOST);
  return (specificity * 2 + (local ? 1 : 0)) * 5 + ACTION_RANK[action];
}

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

/** @param {string} host */
function isIp(host) {
  return IPV4.test(host) || host.startsWith("[");
}

/** @param {string} text */
function escapeRegex(text) {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

/**
 * The regular expression (RE2 syntax, also valid in JavaScript) matching every
 * http(s) URL the expression covers, from the scheme to the end.
 * @param {string} expression
 */
export function regexFor(expression) {
  const { host, path } = splitExpression(expression);
  const hostPart = isIp(host) ? escapeRegex(host) : `([^/?#]*\\.)?${escapeRegex(host)}`;
  const start = `^https?://${hostPart}(:[0-9]+)?`;
  if (path.endsWith("/")) return `${start}${escapeRegex(path)}.*`;
  if (path.includes("?")) return `${start}${escapeRegex(path)}$`;
  return `${start}${escapeRegex(path)}(\\?.*)?$`;
}

/**
 * Whether a host-only expression can be a `requestDomains` condition.
 * @param {string} expression
 */
function isDomainEntry(expression) {
  const { host, path } = splitExpression(expression);
  return path === "/" && !isIp(host);
}

/**
 * The declarativeNetRequest rules for *entries*: host entries grouped by
 * priority into `requestDomains` rules, path entries one regex rule each, until
 * `maxRegexRules` is reached. Block and warn redirect the page to the warning
 * page with the blocked URL after `#`; allow rules let it through.
 *
 * @param {RuleEntry[]} entries
 * @param {{warningUrl: string, firstId?: number, maxRegexRules?: number, now?: number}} options
 * @returns {{rules: chrome.declarativeNetRequest.Rule[], covered: Set<string>, uncovered: string[]}}
 */
export function buildRules(entries, { warningUrl, firstId = 1, maxRegexRules = MAX_REGEX_RULES, now = Date.now() }) {
  /** @type {chrome.declarativeNetRequest.Rule[]} */
  const rules = [];
  const covered = new Set();
  /** @type {string[]} */
  const uncovered = [];
  /** @type {Map<number, {action: RuleAction, domains: string[]}>} */
  const groups = new Map();
  /** @type {RuleEntry[]} */
  const paths = [];
  for (const entry of entries) {
    if (entry.expires_at != null && entry.expires_at * 1000 <= now) continue;
    if (!["block", "warn", "allow"].includes(entry.action)) continue; // audit only logs
    if (isDomainEntry(entry.expression)) {
      const priority = priorityOf(entry.expression, entry.local, entry.action);
      const group = groups.get(priority) ?? { action: entry.action, domains: [] };
      group.domains.push(splitExpression(entry.expression).host);
      groups.set(priority, group);
      covered.add(entry.expression);
    } else {
      paths.push(entry);
    }
  }
  let id = firstId;
  let regexRules = 0;
  const redirect = { type: /** @type {const} */ ("redirect"), redirect: { regexSubstitution: `${warningUrl}#\\0` } };
  const allow = { type: /** @type {const} */ ("allow") };
  for (const [priority, group] of [...groups].sort((a, b) => b[0] - a[0])) {
    if (group.action === "allow") {
      rules.push({ id: id++, priority, action: allow, condition: { requestDomains: group.domains, resourceTypes: [...RESOURCE_TYPES] } });
      continue;
    }
    if (regexRules >= maxRegexRules) {
      uncovered.push(...group.domains.map((host) => `${host}/`));
      group.domains.forEach((host) => covered.delete(`${host}/`));
      continue;
    }
    regexRules++;
    rules.push({
      id: id++,
      priority,
      action: redirect,
      condition: { regexFilter: "^https?://.*", requestDomains: group.domains, resourceTypes: [...RESOURCE_TYPES] },
    });
  }
  for (const entry of paths) {
    if (regexRules >= maxRegexRules) {
      uncovered.push(entry.expression);
      continue;
    }
    regexRules++;
    rules.push({
      id: id++,
      priority: priorityOf(entry.expression, entry.local, entry.action),
      action: entry.action === "allow" ? allow : redirect,
      condition: { regexFilter: regexFor(entry.expression), isUrlFilterCaseSensitive: true, resourceTypes: [...RESOURCE_TYPES] },
    });
    covered.add(entry.expression);
  }
  return { rules, covered, uncovered };
}

/**
 * The rule that lets a proceed pass through: the entry's own condition, ranked
 * just above it, so a more specific entry (or an equal block or allow) still wins.
 * @param {RuleEntry} entry
 * @param {number} id
 * @returns {chrome.declarativeNetRequest.Rule}
 */
export function passRule(entry, id) {
  const condition = isDomainEntry(entry.expression)
    ? { requestDomains: [splitExpression(entry.expression).host], resourceTypes: [...RESOURCE_TYPES] }
    : { regexFilter: regexFor(entry.expression), isUrlFilterCaseSensitive: true, resourceTypes: [...RESOURCE_TYPES] };
  return { id, priority: priorityOf(entry.expression, entry.local, "proceed"), action: { type: "allow" }, condition };
}

/**
 * Whether the browser's own rule for *expression* catches *url*: then the
 * request is redirected before it leaves, and nothing else need act.
 * @param {string} url
 * @param {string} expression
 */
export function ruleCatches(url, expression) {
  if (isDomainEntry(expression)) {
    let hostname;
    try {
      hostname = new URL(url).hostname;
    } catch {
      return false;
    }
    const host = splitExpression(expression).host;
    return /^https?:/.test(url) && (hostname === host || hostname.endsWith(`.${host}`));
  }
  return new RegExp(regexFor(expression)).test(url);
}

/** @param {string} path */
function unescapeUnreserved(path) {
  return path.replace(/%([0-9a-fA-F]{2})/g, (escape, hex) => {
    const char = String.fromCharCode(parseInt(hex, 16));
    return /[A-Za-z0-9\-._~]/.test(char) ? char : escape.toUpperCase();
  });
}

/**
 * The lookup expressions of *url*, most specific first, or null when it is not
 * an http(s) URL. Hosts: the exact host and its parent domains down to two
 * labels (at most five in all; an IP only itself). Paths: the path with its
 * query, the path, and up to four prefixes ending in "/".
 * @param {string} raw
 * @returns {string[] | null}
 */
export function urlExpressions(raw) {
  let url;
  try {
    url = new URL(raw);
  } catch {
    return null;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return null;
  const host = url.hostname.replace(/\.+$/, "");
  if (!host) return null;
  /** @type {string[]} */
  const hosts = [host];
  if (!isIp(host)) {
    const labels = host.split(".");
    for (let keep = Math.min(labels.length - 1, 5); keep >= 2 && hosts.length < 5; keep--) {
      hosts.push(labels.slice(labels.length - keep).join("."));
    }
  }
  const path = unescapeUnreserved(url.pathname);
  /** @type {string[]} */
  const paths = [];
  if (url.search.length > 1) paths.push(path + url.search);
  paths.push(path);
  const segments = path.split("/").slice(1, -1);
  for (let depth = Math.min(segments.length, 3); depth >= 0; depth--) {
    const prefix = `/${segments.slice(0, depth).map((s) => `${s}/`).join("")}`;
    if (!paths.includes(prefix)) paths.push(prefix);
  }
  return hosts.flatMap((h) => paths.map((p) => h + p));
}

/** Known entries, looked up by expression: the offline answer while the proxy is unreachable. */
export class EntryIndex {
  /** @param {RuleEntry[]} entries */
  constructor(entries) {
    /** @type {Map<string, RuleEntry[]>} */
    this.byExpression = new Map();
    for (const entry of entries) {
      const list = this.byExpression.get(entry.expression) ?? [];
      list.push(entry);
      this.byExpression.set(entry.expression, list);
    }
  }

  get size() {
    return this.byExpression.size;
  }

  /**
   * The winning entry for *url*, or null.
   * @param {string} url
   * @param {number} [now] milliseconds
   * @returns {RuleEntry | null}
   */
  match(url, now = Date.now()) {
    const expressions = urlExpressions(url);
    if (!expressions) return null;
    /** @type {RuleEntry | null} */
    let best = null;
    let bestPriority = -1;
    for (const expression of expressions) {
      for (const entry of this.byExpression.get(expression) ?? []) {
        if (entry.expires_at != null && entry.expires_at * 1000 <= now) continue;
        const priority = priorityOf(entry.expression, entry.local, entry.action);
        if (priority > bestPriority) {
          best = entry;
          bestPriority = priority;
        }
      }
    }
    return best;
  }
}
