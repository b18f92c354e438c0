// @ts-check
/**
 * The service worker: asks the proxy's local API about URLs, keeps the
 * browser's own rules in step with the lists, guards navigations, and answers
 * the content script, the warning page and the popup.
 *
 * Messages: a content script may only ask "check"; everything else ("verdict",
 * "shown", "proceed", "report", "status") is accepted from the extension's own
 * pages only, never from a web page's context.
 */

import { ApiClient, ApiError, checkEach } from "./lib/api.js";
import { BatchLookup, TtlCache, cacheKey } from "./lib/cache.js";
import { sentThere, wasSent, watch } from "./lib/displays.js";
import { NavigationGate, opens } from "./lib/gate.js";
import { ListMirror, offlineResult } from "./lib/matcher.js";
import { FIRST_PASS_RULE_ID, freePassRuleId, hasPass, prunePasses } from "./lib/passes.js";
import { EntryIndex, buildRules, passRule, ruleCatches } from "./lib/rules.js";
import { KEYS, effectiveSettings } from "./lib/settings.js";
import * as vault from "./lib/vault.js";

/** @typedef {import("./lib/api.js").CheckResult} CheckResult */
/** @typedef {import("./lib/rules.js").RuleEntry} RuleEntry */
/** @typedef {import("./lib/passes.js").Pass} Pass */
/**
 * @typedef {object} Backend
 * @property {boolean | null} reachable  null: not asked yet
 * @property {number | null} checkedAt
 * @property {string | null} error
 * @property {any} status                /v1/status, as last seen
 */

// The warning page can be loaded from the web only at a dynamic address, new in every browser
// session (manifest: use_dynamic_url), that this worker alone hands out (its rules and
// redirects): no page can open or frame it. Once shown, it has the extension's fixed address.
const WARNING_URL = chrome.runtime.getURL("warning.html");
const OWN_ORIGIN = new URL(chrome.runtime.getURL("popup.html")).origin; // a page with no dynamic address: the fixed origin
const SHOWN_WARNING = `${OWN_ORIGIN}/warning.html`;

/** The listed address a top-level warning page shows, or null for any other page. @param {string} url */
function warnedAbout(url) {
  for (const page of [SHOWN_WARNING, WARNING_URL]) if (url.startsWith(`${page}#`)) return url.slice(page.length + 1);
  return null;
}
const REFRESH_MINUTES = 1;
const WORKER_STARTED = Date.now();
const POLICY_GRACE_MS = 30_000;
const POLICY_READ_MS = 3000;

/** A promise of *value* after *ms*. @template T @param {number} ms @param {T} value @returns {Promise<T>} */
function later(ms, value) {
  return new Promise((resolve) => setTimeout(() => resolve(value), ms));
}
const RECENT_MAX = 20;
const CHECK_MAX = 2000; // URLs per content-script message

const verdicts = /** @type {TtlCache<CheckResult>} */ (new TtlCache(20000, 5 * 60 * 1000));
// A refusal is the answer about one request, not about the address: never cached.
const lookup = new BatchLookup(askProxy, verdicts, 500, (result) => !result.error);
/** @type {Promise<{client: ApiClient, settings: import("./lib/settings.js").Settings, locked: string[], problems: string[]}> | null} */
let current = null;
/** @type {EntryIndex | null} */
let known = null;
/** @type {Set<string>} */
let covered = new Set();
// The proxy's suffix list and key prefixes: URLs without a prefix hit are decided here (lib/matcher.js).
const mirror = new ListMirror(vault);
const mirrored = mirror.restore().catch((error) => console.error("linkwarn: the saved lists could not be read:", error));
// Navigations decided before their request is sent, where the browser allows it (lib/gate.js).
const gate = new NavigationGate(WARNING_URL, verdicts, mirror);

// -- settings and the API client ---------------------------------------------------

