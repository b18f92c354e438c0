// @ts-check
/**
 * SHA-256 (FIPS 180-4), synchronous, for the many short strings a page's links
 * turn into: a lookup expression is a few dozen bytes, and one
 * `crypto.subtle.digest` call per expression (a promise, a task on another
 * thread and back) costs far more than hashing it here. The digest is the same
 * as WebCrypto's of the text's UTF-8 bytes (`TextEncoder`); the tests compare
 * the two on random input.
 *
 * Pure: no I/O, no state kept between calls but a scratch buffer.
 */

const K = Uint32Array.from([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);
const INITIAL = Uint32Array.from([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
]);

const words = new Int32Array(64);
const state = new Int32Array(8);
let scratch = new Uint8Array(256);
const encoder = new TextEncoder();

/**
 * Hash *length* bytes of *bytes*, whose buffer has room for the padding after them
 * (a multiple of 64 bytes in all); the padding is written there.
 * @param {Uint8Array} bytes  @param {number} length
 */
function digestPadded(bytes, length) {
  const blocks = ((length + 8) >>> 6) + 1;
  bytes[length] = 0x80;
  bytes.fill(0, length + 1, blocks * 64);
  const end = blocks * 64;
  const high = Math.floor(length / 0x20000000); // the length in bits, as two 32-bit words
  const low = (length << 3) >>> 0;
  for (let i = 0; i < 4; i++) {
    bytes[end - 8 + i] = high >>> (24 - 8 * i);
    bytes[end - 4 + i] = low >>> (24 - 8 * i);
  }
  state.set(INITIAL);
  const w = words;
  for (let block = 0; block < blocks; block++) {
    const at = block * 64;
    for (let i = 0; i < 16; i++) {
      const j = at + 4 * i;
      w[i] = (bytes[j] << 24) | (bytes[j + 1] << 16) | (bytes[j + 2] << 8) | bytes[j + 3];
    }
    for (let i = 16; i < 64; i++) {
      const x = w[i - 15];
      const y = w[i - 2];
      const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
      const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
    }
    let a = state[0];
    let b = state[1];
    let c = state[2];
    let d = state[3];
    let e = state[4];
    let f = state[5];
    let g = state[6];
    let h = state[7];
    for (let i = 0; i < 64; i++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const t1 = (h + S1 + ((e & f) ^ (~e & g)) + K[i] + w[i]) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      h = g;
      g = f;
      f = e;
      e = (d + t1) | 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) | 0;
    }
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
    state[4] += e;
    state[5] += f;
    state[6] += g;
    state[7] += h;
  }
  const out = new Uint8Array(32);
  for (let i = 0; i < 8; i++) {
    const v = state[i];
    out[4 * i] = v >>> 24;
    out[4 * i + 1] = v >>> 16;
    out[4 * i + 2] = v >>> 8;
    out[4 * i + 3] = v;
  }
  return out;
}

/** A scratch buffer with room for *length* bytes and their padding. @param {number} length */
function room(length) {
  const needed = (((length + 8) >>> 6) + 1) * 64;
  if (scratch.length < needed) scratch = new Uint8Array(Math.max(needed, 2 * scratch.length));
  return scratch;
}

/**
 * The SHA-256 digest of *bytes*.
 * @param {Uint8Array} bytes
 * @returns {Uint8Array} 32 bytes
 */
export function sha256Bytes(bytes) {
  const buffer = room(bytes.length);
  buffer.set(bytes);
  return digestPadded(buffer, bytes.length);
}

/**
 * The SHA-256 digest of *text*'s UTF-8 bytes (as `TextEncoder` encodes it: a lone
 * surrogate as U+FFFD).
 * @param {string} text
 * @returns {Uint8Array} 32 bytes
 */
export function sha256Text(text) {
  const length = text.length;
  const buffer = room(length);
  for (let i = 0; i < length; i++) {
    const code = text.charCodeAt(i);
    if (code > 0x7f) return sha256Bytes(encoder.encode(text));
    buffer[i] = code;
  }
  return digestPadded(buffer, length);
}
