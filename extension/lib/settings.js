// @ts-check
/**
 * The extension's settings: what IT set by policy (managed storage) wins over
 * what the person set on the options page, which wins over the defaults.
 */

/** @typedef {"warn" | "mark"} Mode */
/**
 * @typedef {object} Settings
 * @property {string} apiUrl    the local API, on this computer
 * @property {string} apiToken  DATA_DIR/api.token of the proxy ("" for none: no events or reports)
 * @property {Mode} mode        warn: mark links and warn on navigation; mark: only mark links
 */

/** @type {Readonly<Settings>} */
export const DEFAULTS = Object.freeze({ apiUrl: "http://127.0.0.1:8089", apiToken: "", mode: "warn" });
export const KEYS = /** @type {const} */ (["apiUrl", "apiToken", "mode"]);
const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);

/**
 * Why *value* cannot be the setting *key*, or null when it can.
 * @param {string} key
 * @param {unknown} value
 * @returns {string | null}
 */
export function problemWith(key, value) {
  if (typeof value !== "string") return `${key} must be text`;
  if (key === "apiUrl") {
    let url;
    try {
      url = new URL(value);
    } catch {
      return `apiUrl ${JSON.stringify(value)} is not a URL`;
    }
    if (url.protocol !== "http:") return `apiUrl must start with http:// (the API listens on this computer only)`;
    if (!LOOPBACK.has(url.hostname)) return `apiUrl must name this computer (127.0.0.1, localhost or [::1]), not ${url.hostname}`;
    if (url.pathname !== "/" || url.search || url.hash) return "apiUrl is an address only, such as http://127.0.0.1:8089";
  }
  if (key === "apiToken" && value !== "" && !/^[0-9a-f]{64}$/.test(value.trim())) {
    return "apiToken must be the 64 hex characters of DATA_DIR/api.token";
  }
  if (key === "mode" && value !== "warn" && value !== "mark") return `mode must be "warn" or "mark", not ${JSON.stringify(value)}`;
  return null;
}

/**
 * The settings in force, which of them policy fixes, and the problems found.
 * A bad value is reported and replaced by the next source's.
 * @param {Record<string, unknown>} managed
 * @param {Record<string, unknown>} local
 * @returns {{settings: Settings, locked: string[], problems: string[]}}
 */
export function effectiveSettings(managed, local) {
  /** @type {Record<string, string>} */
  const chosen = { ...DEFAULTS };
  /** @type {string[]} */
  const locked = [];
  /** @type {string[]} */
  const problems = [];
  for (const key of KEYS) {
    for (const [source, values] of /** @type {const} */ ([["policy", managed], ["options", local]])) {
      if (values[key] === undefined) continue;
      const problem = problemWith(key, values[key]);
      if (problem) {
        problems.push(`${source}: ${problem}`);
        continue;
      }
      chosen[key] = String(values[key]).trim();
      if (source === "policy") locked.push(key);
      break;
    }
  }
  chosen.apiUrl = chosen.apiUrl.replace(/\/+$/, "");
  return { settings: /** @type {Settings} */ (/** @type {unknown} */ (chosen)), locked, problems };
}
