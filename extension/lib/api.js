// @ts-check
/**
 * The client of the proxy's local API (see /v1/openapi.json there).
 */

/**
 * @typedef {object} CheckResult
 * @property {string} url
 * @property {string | null} canonical
 * @property {boolean} listed
 * @property {"block" | "warn" | "audit" | "allow" | null} action
 * @property {string | null} reason
 * @property {string | null} entry
 * @property {string | null} entry_key
 * @property {string | null} list
 * @property {number | null} expires_at
 * @property {boolean} may_proceed
 * @property {number | null} proceed_ttl_seconds
 * @property {{code: string, message: string} | null} error
 * @property {boolean} [offline]  decided here: without the proxy, or without needing it
 * @property {boolean} [confirmed]  false: a prefix hit the proxy could not be asked to confirm
 */

/** Thrown when the API cannot be reached or refuses: `code` says which. */
export class ApiError extends Error {
  /**
   * @param {string} code  "unreachable", "timeout", or the API's own error code
   * @param {string} message
   * @param {number} [status]
   */
  constructor(code, message, status = 0) {
    super(message);
    this.name = "ApiError";
    this.code = code;
    this.status = status;
  }
}

export class ApiClient {
  /**
   * @param {string} baseUrl
   * @param {string} token
   * @param {{fetch?: typeof fetch, timeoutMs?: number}} [options]
   */
  constructor(baseUrl, token, { fetch: fetchImpl = globalThis.fetch.bind(globalThis), timeoutMs = 5000 } = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.token = token;
    this.fetch = fetchImpl;
    this.timeoutMs = timeoutMs;
  }

  /**
   * @param {string} method
   * @param {string} path
   * @param {{body?: unknown, write?: boolean, etag?: string}} [options]
   * @returns {Promise<{status: number, body: any, etag: string | null}>}
   */
  async request(method, path, { body, write = false, etag } = {}) {
    /** @type {Record<string, string>} */
    const headers = {};
    if (body !== undefined) headers["content-type"] = "application/json";
    if (write) {
      if (!this.token) throw new ApiError("token_missing", "no API token is set (options page, or policy)");
      headers.authorization = `Bearer ${this.token}`;
    }
    if (etag) headers["if-none-match"] = etag;
    let response;
    try {
      response = await this.fetch(this.baseUrl + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
        credentials: "omit",
        cache: "no-store",
      });
    } catch (error) {
      const timedOut = error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
      throw new ApiError(
        timedOut ? "timeout" : "unreachable",
        timedOut ? `no answer in ${this.timeoutMs} ms` : "nothing answers there",
      );
    }
    if (response.status === 304) return { status: 304, body: null, etag: response.headers.get("etag") };
    let parsed = null;
    try {
      parsed = await response.json();
    } catch {
      throw new ApiError("bad_answer", `${path} answered ${response.status} without JSON`, response.status);
    }
    if (!response.ok) {
      const error = parsed && parsed.error;
      throw new ApiError(error?.code ?? "http_error", error?.message ?? `HTTP ${response.status}`, response.status);
    }
    return { status: response.status, body: parsed, etag: response.headers.get("etag") };
  }

  status() {
    return this.request("GET", "/v1/status").then((r) => r.body);
  }

  /**
   * @param {string[]} urls  at most 500
   * @returns {Promise<CheckResult[]>}
   */
  async check(urls) {
    const { body } = await this.request("POST", "/v1/check", { body: { urls } });
    if (!body || !Array.isArray(body.results) || body.results.length !== urls.length) {
      throw new ApiError("bad_answer", "/v1/check did not answer one result per URL");
    }
    return body.results;
  }

  /** @param {string} [etag] */
  rules(etag) {
    return this.request("GET", "/v1/rules", { etag });
  }

  /**
   * A GET whose body is kept as bytes (checked by the caller against its ETag).
   * @param {string} path
   * @param {string} [etag]  sent as If-None-Match
   * @returns {Promise<{status: number, bytes: Uint8Array | null, etag: string | null}>}
   */
  async bytes(path, etag) {
    /** @type {Record<string, string>} */
    const headers = etag ? { "if-none-match": etag } : {};
    let response;
    try {
      response = await this.fetch(this.baseUrl + path, {
        headers,
        signal: AbortSignal.timeout(this.timeoutMs * 6),
        credentials: "omit",
        cache: "no-store",
      });
    } catch (error) {
      const timedOut = error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
      throw new ApiError(timedOut ? "timeout" : "unreachable", timedOut ? "no answer in time" : "nothing answers there");
    }
    const tag = response.headers.get("etag");
    if (response.status === 304) return { status: 304, bytes: null, etag: tag };
    if (!response.ok) {
      const error = await response.json().then((body) => body?.error, () => null);
      throw new ApiError(error?.code ?? "http_error", error?.message ?? `HTTP ${response.status}`, response.status);
    }
    return { status: response.status, bytes: new Uint8Array(await response.arrayBuffer()), etag: tag };
  }

  /** The suffix rules the proxy follows. @param {string} [etag] */
  psl(etag) {
    return this.bytes("/v1/psl", etag);
  }

  /** The index's prefixes: a diff from the version *since* names, or the full set. @param {string} [since] */
  prefixes(since) {
    return this.bytes(since ? `/v1/prefixes?since=${encodeURIComponent(since)}` : "/v1/prefixes", since);
  }

  /** @param {{kind: "warning" | "block" | "proceed", url: string}[]} events */
  events(events) {
    return this.request("POST", "/v1/events", { body: { events }, write: true }).then((r) => r.body);
  }

  /** @param {string} url @param {string} comment */
  report(url, comment) {
    return this.request("POST", "/v1/reports", { body: { url, comment }, write: true }).then((r) => r.body);
  }
}