/** The settings in force and a client for them, shared by every caller until they change. */
function configuration() {
  current ??= (async () => {
    const managed = (await stored("policy")) ?? (await readPolicy());
    const local = await chrome.storage.local.get([...KEYS]);
    const { settings, locked, problems } = effectiveSettings(managed, local);
    gate.mode = settings.mode;
    return { client: new ApiClient(settings.apiUrl, settings.apiToken), settings, locked, problems };
  })();
  return current;
}

/** @type {Promise<unknown>} the read of the policy under way: reads run one after another */
let policyRead = Promise.resolve();

/**
 * What IT set by policy. Reading managed storage can take seconds (it is slow
 * in Chromium on Linux even with no policy), so the last values read are kept
 * and used at once; a fresh read replaces them when it arrives.
 * @param {boolean} [changed]  Chromium said it changed
 * @returns {Promise<Record<string, unknown>>}
 */
function readPolicy(changed = false) {
  // Two reads at once would both see the same stored value, and the one that stored IT's settings
  // might not know the settings in force were computed without them.
  const next = policyRead.then(() => readPolicyNow(changed));
  policyRead = next.catch(() => undefined);
  return next;
}

/** @param {boolean} changed */
async function readPolicyNow(changed) {
  /** @type {Record<string, unknown>} */
  let values = {};
  const before = await stored("policy");
  try {
    // Chromium may leave a worker's first read unanswered for a long while after the browser
    // starts (a page's read is answered meanwhile): asked again then, and the settings kept.
    const answer = await Promise.race([chrome.storage.managed.get(null), later(POLICY_READ_MS, null)]);
    if (answer === null) {
      setTimeout(() => void readPolicy(changed), 1000);
      return before ?? {};
    }
    values = answer;
  } catch {
    // No managed storage here (some browsers, unpacked builds): the options page decides. A read
    // that fails after a policy was read is no reason to drop IT's settings: they stay.
    if (before !== undefined) return before;
  }
  // Chromium hands an extension its policy some seconds after the browser starts: an empty
  // answer then is no removal of IT's settings (a removal arrives as a change, or is read later).
  const early = Date.now() - WORKER_STARTED < POLICY_GRACE_MS;
  if (!changed && early && !Object.keys(values).length && before && Object.keys(before).length) return before;
  if (JSON.stringify(before) !== JSON.stringify(values)) {
    await chrome.storage.local.set({ policy: values });
    forget(); // the settings in force may have been computed from what was stored before
  }
  return values;
}

function forget() {
  current = null;
  verdicts.clear();
  void refresh();
}

chrome.storage.onChanged.addListener((changes, area) => {
  if (area === "managed") void readPolicy(true);
  else if (area === "local" && KEYS.some((key) => key in changes)) forget();
});
// Chromium loads an extension's policy seconds after it starts (after a force-install, with no
// change event): read it again a few times, and at every refresh.
for (const seconds of [0, 2, 5, 10, 20]) setTimeout(() => void readPolicy(), seconds * 1000);

// -- backend state and the toolbar badge ---------------------------------------------

/**
 * What the extension stored under *key* (backend, rules, passes, recent).
 * @param {string} key
 * @returns {Promise<any>}
 */
async function stored(key) {
  return (await chrome.storage.local.get(key))[key];
}

/** @returns {Promise<Backend>} */
async function backend() {
  return (await stored("backend")) ?? { reachable: null, checkedAt: null, error: null, status: null };
}

/** @param {Partial<Backend>} change */
async function setBackend(change) {
  const before = await backend();
  const after = { ...before, ...change, checkedAt: Date.now() };
  await chrome.storage.local.set({ backend: after });
  if (before.reachable !== after.reachable || before.error !== after.error || change.status) await showBadge(after);
}

