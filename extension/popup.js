// @ts-check
/** The toolbar popup: is the proxy reachable, which lists, which warnings lately. */

/** @param {string} id */
const element = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** @param {number} seconds */
export function age(seconds) {
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86400)} days`;
}

/** @param {HTMLElement} list @param {string} text */
function item(list, text) {
  const li = document.createElement("li");
  li.textContent = text;
  list.append(li);
  return li;
}

/** @param {any} state */
function render(state) {
  const backend = state.backend;
  const status = backend?.status;
  const line = element("backend");
  const knows = Boolean(state.rules || state.matcher?.ready);
  if (!backend || backend.reachable === false) {
    line.dataset.state = "down";
    line.textContent =
      `Proxy unreachable at ${state.settings.apiUrl}` +
      (backend?.error ? ` (${backend.error})` : "") +
      (knows
        ? ". Links it already listed are still marked and warned about."
        : ". NOT PROTECTING: no list has ever reached this browser, so nothing is marked or warned about.");
  } else if (status?.stale) {
    line.dataset.state = "stale";
    line.textContent = "Connected, but the lists are past their expiry (stale).";
  } else {
    line.dataset.state = "up";
    line.textContent = `Connected to the proxy at ${state.settings.apiUrl}.`;
  }
  if (status) {
    element("entries").textContent = `${status.index_entries} entries` + (backend.reachable === false ? " (when last seen)" : "");
    const feeds = element("feeds");
    feeds.replaceChildren();
    const now = Date.now() / 1000;
    for (const feed of status.feeds) {
      const when = feed.generated_at ? `published ${age(now - feed.generated_at)} ago` : "not yet synced";
      const li = item(feeds, `${feed.url}: version ${feed.version ?? "none"}, ${feed.entries} entries, ${when}${feed.stale ? ", STALE" : ""}`);
      if (feed.last_error) li.title = `last error: ${feed.last_error}`;
    }
    if (!status.feeds.length) item(feeds, "No feeds: local lists only.").className = "muted";
  }
  if (state.rules) {
    element("rules").textContent =
      state.settings.mode === "warn"
        ? `${state.rules.rules} browser rules cover ${state.rules.entries - state.rules.uncovered} entries; the rest are checked with the proxy.`
        : "Mode: mark links only (no warning on navigation).";
  }
  if (state.matcher) {
    const m = state.matcher;
    element("matcher").textContent = m.ready
      ? `Decided here: every address without one of the proxy's ${m.prefixes} key prefixes.` + (m.problem ? ` ${m.problem}` : "")
      : `Every address is checked with the proxy (its lists are not here yet${m.problem ? `: ${m.problem}` : ""}).`;
  }
  if (state.settings.mode === "warn") {
    element("navigations").textContent = state.blocking
      ? "Navigations are decided before anything is sent (installed by policy)."
      : "Navigations are checked as they start: a page only the proxy can decide may be fetched before the warning (installed by policy, it would not be).";
  }
  const recent = element("recent");
  recent.replaceChildren();
  for (const warning of state.recent) {
    const when = new Date(warning.at).toLocaleTimeString();
    item(recent, `${when} ${warning.kind}: ${warning.url}`).title = warning.reason ?? "";
  }
  element("no-recent").hidden = state.recent.length > 0;
  const delivery = element("delivery");
  delivery.hidden = !state.delivery || state.delivery.ok;
  if (state.delivery && !state.delivery.ok) {
    delivery.textContent = `Warnings and proceeds are not reaching IT's log: ${state.delivery.error}`;
  }
  if (state.problems.length) {
    element("problems").textContent = `Settings ignored: ${state.problems.join("; ")}`;
    element("problems").hidden = false;
  }
}

async function load() {
  const first = await chrome.runtime.sendMessage({ type: "status" });
  if (!first.error) render(first);
  const fresh = await chrome.runtime.sendMessage({ type: "status", refresh: true });
  if (fresh.error) element("backend").textContent = fresh.error;
  else render(fresh);
  document.body.dataset.ready = "true";
}

if (typeof document !== "undefined" && typeof chrome !== "undefined" && chrome.runtime?.id) void load();
