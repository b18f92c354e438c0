// @ts-check
/**
 * Canonicalize URLs and derive their lookup expressions, exactly as the proxy
 * does (`blocklists/canonical.py`): Safe Browsing's rules, with the v5 rule for
 * host suffixes (the shortest host tried is the registrable domain, from the
 * Public Suffix List the proxy serves, private section included).
 *
 * Pure: no I/O. The proxy's Python works on code points and, once a part is
 * unescaped, on bytes held one character per byte; so does this module ("byte
 * strings": characters 0-255). Unescaping is linear, as there.
 *
 * International hosts: the proxy maps them by UTS #46 through ada (the WHATWG
 * "domain to ASCII"); here the URL parser's host handling does it, which is the
 * same mapping (ada itself in Node; ICU's UTS #46 in Chromium). The URL parser
 * also refuses what UTS #46 keeps (`%`, `/`, `:`, spaces... in a host) and reads
 * a host ending in a number as IPv4, so `domainToAscii` hides those from it and
 * puts them back. What it cannot decide exactly it does not guess: it throws
 * `NotDecidedHere`, and the caller asks the proxy.
 *
 * Errors: `InvalidURL` with the proxy's message when the proxy refuses the URL
 * too; `NotDecidedHere` when only the proxy can say.
 */

/* eslint-disable no-control-regex -- control characters are what canonicalization is about */

import { DECIMAL_RANGES, DIGIT_RANGES, PUNCTUATION_MAPPINGS, RTL_RANGES } from "./unicode.js";

export const MAX_HOSTS = 5;
export const MAX_PATH_PREFIXES = 4;
export const MAX_URL_LENGTH = 64 * 1024;
export const PARTIAL_PATH = 4096;

/** The proxy refuses this URL (`blocklists.errors.InvalidURL`), with its message. */
export class InvalidURL extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = "InvalidURL";
  }
}

/** This URL's canonical form cannot be worked out here exactly: ask the proxy. */
export class NotDecidedHere extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = "NotDecidedHere";
  }
}

/**
 * @typedef {object} Canonical
 * @property {string} scheme
 * @property {string} host
 * @property {string} path
 * @property {string | null} query
 * @property {boolean} isIp
 * @property {boolean} partial  only the host and a path prefix could be read
 * @property {string} url
 */