/** @param {Backend} state */
async function showBadge(state) {
  const { settings } = await configuration();
  if (state.reachable === false) {
    await chrome.action.setBadgeText({ text: "!" });
    await chrome.action.setBadgeBackgroundColor({ color: "#b3261e" });
    await chrome.action.setTitle({
      title: `linkwarn: cannot reach the proxy at ${settings.apiUrl} (${state.error}). Links it already listed are still marked.`,
    });
  } else if (state.status && state.status.stale) {
    await chrome.action.setBadgeText({ text: "old" });
    await chrome.action.setBadgeBackgroundColor({ color: "#b26a00" });
    await chrome.action.setTitle({ title: "linkwarn: the lists are past their expiry (stale)" });
  } else {
    await chrome.action.setBadgeText({ text: "" });
    const entries = state.status ? ` (${state.status.index_entries} entries)` : "";
    await chrome.action.setTitle({ title: `linkwarn: protecting${entries}` });
  }
}

/** @param {unknown} error */
function describe(error) {
  return error instanceof Error ? error.message : String(error);
}

// -- lookups ----------------------------------------------------------------------------

/** @param {string[]} urls */
async function askProxy(urls) {
  const { client } = await configuration();
  try {
    const results = await checkEach((batch) => client.check(batch), urls);
    void setBackend({ reachable: true, error: null });
    return results;
  } catch (error) {
    if (error instanceof ApiError && (error.code === "unreachable" || error.code === "timeout")) {
      void setBackend({ reachable: false, error: describe(error) });
    }
    throw error;
  }
}

async function knownEntries() {
  if (!known) {
    const rules = await stored("rules");
    known = gate.known = new EntryIndex(rules?.entries ?? []);
    covered = new Set(rules?.covered ?? []);
  }
  return known;
}

/** @param {string} text */
async function sha256Hex(text) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * What is known about *url* without the proxy. With the proxy's prefixes: its
 * decision for the lookup (`offlineResult`: a hit it cannot confirm is listed,
 * unconfirmed). Before the first sync: the plaintext entries it last sent.
 * @param {string} url
 * @param {import("./lib/matcher.js").Lookup | undefined} found  the lookup through the prefixes
 * @returns {Promise<CheckResult>}
 */
async function offlineVerdict(url, found) {
  const status = (await backend()).status;
  if (found) {
    return offlineResult(url, found, (await knownEntries()).byExpression, {
      proceedAllowed: status?.proceed_allowed !== false,
      proceedSeconds: status?.proceed_ttl_seconds ?? 900,
    });
  }
  const entry = (await knownEntries()).match(url);
  const listed = entry !== null && entry.action !== "allow";
  return {
    url,
    canonical: null,
    listed,
    action: entry ? entry.action : null,
    reason: entry?.reason ?? null,
    entry: entry?.expression ?? null,
    entry_key: entry ? await sha256Hex(entry.expression) : null,
    list: entry?.list ?? null,
    expires_at: entry?.expires_at ?? null,
    may_proceed: entry?.action === "warn" && status?.proceed_allowed !== false,
    proceed_ttl_seconds: entry?.action === "warn" ? status?.proceed_ttl_seconds ?? 900 : null,
    error: null,
    offline: true,
  };
}

/**
 * Verdicts for *urls* by cache key. A URL with no prefix hit is decided here, as
 * the proxy would; the proxy is asked about the rest (through the cache and in
 * batches), and when it cannot be, `offlineVerdict` answers.
 * @param {string[]} urls
 * @returns {Promise<Map<string, CheckResult>>}
 */
async function check(urls) {
  await mirrored;
  const matcher = mirror.matcher;
  /** @type {Map<string, CheckResult>} */
  const found = new Map();
  /** @type {Map<string, import("./lib/matcher.js").Lookup>} */
  const lookups = new Map();
  /** @type {Set<string>} */
  const ask = new Set();
  for (const url of urls) {
    const key = cacheKey(url);
    if (found.has(key) || ask.has(key)) continue;
    if (!matcher) {
      ask.add(key);
      continue;
    }
    const result = await matcher.lookup(key);
    lookups.set(key, result);
    if (result.kind === "hit" || result.kind === "ask") ask.add(key);
    else found.set(key, offlineResult(key, result, new Map()));
  }
  if (!ask.size) return found;
  try {
    for (const [key, result] of await lookup.lookup([...ask])) {
      // A URL the proxy refused (its own error, not an outage) is decided here, and says so.
      found.set(key, result.error ? { ...(await offlineVerdict(key, lookups.get(key))), error: result.error } : result);
    }
  } catch {
    for (const key of ask) found.set(key, await offlineVerdict(key, lookups.get(key)));
  }
  return found;
}

