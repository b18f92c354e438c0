// @ts-check
/**
 * The proxy's index, held by the extension: the first 8 bytes of every entry's
 * SHA-256 key, and the first 4 bytes of the host markers of the entries the
 * proxy's `HostIndex` holds, each a sorted array searched by bisection.
 *
 * The bytes are `GET /v1/prefixes` (proxy_addon/api.py): a full set, or a diff
 * from the version the extension has. `decode` and `applyDiff` refuse anything
 * malformed, unsorted or inconsistent (a diff removing what is not there, or
 * adding what is), so a garbled answer never replaces a good set; `encode` gives
 * back the full set's bytes, whose SHA-256 is the version's ETag.
 *
 * Full set:  "LWP1" | keys u32 | markers u32 | unmarked u32 | keys × 8 bytes | markers × 4 bytes
 * Diff:      "LWD1" | keys added u32 | keys removed u32 | markers added u32 | markers removed u32 |
 *            unmarked u32 | the four sorted arrays in that order
 * Integers big-endian; arrays ascending, without repeats.
 */

const FULL = "LWP1";
const DIFF = "LWD1";

/** @param {Uint8Array} bytes */
function magicOf(bytes) {
  return String.fromCharCode(...bytes.subarray(0, 4));
}

/**
 * @param {DataView} view @param {number} offset @param {number} count
 * @returns {BigUint64Array}
 */
function readKeys(view, offset, count) {
  const out = new BigUint64Array(count);
  for (let i = 0; i < count; i++) out[i] = view.getBigUint64(offset + 8 * i, false);
  assertAscending(out);
  return out;
}

/**
 * @param {DataView} view @param {number} offset @param {number} count
 * @returns {Uint32Array}
 */
function readMarkers(view, offset, count) {
  const out = new Uint32Array(count);
  for (let i = 0; i < count; i++) out[i] = view.getUint32(offset + 4 * i, false);
  assertAscending(out);
  return out;
}

/** @param {BigUint64Array | Uint32Array} values */
function assertAscending(values) {
  for (let i = 1; i < values.length; i++) {
    if (values[i - 1] >= values[i]) throw new Error(`prefixes out of order at ${i}`);
  }
}

/** The big-endian 32-bit word at *at*. @param {Uint8Array} bytes @param {number} at */
function word(bytes, at) {
  return ((bytes[at] << 24) | (bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3]) >>> 0;
}

/**
 * @template {bigint | number} T
 * @param {ArrayLike<T>} values @param {T} value
 */