const SPECIAL_SCHEMES = new Set(["http", "https", "ws", "wss", "ftp"]);
const HOSTLESS_SCHEMES = new Set(["about", "blob", "chrome", "data", "file", "javascript", "mailto", "sms", "tel", "view-source"]);
const SCHEME = /^([a-zA-Z][a-zA-Z0-9+.-]*):/;
const IPV4_PART = /^(?:0[xX][0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*)$/;
const TO_ESCAPE = /[\x00-\x20\x7f-\xff#%]/g;
const FORBIDDEN_HOST_CHARS = /[/\\?@]/;
const HEX = /^[0-9a-fA-F]$/;

/** @param {number[][]} ranges */
function classOf(ranges) {
  const hex = (/** @type {number} */ c) => `\\u{${c.toString(16)}}`;
  return ranges.map(([a, b]) => (a === b ? hex(a) : `${hex(a)}-${hex(b)}`)).join("");
}
// Python's str.isdigit() and re's \d, by Python's Unicode tables (unicode.js).
const PY_DIGITS = new RegExp(`^[${classOf(DIGIT_RANGES)}]+$`, "u");
const PY_PORT_LIKE = new RegExp(`^[${classOf(DECIMAL_RANGES)}]*(?:[/?\\\\]|$)`, "u");
const RIGHT_TO_LEFT = new RegExp(`[${classOf(RTL_RANGES)}]`, "u");
const NON_PRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]/u;

/** @param {string} text */
const isAscii = (text) => /^[\x00-\x7f]*$/.test(text);
/** @param {string} text */
const isDigits = (text) => PY_DIGITS.test(text);
/** @param {string} text */
const lowerAscii = (text) => text.replace(/[A-Z]+/g, (s) => s.toLowerCase());

/**
 * Python's repr() of a string, for messages that read as the proxy's.
 * @param {string} text
 */
export function pyRepr(text) {
  const quote = text.includes("'") && !text.includes('"') ? '"' : "'";
  let out = quote;
  for (const char of text) {
    const code = /** @type {number} */ (char.codePointAt(0));
    if (char === "\\" || char === quote) out += `\\${char}`;
    else if (char === "\t") out += "\\t";
    else if (char === "\n") out += "\\n";
    else if (char === "\r") out += "\\r";
    else if (char !== " " && NON_PRINTABLE.test(char)) {
      if (code < 0x100) out += `\\x${code.toString(16).padStart(2, "0")}`;
      else if (code < 0x10000) out += `\\u${code.toString(16).padStart(4, "0")}`;
      else out += `\\U${code.toString(16).padStart(8, "0")}`;
    } else out += char;
  }
  return out + quote;
}

/**
 * Python's str.strip(chars) for characters 0x00-0x20.
 * @param {string} text
 */
const stripC0 = (text) =>
  text.charCodeAt(0) > 0x20 && text.charCodeAt(text.length - 1) > 0x20 ? text : text.replace(/^[\x00-\x20]+|[\x00-\x20]+$/g, "");

/**
 * The first *count* code points of *text* (Python's text[:count]).
 * @param {string} text
 * @param {number} count
 */
function headPoints(text, count) {
  if (text.length <= count) return text;
  let units = 0;
  let points = 0;
  for (const char of text) {
    if (points === count) break;
    units += char.length;
    points++;
  }
  return text.slice(0, units);
}

/** @param {string} text */
function pointCount(text) {
  return text.length - (text.match(/[\ud800-\udbff][\udc00-\udfff]/g) ?? []).length;
}

/** @param {number} code @param {number[]} out */
function utf8(code, out) {
  if (code < 0x80) out.push(code);
  else if (code < 0x800) out.push(0xc0 | (code >> 6), 0x80 | (code & 63));
  else if (code < 0x10000) out.push(0xe0 | (code >> 12), 0x80 | ((code >> 6) & 63), 0x80 | (code & 63));
  else out.push(0xf0 | (code >> 18), 0x80 | ((code >> 12) & 63), 0x80 | ((code >> 6) & 63), 0x80 | (code & 63));
}

/** @param {number[]} bytes */
function byteString(bytes) {
  let out = "";
  for (let i = 0; i < bytes.length; i += 8192) out += String.fromCharCode(...bytes.slice(i, i + 8192));
  return out;
}

/**
 * *text* as its UTF-8 bytes, one character per byte (canonical.py `_to_bytes`):
 * lone surrogates U+DC80-U+DCFF stand for the bytes they escape (Python's
 * surrogateescape), unless another lone surrogate is present: then every lone
 * surrogate is encoded as itself (surrogatepass).
 * @param {string} text
 */
export function toBytes(text) {
  if (isAscii(text)) return text;
  /** @type {number[]} */
  const codes = [];
  let escapable = true;
  for (const char of text) {
    const code = /** @type {number} */ (char.codePointAt(0));
    codes.push(code);
    if (code >= 0xd800 && code <= 0xdfff && !(code >= 0xdc80 && code <= 0xdcff)) escapable = false;
  }
  /** @type {number[]} */
  const bytes = [];
  for (const code of codes) {
    if (escapable && code >= 0xdc80 && code <= 0xdcff) bytes.push(code - 0xdc00);
    else utf8(code, bytes);
  }
  return byteString(bytes);
}

/**
 * Percent-unescape until no escape is left, in one linear pass (canonical.py `_unescape`).
 * @param {string} text
 */
export function unescape(text) {
  if (!text.includes("%")) return text;
  /** @type {string[]} */
  const out = [];
  for (let i = 0; i < text.length; i++) {
    out.push(text[i]);
    let n = out.length;
    while (n >= 3 && out[n - 3] === "%" && HEX.test(out[n - 2]) && HEX.test(out[n - 1])) {
      const decoded = String.fromCharCode(parseInt(out[n - 2] + out[n - 1], 16));
      out.length = n - 3;
      out.push(decoded);
      n = out.length;
    }
  }
  return out.join("");
}

/**
 * Percent-escape bytes <= 0x20, >= 0x7f, '#' and '%' with upper-case hex.
 * @param {string} text  a byte string
 */
export function escape(text) {
  return text.replace(TO_ESCAPE, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0")}`);
}

/**
 * @param {string} text
 * @returns {[string, string]}
 */
function splitScheme(text) {
  const match = SCHEME.exec(text);
  if (match) {
    const scheme = match[1].toLowerCase();
    const after = text.slice(match[0].length);
    if (SPECIAL_SCHEMES.has(scheme)) return [scheme, after.replace(/^[/\\]+/, "")];
    if (after.startsWith("//")) return [scheme, after.slice(2)];
    if (HOSTLESS_SCHEMES.has(scheme) || !PY_PORT_LIKE.test(after)) {
      throw new InvalidURL(`scheme ${pyRepr(scheme)} has no host`);
    }
  }
  return ["http", text.replace(/^[/\\]+/, "")];
}

/**
 * @param {string} text
 * @returns {Canonical}
 */
export function canonicalize(text) {
  if (typeof text !== "string") throw new InvalidURL(`expected a URL string, got ${typeof text}`);
  if (text.length > MAX_URL_LENGTH) {
    const length = pointCount(text);
    if (length > MAX_URL_LENGTH) throw new InvalidURL(`URL is ${length} characters long, over the limit of ${MAX_URL_LENGTH}`);
  }
  text = stripC0(text).replace(/[\t\r\n]/g, "");
  if (!text) throw new InvalidURL("empty URL");
  const hashAt = text.indexOf("#");
  if (hashAt >= 0) text = text.slice(0, hashAt);
  const [scheme, rest] = splitScheme(text);
  const queryAt = rest.indexOf("?");
  let before = queryAt >= 0 ? rest.slice(0, queryAt) : rest;
  let query = queryAt >= 0 ? rest.slice(queryAt + 1) : null;
  if (SPECIAL_SCHEMES.has(scheme)) before = before.replaceAll("\\", "/");
  const slashAt = before.indexOf("/");
  const authority = slashAt >= 0 ? before.slice(0, slashAt) : before;
  const rawPath = slashAt >= 0 ? before.slice(slashAt) : "/";
  const [host, isIp] = canonicalHost(authority);
  const path = canonicalPath(rawPath);
  if (query !== null) query = escape(unescape(toBytes(query)));
  return made(scheme, host, path, query, isIp, false);
}

/**
 * What can be read of a URL that `canonicalize` refuses: its host and a path
 * prefix (canonical.py `canonicalize_partial`). No query; `partial` is true.
 * @param {string} text
 * @returns {Canonical}
 */
export function canonicalizePartial(text) {
  if (typeof text !== "string") throw new InvalidURL(`expected a URL string, got ${typeof text}`);
  text = stripC0(headPoints(text, MAX_URL_LENGTH)).replace(/[\t\r\n]/g, "");
  text = text.split("#", 1)[0];
  const [scheme, rest] = splitScheme(text);
  let before = rest.split("?", 1)[0];
  if (SPECIAL_SCHEMES.has(scheme)) before = before.replaceAll("\\", "/");
  const slashAt = before.indexOf("/");
  let authority = slashAt >= 0 ? before.slice(0, slashAt) : before;
  let path = slashAt >= 0 ? before.slice(slashAt + 1) : "";
  authority = authority.slice(authority.lastIndexOf("@") + 1);
  if (!authority.startsWith("[")) authority = authority.split(":", 1)[0];
  else if (authority.includes("]")) authority = authority.slice(0, authority.indexOf("]") + 1);
  const [host, isIp] = canonicalHost(authority);
  path = "/" + headPoints(path, PARTIAL_PATH);
  path = path.slice(0, path.lastIndexOf("/") + 1);
  return made(scheme, host, canonicalPath(path), null, isIp, true);
}

/**
 * `canonicalize`, or what `canonicalizePartial` reads when that refuses: how
 * the proxy reads every URL it checks (`Checker.prefilter`).
 * @param {string} text
 */
export function canonicalizeForLookup(text) {
  try {
    return canonicalize(text);
  } catch (whole) {
    if (!(whole instanceof InvalidURL)) throw whole;
    try {
      return canonicalizePartial(text);
    } catch (error) {
      if (error instanceof InvalidURL) throw whole;
      throw error;
    }
  }
}

/**
 * @param {string} scheme @param {string} host @param {string} path
 * @param {string | null} query @param {boolean} isIp @param {boolean} partial
 * @returns {Canonical}
 */
function made(scheme, host, path, query, isIp, partial) {
  const url = `${scheme}://${host}${path}${query === null ? "" : `?${query}`}`;
  return { scheme, host, path, query, isIp, partial, url };
}

/**
 * @param {string} authority
 * @returns {[string, boolean]}
 */
function canonicalHost(authority) {
  const at = authority.lastIndexOf("@");
  if (at >= 0) authority = authority.slice(at + 1);
  if (authority.startsWith("[")) {
    const end = authority.indexOf("]");
    if (end < 0) throw new InvalidURL(`unterminated IPv6 address in ${pyRepr(authority)}`);
    const literal = authority.slice(1, end);
    const port = authority.slice(end + 1);
    if (port && !((port[0] === ":" && isDigits(port.slice(1))) || port === ":")) {
      throw new InvalidURL(`junk after IPv6 address: ${pyRepr(port)}`);
    }
    const address = parseIpv6(literal);
    if (address === null) throw new InvalidURL(`invalid IPv6 address ${pyRepr(literal)}`);
    const ipv4 = embeddedIpv4(address.hextets);
    if (ipv4 !== null) return [ipv4, true];
    return [`[${compressIpv6(address.hextets)}${address.scope === null ? "" : `%${address.scope}`}]`, true];
  }
  const colon = authority.lastIndexOf(":");
  if (colon >= 0) {
    const port = authority.slice(colon + 1);
    if (port && !isDigits(port)) throw new InvalidURL(`invalid port ${pyRepr(port)}`);
    authority = authority.slice(0, colon);
  }
  const raw = authority;
  let host = decodeHost(unescape(toBytes(authority)));
  host = host.split(".").filter((label) => label).join(".");
  host = lowerAscii(host);
  if (!host) throw new InvalidURL(raw ? `no host in ${pyRepr(raw)}` : "no host");
  if (FORBIDDEN_HOST_CHARS.test(host)) {
    throw new InvalidURL(`host ${pyRepr(host)} contains a character no browser accepts in a host`);
  }
  const ipv4 = parseIpv4(host);
  if (ipv4 !== null) return [ipv4, true];
  return [escape(host), false];
}

/**
 * An unescaped host (a byte string) as ASCII, by UTS #46 when it is UTF-8 that is not ASCII.
 * @param {string} host
 */
function decodeHost(host) {
  if (isAscii(host)) return host;
  let text;
  try {
    const bytes = Uint8Array.from(host, (c) => c.charCodeAt(0));
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return host; // not UTF-8: the bytes are kept, and re-escaped later
  }
  return domainToAscii(text) || host;
}

// What the URL parser refuses in a host but UTS #46 keeps, by the class the IDNA
// bidi rule puts it in, and an ASCII stand-in of the same class the parser takes.
const STAND_IN = { ET: "$", CS: ",", ON: "!" };
/** @param {number} code */
function standInFor(code) {
  if (code === 0x23 || code === 0x25) return STAND_IN.ET; // # %
  if (code === 0x2f || code === 0x3a) return STAND_IN.CS; // / :
  return STAND_IN.ON; // < > ? @ [ \ ] ^ |, and C0 and DEL (BN: allowed where ON is)
}
const REFUSED_IN_HOST = /[\x00-\x20#%/:<>?@[\\\]^|\x7f]/;
const STAND_INS = /[$,!]/g;
// Bidi classes B, S and WS, which no label with right-to-left text may hold.
const NOT_IN_RTL = /[\x09-\x0d\x1c-\x20]/;

export const RIGHT_TO_LEFT_HOST = "an international host with right-to-left text";

/**
 * UTS #46 ToASCII of *text*, as ada's `idna_to_ascii` (the proxy's): "" when it refuses.
 * @param {string} text
 * @returns {string}
 */
export function domainToAscii(text) {
  // The IDNA bidi rule: ada (the proxy's) checks each label with right-to-left text;
  // Node's URL parser checks none, Chromium's whole names. Such a host is the proxy's to read.
  if (RIGHT_TO_LEFT.test(text)) throw new NotDecidedHere(RIGHT_TO_LEFT_HOST);
  // 1. Characters that map to a dot or to ASCII the parser refuses: mapped here.
  let mapped = "";
  for (const char of text) mapped += PUNCTUATION_MAPPINGS.get(/** @type {number} */ (char.codePointAt(0))) ?? char;
  // "<" or ">" with U+0338 compose (NFC) into another character; their stand-in would not.
  if (/[<>]/.test(mapped) && mapped.includes("\u0338")) throw new NotDecidedHere("a host with < or > and U+0338");
  // An A-label among international text: ada versions differ on what they take there.
  if (/(^|[.])xn--/i.test(mapped.replace(/\p{DI}/gu, "").normalize("NFKC"))) throw new NotDecidedHere("an international host with an A-label");
  // 2. ASCII the parser refuses: stand-ins of the same bidi class, put back by position.
  /** @type {string[]} */
  const expected = [];
  /** @type {Set<number>} labels holding a space or control character */
  const spaced = new Set();
  let label = 0;
  let hidden = "";
  for (const char of mapped) {
    if (char === ".") label++;
    if (REFUSED_IN_HOST.test(char)) {
      hidden += standInFor(char.charCodeAt(0));
      expected.push(char);
      if (NOT_IN_RTL.test(char)) spaced.add(label);
    } else {
      if ("$,!".includes(char)) expected.push(char);
      hidden += char;
    }
  }
  // 3. The parser maps it; a last label "x" keeps it from reading the host as IPv4.
  const ascii = hostOf(`${hidden}.x`);
  if (ascii === null) return "";
  const result = ascii.slice(0, -2);
  if (!result) return "";
  // 4. A space or control character is refused in a label with right-to-left text
  // (the bidi rule), where its stand-in is not: such a label also fails ending in "!".
  const labels = hidden.split(".");
  for (const at of spaced) {
    if (/^xn--/i.test(labels[at])) throw new NotDecidedHere("a space or control character in an A-label");
    if (hostOf(`${labels[at]}!.x`) === null) return "";
  }
  let index = 0;
  const restored = result.replace(STAND_INS, (standIn) => expected[index++] ?? standIn);
  if (index !== expected.length) throw new NotDecidedHere("the host's stand-ins did not come back in order");
  // The proxy's ada binding reads its answer as a C string: a NUL ends it there.
  return restored.split("\u0000", 1)[0];
}

/**
 * The URL parser's ASCII form of the host *text*, or null when it refuses it.
 * @param {string} text
 */
function hostOf(text) {
  try {
    return new URL(`http://${text}/`).hostname;
  } catch {
    return null;
  }
}

/**
 * Dotted-decimal form when *host* is any legal IPv4 spelling, else null (canonical.py `_parse_ipv4`).
 * @param {string} host
 */
export function parseIpv4(host) {
  if (!IPV4_PART.test(host.slice(host.lastIndexOf(".") + 1))) return null; // most hosts: their last label says so
  const parts = host.split(".");
  if (parts.length > 4 || !/[A-Za-z0-9]$/.test(host) || !parts.every((p) => IPV4_PART.test(p))) return null;
  const values = parts.map((part) => {
    if (part.startsWith("0x") || part.startsWith("0X")) return BigInt(`0x${part.slice(2) || "0"}`);
    if (part.length > 1 && part[0] === "0") return BigInt(`0o${part}`);
    return BigInt(part);
  });
  const last = /** @type {bigint} */ (values.pop());
  if (values.some((v) => v > 255n) || last >= 256n ** BigInt(5 - parts.length)) return null;
  let number = last;
  values.forEach((value, index) => {
    number += value << BigInt(8 * (3 - index));
  });
  return [24n, 16n, 8n, 0n].map((shift) => String((number >> shift) & 255n)).join(".");
}

/**
 * Python's ipaddress.IPv6Address(literal): eight hextets and a scope, or null.
 * @param {string} literal
 * @returns {{hextets: number[], scope: string | null} | null}
 */
export function parseIpv6(literal) {
  const percent = literal.indexOf("%");
  let scope = null;
  let text = literal;
  if (percent >= 0) {
    scope = literal.slice(percent + 1);
    text = literal.slice(0, percent);
    if (!scope || scope.includes("%")) return null;
  }
  if (!text) return null;
  const parts = text.split(":");
  if (parts.length < 3) return null;
  if (parts[parts.length - 1].includes(".")) {
    const ipv4 = strictIpv4(/** @type {string} */ (parts.pop()));
    if (ipv4 === null) return null;
    parts.push(((ipv4 >>> 16) & 0xffff).toString(16), (ipv4 & 0xffff).toString(16));
  }
  if (parts.length > 9) return null;
  let skip = -1;
  for (let i = 1; i < parts.length - 1; i++) {
    if (!parts[i]) {
      if (skip >= 0) return null;
      skip = i;
    }
  }
  let hi;
  let lo;
  let skipped;
  if (skip >= 0) {
    hi = skip;
    lo = parts.length - skip - 1;
    if (!parts[0] && --hi) return null;
    if (!parts[parts.length - 1] && --lo) return null;
    skipped = 8 - (hi + lo);
    if (skipped < 1) return null;
  } else {
    if (parts.length !== 8 || !parts[0] || !parts[parts.length - 1]) return null;
    hi = parts.length;
    lo = 0;
    skipped = 0;
  }
  const chosen = [...parts.slice(0, hi), ...Array(skipped).fill(null), ...(lo ? parts.slice(-lo) : [])];
  /** @type {number[]} */
  const hextets = [];
  for (const part of chosen) {
    if (part === null) hextets.push(0);
    else if (/^[0-9a-fA-F]{1,4}$/.test(part)) hextets.push(parseInt(part, 16));
    else return null;
  }
  return { hextets, scope };
}

/**
 * Python's IPv4Address(text): strict dotted decimal, no leading zeros; its value or null.
 * @param {string} text
 */
function strictIpv4(text) {
  const octets = text.split(".");
  if (octets.length !== 4) return null;
  let value = 0;
  for (const octet of octets) {
    if (!/^[0-9]{1,3}$/.test(octet) || (octet !== "0" && octet[0] === "0") || Number(octet) > 255) return null;
    value = value * 256 + Number(octet);
  }
  return value;
}

/**
 * Python's compressed form: the first longest run of two or more zero hextets becomes "::".
 * @param {number[]} hextets
 */
function compressIpv6(hextets) {
  const words = hextets.map((h) => h.toString(16));
  let bestStart = -1;
  let bestLength = 0;
  let start = -1;
  let length = 0;
  words.forEach((word, i) => {
    if (word === "0") {
      length++;
      if (start === -1) start = i;
      if (length > bestLength) {
        bestLength = length;
        bestStart = start;
      }
    } else {
      length = 0;
      start = -1;
    }
  });
  if (bestLength > 1) {
    const end = bestStart + bestLength;
    /** @type {string[]} */
    const head = words.slice(0, bestStart);
    const tail = words.slice(end);
    return [...(bestStart === 0 ? [""] : head), "", ...(end === words.length ? [""] : tail)].join(":");
  }
  return words.join(":");
}

/**
 * The IPv4 address an IPv4-mapped (::ffff:a.b.c.d) or IPv4-compatible (::a.b.c.d) address reaches.
 * @param {number[]} hextets
 */
function embeddedIpv4(hextets) {
  const low = (hextets[6] * 0x10000 + hextets[7]) >>> 0;
  const dotted = () => [low >>> 24, (low >>> 16) & 255, (low >>> 8) & 255, low & 255].join(".");
  if (hextets.slice(0, 5).every((h) => h === 0) && hextets[5] === 0xffff) return dotted();
  if (hextets.slice(0, 6).every((h) => h === 0) && low > 1) return dotted();
  return null;
}

/**
 * @param {string} path  as the URL has it (code points)
 */
function canonicalPath(path) {
  path = unescape(toBytes(path));
  if (!path.startsWith("/")) path = `/${path}`;
  if (path.includes("/.") || path.includes("//")) {
    /** @type {string[]} */
    const segments = [];
    const parts = path.split("/").slice(1);
    for (const part of parts) {
      if (part === "" || part === ".") continue;
      if (part === "..") {
        segments.pop();
        continue;
      }
      segments.push(part);
    }
    const trailing = ["", ".", ".."].includes(parts[parts.length - 1]);
    path = `/${segments.join("/")}${trailing && segments.length ? "/" : ""}`;
  }
  return escape(path).replaceAll("\\", "%5C").replaceAll("?", "%3F");
}

// -- lookup expressions -------------------------------------------------------------------

/**
 * The exact host, then up to four hosts from deepest to the registrable domain.
 * @param {string} host
 * @param {boolean} isIp
 * @param {(host: string) => string} registrableDomain  from psl.js, over the proxy's suffix list
 * @returns {string[]}
 */
export function hostExpressions(host, isIp, registrableDomain) {
  if (isIp) return [host];
  const registrable = registrableDomain(host);
  if (!registrable || registrable === host) return [host];
  const labels = host.split(".");
  const base = registrable.split(".").length;
  const hosts = [host];
  for (let extra = MAX_HOSTS - 2; extra >= 0; extra--) {
    const count = base + extra;
    if (count < labels.length) hosts.push(labels.slice(-count).join("."));
  }
  return hosts;
}

/**
 * Exact path with query, exact path, then up to four prefixes from the root.
 * @param {string} path
 * @param {string | null} query
 */
export function pathExpressions(path, query) {
  const paths = [];
  if (query !== null) paths.push(`${path}?${query}`);
  paths.push(path);
  let prefix = "/";
  if (prefix !== path) paths.push(prefix);
  for (const component of path.split("/").slice(1, -1).slice(0, MAX_PATH_PREFIXES - 1)) {
    prefix = `${prefix}${component}/`;
    if (prefix !== path) paths.push(prefix);
  }
  return paths;
}

/**
 * All lookup expressions of a canonical URL, most specific host first.
 * @param {Canonical} canonical
 * @param {(host: string) => string} registrableDomain
 */
export function expressionsOf(canonical, registrableDomain) {
  const paths = pathExpressions(canonical.path, canonical.query);
  return hostExpressions(canonical.host, canonical.isIp, registrableDomain).flatMap((host) => paths.map((path) => host + path));
}