// -- the browser's own rules ---------------------------------------------------------------

/** Fetch the entries a browser can enforce and replace the dynamic rules in one call. */
async function syncRules() {
  const { client, settings } = await configuration();
  const saved = await stored("rules");
  const sameMode = saved?.mode === settings.mode;
  const answer = await client.rules(sameMode ? saved?.etag : undefined);
  const entries = answer.status === 304 ? saved.entries : answer.body.entries;
  await inTurn(async () => {
    const { built, rules } = await applyRules(entries, settings.mode);
    const record = {
      entries,
      etag: answer.status === 304 ? saved.etag : answer.etag,
      mode: settings.mode,
      covered: settings.mode === "warn" ? [...built.covered] : [],
      uncovered: built.uncovered.length,
      truncated: answer.status === 304 ? saved.truncated : answer.body.truncated,
      rules: rules.length,
      warningUrl: WARNING_URL,
      syncedAt: Date.now(),
    };
    await chrome.storage.local.set({ rules: record });
    known = gate.known = new EntryIndex(entries);
    covered = new Set(record.covered);
    if (record.etag !== saved?.etag || record.mode !== saved?.mode) listsChanged();
  });
}

/** @type {Promise<unknown>} the change of the browser's rules under way: one after the other */
let rulesChanging = Promise.resolve();

/**
 * Run *change* once the one before it has ended: two writers of the rules at once would
 * both read the same rule ids and collide, or write an older record over a newer one.
 * @template T
 * @param {() => Promise<T>} change
 * @returns {Promise<T>}
 */
function inTurn(change) {
  const next = rulesChanging.then(change);
  rulesChanging = next.catch(() => undefined);
  return next;
}

/** What the lists said before has changed: verdicts kept from then no longer hold. */
function listsChanged() {
  verdicts.clear();
  gate.forget();
}

/**
 * Replace the list's dynamic rules by those for *entries* in one call.
 * @param {RuleEntry[]} entries @param {string} mode
 */
async function applyRules(entries, mode) {
  const built = buildRules(entries, { warningUrl: WARNING_URL });
  const rules = mode === "warn" ? built.rules : [];
  const existing = await chrome.declarativeNetRequest.getDynamicRules();
  await chrome.declarativeNetRequest.updateDynamicRules({
    removeRuleIds: existing.map((rule) => rule.id).filter((id) => id < FIRST_PASS_RULE_ID),
    addRules: rules,
  });
  return { built, rules };
}

/**
 * The rules kept from the last session redirect to that session's address of the warning
 * page, which is gone: point them at this one before anything else, proxy or not.
 */
function repointRules() {
  return inTurn(async () => {
    const saved = await stored("rules");
    if (!saved || saved.warningUrl === WARNING_URL) return;
    await applyRules(saved.entries, saved.mode);
    await chrome.storage.local.set({ rules: { ...saved, warningUrl: WARNING_URL } });
  });
}

/**
 * Take an expired pass's rule away at its time: a timer while the service worker runs, and an
 * alarm for when it was stopped (it prunes again when it starts).
 * @param {number} expires
 */
function endPassAt(expires) {
  setTimeout(() => void prune(), Math.max(0, expires - Date.now()) + 10);
  void chrome.alarms.create(`pass-${expires}`, { when: expires + 10 });
}