function bisect(values, value) {
  let lo = 0;
  let hi = values.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (values[mid] < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * *values* without *removed* and with *added* (both sorted); throws when they do not fit.
 * @template {BigUint64Array | Uint32Array} A
 * @param {A} values @param {A} added @param {A} removed @param {new (n: number) => A} Kind
 */
function merged(values, added, removed, Kind) {
  const missing = () => new Error("the diff removes a prefix the set does not hold");
  if (removed.length > values.length) throw missing();
  const out = new Kind(values.length + added.length - removed.length);
  let a = 0;
  let r = 0;
  let o = 0;
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    while (a < added.length && added[a] < value) out[o++] = added[a++];
    if (a < added.length && added[a] === value) throw new Error("the diff adds a prefix the set already holds");
    if (r < removed.length && removed[r] < value) throw missing();
    if (r < removed.length && removed[r] === value) r++;
    else out[o++] = value;
  }
  if (r < removed.length) throw missing();
  while (a < added.length) out[o++] = added[a++];
  return out;
}

export class PrefixSet {
  /**
   * @param {BigUint64Array} keys  ascending
   * @param {Uint32Array} markers  ascending
   * @param {number} unmarked  entries whose host nobody knows
   */
  constructor(keys, markers, unmarked) {
    this.keys = keys;
    this.markers = markers;
    this.unmarked = unmarked;
    /** @type {Uint32Array | null} each key's first 4 bytes, bisected before a key is compared whole */
    this.highs = null;
  }

  static empty() {
    return new PrefixSet(new BigUint64Array(0), new Uint32Array(0), 0);
  }

  /**
   * A full set from its bytes; throws on anything else.
   * @param {Uint8Array} bytes
   */
  static decode(bytes) {
    if (bytes.length < 16 || magicOf(bytes) !== FULL) throw new Error("not a full prefix set");
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const keys = view.getUint32(4, false);
    const markers = view.getUint32(8, false);
    if (bytes.length !== 16 + 8 * keys + 4 * markers) throw new Error("the prefix set's length does not match its counts");
    return new PrefixSet(readKeys(view, 16, keys), readMarkers(view, 16 + 8 * keys, markers), view.getUint32(12, false));
  }

  /** Whether *bytes* are a diff (else a full set). @param {Uint8Array} bytes */
  static isDiff(bytes) {
    return bytes.length >= 4 && magicOf(bytes) === DIFF;
  }

  /** The full set's bytes (what `decode` reads; their SHA-256 is the ETag). */
  encode() {
    const bytes = new Uint8Array(16 + 8 * this.keys.length + 4 * this.markers.length);
    const view = new DataView(bytes.buffer);
    bytes.set([...FULL].map((c) => c.charCodeAt(0)));
    view.setUint32(4, this.keys.length, false);
    view.setUint32(8, this.markers.length, false);
    view.setUint32(12, this.unmarked, false);
    this.keys.forEach((key, i) => view.setBigUint64(16 + 8 * i, key, false));
    const base = 16 + 8 * this.keys.length;
    this.markers.forEach((marker, i) => view.setUint32(base + 4 * i, marker, false));
    return bytes;
  }

  /**
   * A new set: this one with a diff applied; throws when it does not fit (this one is unchanged).
   * @param {Uint8Array} bytes
   */
  applyDiff(bytes) {
    if (bytes.length < 24 || !PrefixSet.isDiff(bytes)) throw new Error("not a prefix diff");
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const [ka, kr, ma, mr, unmarked] = [4, 8, 12, 16, 20].map((at) => view.getUint32(at, false));
    if (bytes.length !== 24 + 8 * (ka + kr) + 4 * (ma + mr)) throw new Error("the diff's length does not match its counts");
    let at = 24;
    const keysAdded = readKeys(view, at, ka);
    const keysRemoved = readKeys(view, (at += 8 * ka), kr);
    const markersAdded = readMarkers(view, (at += 8 * kr), ma);
    const markersRemoved = readMarkers(view, (at += 4 * ma), mr);
    return new PrefixSet(
      merged(this.keys, keysAdded, keysRemoved, BigUint64Array),
      merged(this.markers, markersAdded, markersRemoved, Uint32Array),
      unmarked,
    );
  }

  get size() {
    return this.keys.length;
  }

  /**
   * Whether an entry's key may start with these 8 bytes.
   * @param {Uint8Array} digest  a SHA-256 digest (its first 8 bytes count)
   */
  hasKey(digest) {
    // Numbers, not BigInts, for the bisection: a page's links make thousands of lookups.
    if (!this.highs) this.highs = Uint32Array.from(this.keys, (key) => Number(key >> 32n));
    const high = word(digest, 0);
    let at = bisect(this.highs, high);
    if (at === this.highs.length || this.highs[at] !== high) return false;
    const prefix = (BigInt(high) << 32n) | BigInt(word(digest, 4));
    for (; at < this.keys.length && this.highs[at] === high; at++) if (this.keys[at] === prefix) return true;
    return false;
  }

  /**
   * Whether a host marker may start with these 4 bytes.
   * @param {Uint8Array} digest  SHA-256 of a host name
   */
  hasMarker(digest) {
    const prefix = word(digest, 0);
    const at = bisect(this.markers, prefix);
    return at < this.markers.length && this.markers[at] === prefix;
  }
}
