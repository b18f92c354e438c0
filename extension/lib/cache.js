// @ts-check
/**
 * Verdicts already known, and lookups gathered into few API calls.
 */

/** The cache key of a URL: without its fragment, which never reaches a server. */
/** @param {string} url */
export function cacheKey(url) {
  const hash = url.indexOf("#");
  return hash === -1 ? url : url.slice(0, hash);
}

/**
 * A bounded map whose values expire: the least recently used goes first when full.
 * @template T
 */
export class TtlCache {
  /**
   * @param {number} maxEntries
   * @param {number} ttlMs
   * @param {() => number} [clock]
   */
  constructor(maxEntries, ttlMs, clock = Date.now) {
    this.maxEntries = maxEntries;
    this.ttlMs = ttlMs;
    this.clock = clock;
    /** @type {Map<string, {value: T, expires: number}>} */
    this.map = new Map();
  }

  get size() {
    return this.map.size;
  }

  /** @param {string} key @returns {T | undefined} */
  get(key) {
    const item = this.map.get(key);
    if (!item) return undefined;
    if (item.expires <= this.clock()) {
      this.map.delete(key);
      return undefined;
    }
    this.map.delete(key);
    this.map.set(key, item);
    return item.value;
  }

  /** @param {string} key @param {T} value */
  set(key, value) {
    this.map.delete(key);
    this.map.set(key, { value, expires: this.clock() + this.ttlMs });
    while (this.map.size > this.maxEntries) {
      const oldest = this.map.keys().next().value;
      if (oldest === undefined) break;
      this.map.delete(oldest);
    }
  }

  clear() {
    this.map.clear();
  }
}

/**
 * Looks URLs up through *fetchBatch* (at most *batchSize* per call), answering
 * from the cache where it can and asking once for a URL several callers want.
 * @template T
 */
export class BatchLookup {
  /**
   * @param {(urls: string[]) => Promise<T[]>} fetchBatch  one result per URL, in order
   * @param {TtlCache<T>} cache
   * @param {number} [batchSize]
   * @param {(result: T) => boolean} [keep]  whether a result may be cached (a refusal is not an answer)
   */
  constructor(fetchBatch, cache, batchSize = 500, keep = () => true) {
    this.fetchBatch = fetchBatch;
    this.cache = cache;
    this.batchSize = batchSize;
    this.keep = keep;
    /** @type {Map<string, Promise<T>>} */
    this.inFlight = new Map();
  }

  /**
   * @param {string[]} urls
   * @returns {Promise<Map<string, T>>} by cache key
   */
  async lookup(urls) {
    /** @type {Map<string, T>} */
    const found = new Map();
    /** @type {Map<string, Promise<T>>} */
    const waiting = new Map();
    /** @type {string[]} */
    const missing = [];
    for (const url of urls) {
      const key = cacheKey(url);
      if (found.has(key) || waiting.has(key)) continue;
      const cached = this.cache.get(key);
      if (cached !== undefined) found.set(key, cached);
      else if (this.inFlight.has(key)) waiting.set(key, /** @type {Promise<T>} */ (this.inFlight.get(key)));
      else missing.push(key);
    }
    for (let start = 0; start < missing.length; start += this.batchSize) {
      const chunk = missing.slice(start, start + this.batchSize);
      const request = this.fetchBatch(chunk);
      chunk.forEach((key, i) => {
        const one = request.then((results) => results[i]);
        one.catch(() => {}); // the error reaches the caller through `waiting`
        this.inFlight.set(key, one);
        waiting.set(key, one);
      });
      request
        .then((results) => chunk.forEach((key, i) => this.keep(results[i]) && this.cache.set(key, results[i])))
        .catch(() => {})
        .finally(() => chunk.forEach((key) => this.inFlight.delete(key)));
    }
    for (const [key, pending] of waiting) found.set(key, await pending);
    return found;
  }
}