async function prune() {
  const passes = (await stored("passes")) ?? {};
  const { live, expiredRuleIds } = prunePasses(passes);
  if (Object.keys(live).length !== Object.keys(passes).length) gate.forget(); // a pass ended
  if (expiredRuleIds.length) await chrome.declarativeNetRequest.updateSessionRules({ removeRuleIds: expiredRuleIds });
  await chrome.storage.local.set({ passes: live });
  gate.passes = live;
  return live;
}

/** Ask the proxy how it is, and bring the rules, the suffix list and the prefixes up to date. */
async function refresh() {
  void readPolicy(); // not awaited: Chromium can take long to answer it
  await prune();
  try {
    const { client } = await configuration();
    const status = await client.status();
    await setBackend({ reachable: true, error: null, status });
    await syncRules();
    await syncMirror(client);
  } catch (error) {
    await setBackend({ reachable: false, error: describe(error) });
  }
}

/**
 * The suffix list and the prefixes (lib/matcher.js `ListMirror`); a refused answer
 * keeps the last good data and is named in the popup and the console.
 * @param {ApiClient} client
 */
async function syncMirror(client) {
  await mirrored;
  const before = mirror.saved.prefixesEtag;
  try {
    await mirror.sync({ psl: (etag) => client.psl(etag), prefixes: (etag) => client.prefixes(etag) });
  } catch (error) {
    if (error instanceof ApiError && (error.code === "unreachable" || error.code === "timeout")) throw error;
    mirror.problem = `the proxy did not send its lists (${describe(error)}). The last good lists are kept.`;
  }
  if (mirror.saved.prefixesEtag !== before) listsChanged();
  if (mirror.problem) console.warn("linkwarn:", mirror.problem);
}

chrome.runtime.onInstalled.addListener(() => {
  void chrome.alarms.create("refresh", { periodInMinutes: REFRESH_MINUTES });
  void refresh();
});
chrome.runtime.onStartup.addListener(() => void refresh());
chrome.alarms.onAlarm.addListener((alarm) => {
  if (alarm.name === "refresh") void refresh();
  if (alarm.name.startsWith("pass-")) void prune();
});

// -- navigations ------------------------------------------------------------------------------

/**
 * Whether this install may hold requests (blocking `webRequest`: Chromium grants it to an
 * extension installed by policy, Firefox to any). Where it may not, the listener below is
 * registered all the same and its answers are ignored by the browser: navigations are then
 * checked as they start (`guardNavigation`). Null until the browser has said.
 * @type {boolean | null}
 */
let holding = null;
const holds = (
  registerGate() ? chrome.permissions.contains({ permissions: ["webRequestBlocking"] }) : Promise.resolve(false)
).then(
  (granted) => (holding = granted),
  () => (holding = false),
);
function registerGate() {
  try {
    chrome.webRequest.onBeforeRequest.addListener(
      (details) => {
        if (holding === false) return undefined;
        const answer = gate.decide(details.url, details.method);
        // A form sent where only the proxy can say is cancelled, not turned into a GET; asked now,
        // it goes at once when sent again.
        if (answer && "cancel" in answer) check([details.url]).catch(() => undefined);
        return answer;
      },
      { urls: ["http://*/*", "https://*/*"], types: ["main_frame"] },
      ["blocking"],
    );
    // A site's own service worker fetches what a page it controls navigates to: Chromium reports
    // that as the worker's request, of no tab and no frame type, and neither the rules nor the
    // listener above see it. A listed address is cancelled there (the navigation fails, and its
    // commit is replaced by the warning page), and so is a frame of one.
    const refuse = (/** @type {chrome.webRequest.OnBeforeRequestDetails} */ details) =>
      holding === false ? undefined : gate.refuse(details.url);
    const web = ["http://*/*", "https://*/*"];
    chrome.webRequest.onBeforeRequest.addListener(refuse, { urls: web, types: ["xmlhttprequest", "other"], tabId: -1 }, ["blocking"]);
    chrome.webRequest.onBeforeRequest.addListener(refuse, { urls: web, types: ["sub_frame", "object"] }, ["blocking"]);
    return true;
  } catch (error) {
    console.warn("linkwarn: navigations cannot be held here:", describe(error));
    return false; // a browser that refuses the listener outright
  }
}
/** What the gate decides with, read back when the worker starts. */
const started = Promise.allSettled([
  repointRules(),
  configuration(),
  knownEntries(),
  stored("passes").then((passes) => (gate.passes ??= passes ?? {})),
  mirrored.then(() => (gate.restored = true)),
]).then((outcomes) => {
  for (const outcome of outcomes) if (outcome.status === "rejected") console.error("linkwarn: at start:", outcome.reason);
});
// A stopped worker cannot decide at once when it wakes: every address then goes through the
// warning page (which asks, and goes on). Extension calls keep a running worker from stopping.
void holds.then((held) => held && setInterval(() => void chrome.runtime.getPlatformInfo(), 25_000));