/** Longer URLs are sent cut to this: the proxy reads any URL over 64 KiB on its host and a
 * path prefix only (its partial canonicalization), which this much of it decides alike. */
export const MAX_URL_SENT = 64 * 1024 + 1;
export const MAX_BATCH = 500; // URLs per /v1/check, the API's limit
export const MAX_BATCH_BYTES = 256 * 1024; // of JSON per /v1/check, well under the API's 1 MiB

/**
 * The URLs as batches the API accepts: at most MAX_BATCH URLs and about MAX_BATCH_BYTES each.
 * @param {string[]} urls
 * @returns {string[][]}
 */
export function batches(urls) {
  /** @type {string[][]} */
  const out = [];
  /** @type {string[]} */
  let current = [];
  let bytes = 0;
  for (const url of urls) {
    const sent = url.length > MAX_URL_SENT ? url.slice(0, MAX_URL_SENT) : url;
    const size = sent.length * 3 + 4; // the most JSON a character can take, escaped as UTF-8
    if (current.length && (current.length >= MAX_BATCH || bytes + size > MAX_BATCH_BYTES)) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(sent);
    bytes += size;
  }
  if (current.length) out.push(current);
  return out;
}

/**
 * One result per URL, in order, however the proxy answers: a batch it refuses (a 4xx) is
 * split until the URL it refuses gets that refusal as its own result (`error`), so one bad
 * URL costs only its own verdict. Unreachable, a timeout or a 5xx throw: the caller then
 * decides the whole batch without the proxy.
 * @param {(urls: string[]) => Promise<CheckResult[]>} check  one /v1/check
 * @param {string[]} urls
 * @returns {Promise<CheckResult[]>}
 */
export async function checkEach(check, urls) {
  /** @type {CheckResult[]} */
  const results = [];
  for (const batch of batches(urls)) results.push(...(await splitting(check, batch)));
  return results;
}

/**
 * @param {(urls: string[]) => Promise<CheckResult[]>} check
 * @param {string[]} urls
 * @returns {Promise<CheckResult[]>}
 */
async function splitting(check, urls) {
  try {
    return await check(urls);
  } catch (error) {
    if (!(error instanceof ApiError) || error.status < 400 || error.status >= 500) throw error;
    if (urls.length === 1) return [refused(urls[0], error)];
    const half = Math.ceil(urls.length / 2);
    return [...(await splitting(check, urls.slice(0, half))), ...(await splitting(check, urls.slice(half)))];
  }
}

/**
 * @param {string} url
 * @param {ApiError} error
 * @returns {CheckResult}
 */
function refused(url, error) {
  return {
    url, canonical: null, listed: false, action: null, reason: null, entry: null, entry_key: null, list: null,
    expires_at: null, may_proceed: false, proceed_ttl_seconds: null, error: { code: error.code, message: error.message },
  };
}