/**
 * The warning page for a listed top-level navigation that the browser's rules
 * did not already catch (hashed entries, entries past the rule limits, URLs
 * spelled so that only the proxy's canonicalization recognizes them).
 * @param {number} tabId
 * @param {string} url
 * @param {boolean} [failed]  the navigation ended in an error: its request may be one the browser's
 *   rules never saw (a site's worker made it), and the address is no page the tab showed
 */
async function guardNavigation(tabId, url, failed = false) {
  const { settings } = await configuration();
  if (settings.mode !== "warn") return;
  const result = (await check([url])).get(cacheKey(url));
  if (!result || !result.listed || (result.action !== "block" && result.action !== "warn")) {
    if (result && !failed) cleared.set(tabId, url);
    return;
  }
  const passes = (await stored("passes")) ?? {};
  if (result.action === "warn" && result.entry_key && hasPass(passes, result.entry_key)) return;
  await knownEntries();
  if (!failed && result.entry && covered.has(result.entry) && ruleCatches(url, result.entry)) return;
  await sentThere(tabId, url);
  await chrome.tabs.update(tabId, { url: `${WARNING_URL}#${url}` });
}

watch(warnedAbout);

/**
 * Go back from the warning page, past the listed page: to the last page the tab showed
 * that no list names (a new navigation, so neither the history nor the back/forward cache
 * can return the listed page). Where that is not known, back through the history, stepping
 * over the listed page.
 * @param {number} tabId
 * @param {string} url  the listed address
 */
async function leave(tabId, url) {
  const before = cleared.get(tabId);
  if (before !== undefined) {
    await chrome.tabs.update(tabId, { url: before }); // the last page it showed that no list names
    return;
  }
  leaving.set(tabId, cacheKey(url)); // that page is not known (the worker restarted): step back past it
  try {
    await chrome.tabs.goBack(tabId);
  } catch {
    leaving.delete(tabId);
    await chrome.tabs.update(tabId, { url: "about:blank" }); // nothing before it: a blank page, not the listed one
  }
}

/** @type {Map<number, string>} tabs going back from a warning: the listed address they skip */
const leaving = new Map();
/** @type {Map<number, string>} each tab's last top-level address that no list names */
const cleared = new Map();
chrome.tabs.onRemoved.addListener((tabId) => {
  cleared.delete(tabId);
  leaving.delete(tabId);
});

/** @param {{tabId: number, frameId: number, url: string}} details */
function onNavigation(details) {
  if (details.frameId !== 0 || !/^https?:/.test(details.url)) return;
  const skipping = leaving.get(details.tabId);
  if (skipping !== undefined) {
    if (skipping === cacheKey(details.url)) {
      chrome.tabs.goBack(details.tabId).catch(() => chrome.tabs.update(details.tabId, { url: "about:blank" }));
      return; // back to the listed page (from the cache): one step further
    }
    leaving.delete(details.tabId);
  }
  guardNavigation(details.tabId, details.url).catch((error) => console.error("linkwarn: navigation check failed:", error));
}
// Checked when the navigation starts (usually answered before the page is fetched; the gate
// has decided it before that where it holds requests), and again when it commits: a page
// that was fetched before the answer came, or shown from the back/forward cache without a
// request, is replaced as soon as it is shown.
chrome.webNavigation.onBeforeNavigate.addListener((details) => {
  void holds.then((held) => held || onNavigation(details));
});
chrome.webNavigation.onCommitted.addListener(onNavigation);
// A listed page whose request was cancelled (a site's worker asked for it) ends in an error: the
// tab is sent to the warning page instead.
chrome.webNavigation.onErrorOccurred.addListener((details) => {
  if (details.frameId !== 0 || !/^https?:/.test(details.url)) return;
  guardNavigation(details.tabId, details.url, true).catch((error) => console.error("linkwarn: navigation check failed:", error));
});

// -- events --------------------------------------------------------------------------------------

/**
 * Tell the proxy (it stores these with its own events) and keep the recent list for the popup.
 * @param {"warning" | "block" | "proceed"} kind
 * @param {CheckResult} result
 */
async function record(kind, result) {
  const recent = (await stored("recent")) ?? [];
  recent.unshift({ at: Date.now(), kind, url: result.url, entry: result.entry, reason: result.reason });
  await chrome.storage.local.set({ recent: recent.slice(0, RECENT_MAX) });
  const { client } = await configuration();
  try {
    await client.events([{ kind, url: result.url }]);
    await chrome.storage.local.set({ delivery: { ok: true, at: Date.now(), error: null } });
  } catch (error) {
    // Still shown and recorded here; the proxy's log misses it (no token, a wrong one, or
    // unreachable): the popup and the options page say so until one gets through.
    await chrome.storage.local.set({ delivery: { ok: false, at: Date.now(), error: describe(error) } });
    console.warn("linkwarn: event not sent to the proxy:", describe(error));
  }
}

/**
 * @param {string} url
 * @returns {Promise<CheckResult>}
 */
async function verdictFor(url) {
  const result = (await check([url])).get(cacheKey(url));
  if (!result) throw new Error("no verdict");
  return result;
}

/** @param {string} url */
async function proceed(url) {
  const result = await verdictFor(url);
  if (result.action !== "warn" || !result.may_proceed || !result.entry_key) {
    return { ok: false, error: "There is no way through to this address." };
  }
  const passes = await prune();
  await knownEntries();
  const expires = Date.now() + (result.proceed_ttl_seconds ?? 900) * 1000;
  let ruleId = null;
  const entry = result.entry ? known?.byExpression.get(result.entry)?.find((e) => e.action === "warn") : undefined;
  if (entry && covered.has(entry.expression)) {
    ruleId = passes[result.entry_key]?.ruleId ?? freePassRuleId(passes);
    await chrome.declarativeNetRequest.updateSessionRules({ removeRuleIds: [ruleId], addRules: [passRule(entry, ruleId)] });
  }
  passes[result.entry_key] = { expression: result.entry, expires, ruleId };
  await chrome.storage.local.set({ passes });
  gate.passes = passes;
  endPassAt(expires);
  await record("proceed", result);
  return { ok: true, expires };
}

// -- messages ----------------------------------------------------------------------------------

/**
 * @param {any} message
 * @param {boolean} ownPage
 * @param {chrome.runtime.MessageSender} sender
 */
async function handle(message, ownPage, sender) {
  if (message?.type === "check") {
    const urls = Array.isArray(message.urls) ? message.urls.filter((/** @type {unknown} */ u) => typeof u === "string").slice(0, CHECK_MAX) : [];
    const found = await check(urls);
    /** @type {Record<string, {action: string | null, reason: string | null, entry: string | null}>} */
    const listed = {};
    for (const [key, result] of found) {
      if (result.listed && (result.action === "block" || result.action === "warn")) {
        listed[key] = { action: result.action, reason: result.reason, entry: result.entry };
      }
    }
    return { listed, reachable: (await backend()).reachable };
  }
  if (!ownPage) throw new Error(`not accepted from a web page: ${String(message?.type)}`);
  switch (message.type) {
    case "verdict": {
      await started;
      const result = await verdictFor(String(message.url));
      const { settings } = await configuration();
      const onward = opens(result, (await stored("passes")) ?? {}, settings.mode);
      if (onward) gate.cleared.set(cacheKey(String(message.url)), true);
      return { result, opens: onward };
    }
    case "shown": {
      if (!sender.tab?.id || !(await wasSent(sender.tab.id, String(message.url)))) return { ok: false, recorded: false };
      const result = await verdictFor(String(message.url));
      if (result.listed && (result.action === "warn" || result.action === "block")) {
        await record(result.action === "warn" ? "warning" : "block", result);
      }
      return { ok: true };
    }
    case "proceed":
      return proceed(String(message.url));
    case "back":
      if (sender.tab?.id) await leave(sender.tab.id, String(message.url));
      return { ok: true };
    case "report": {
      const { client } = await configuration();
      try {
        await client.report(String(message.url), String(message.comment ?? "").slice(0, 2000));
        return { ok: true };
      } catch (error) {
        return { ok: false, error: describe(error) };
      }
    }
    case "status": {
      if (message.refresh) await refresh();
      const { settings, locked, problems } = await configuration();
      const rules = await stored("rules");
      return {
        settings: { ...settings, apiToken: settings.apiToken ? "set" : "" },
        locked,
        problems,
        backend: (await stored("backend")) ?? null,
        rules: rules ? { ...rules, entries: rules.entries.length } : null,
        matcher: mirror.summary(),
        recent: (await stored("recent")) ?? [],
        passes: Object.keys((await stored("passes")) ?? {}).length,
        delivery: (await stored("delivery")) ?? null,
        blocking: await holds,
        held: gate.held,
      };
    }
    default:
      throw new Error(`unknown message: ${String(message.type)}`);
  }
}

chrome.runtime.onMessage.addListener((message, sender, sendResponse) => {
  if (sender.id !== chrome.runtime.id) return false;
  // The warning page is web-accessible (the browser's redirects need it so), at an address no
  // page knows; should one frame it still, it is a web page's tool (hidden frames writing fake
  // warnings, a transparent frame under a decoy button), and answered as a web page would be.
  const url = typeof sender.url === "string" ? sender.url : "";
  const framed = sender.frameId !== 0 && /^[a-z-]+:\/\/[^/]+\/warning\.html(?:[#?]|$)/.test(url);
  const ownPage = !framed && url.startsWith(`${OWN_ORIGIN}/`);
  handle(message, ownPage, sender).then(sendResponse, (error) => sendResponse({ error: describe(error) }));
  return true;
});

// -- posts the proxy held back -------------------------------------------------------------------

/**
 * The proxy answers a fetch or XHR whose body carries a listed link with a 403 and
 * `X-Linkwarn: share-warn|share-block; entry=...`: the page sees only a failed request,
 * so the tab is told, and shows a banner (share.js).
 */
chrome.webRequest.onHeadersReceived.addListener(
  (details) => {
    const header = details.responseHeaders?.find((h) => h.name.toLowerCase() === "x-linkwarn");
    const value = header?.value ?? "";
    if (!value.startsWith("share-") || details.tabId < 0) return undefined;
    const entry = /entry=([^;]*)/.exec(value)?.[1] ?? null;
    chrome.tabs
      .sendMessage(details.tabId, { type: "share-refused", verdict: value, entry }, { frameId: 0 })
      .catch(() => undefined); // the tab has no content script (yet): nothing to show
    return undefined;
  },
  { urls: ["http://*/*", "https://*/*"], types: ["xmlhttprequest", "other", "ping"] },
  ["responseHeaders"],
);
