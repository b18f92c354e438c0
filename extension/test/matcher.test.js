import assert from "node:assert/strict";
import { test } from "node:test";

import { ListMirror, Matcher, offlineResult, sha256 } from "../lib/matcher.js";
import { PrefixSet } from "../lib/prefixes.js";
import { SuffixList } from "../lib/psl.js";
import { PSL_BODY, fullSet } from "./fixtures.js";

const suffixes = SuffixList.fromRules(JSON.parse(PSL_BODY.toString("utf8")).rules);

async function etagOf(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return `"${Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("").slice(0, 32)}"`;
}

test("a hashed entry is found by its key prefix alone; an unlisted URL is decided here", async () => {
  // "secret.test/dump/" is listed by hash only: no plaintext entry says so.
  const matcher = new Matcher(suffixes, PrefixSet.decode(await fullSet(["secret.test/dump/", "leak.test/"], ["secret.test"])));
  const hit = await matcher.lookup("https://WWW.Secret.test/dump/%66ile.zip?x=1");
  assert.equal(hit.kind, "hit");
  assert.deepEqual(hit.hits.map((h) => h.expression), ["secret.test/dump/"]);
  assert.equal(hit.hits[0].key, [...(await sha256("secret.test/dump/"))].map((b) => b.toString(16).padStart(2, "0")).join(""));
  assert.equal((await matcher.lookup("https://secret.test/other/")).kind, "unlisted");
  assert.equal((await matcher.lookup("javascript:alert(1)")).kind, "invalid");
  assert.equal((await matcher.lookup("http://\u05d0\u05d1.test/")).kind, "ask");
  // Offline, the hit nobody can explain is a warning, never a pass.
  const result = offlineResult("https://www.secret.test/dump/file.zip", hit, new Map());
  assert.deepEqual([result.listed, result.action, result.confirmed, result.entry], [true, "warn", false, "secret.test/dump/"]);
  const known = new Map([["leak.test/", [{ expression: "leak.test/", action: "block", local: false, reason: "mail" }]]]);
  const leak = offlineResult("http://a.leak.test/", await matcher.lookup("http://a.leak.test/"), known);
  assert.deepEqual([leak.listed, leak.action, leak.confirmed, leak.reason], [true, "block", true, "mail"]);
  assert.equal(leak.entry_key, [...(await sha256("leak.test/"))].map((b) => b.toString(16).padStart(2, "0")).join(""));
  const clean = offlineResult("http://clean.test/", await matcher.lookup("http://clean.test/"), known);
  assert.deepEqual([clean.listed, clean.action, clean.offline], [false, null, true]);
});

test("a known entry more specific than an unexplained hit decides; one less specific does not", async () => {
  const set = PrefixSet.decode(await fullSet(["leak.test/", "leak.test/public/"]));
  const matcher = new Matcher(suffixes, set);
  const allow = new Map([["leak.test/public/", [{ expression: "leak.test/public/", action: "allow", local: false }]]]);
  const passed = offlineResult("http://leak.test/public/a", await matcher.lookup("http://leak.test/public/a"), allow);
  assert.deepEqual([passed.listed, passed.action, passed.confirmed], [false, "allow", true]);
  const block = new Map([["leak.test/", [{ expression: "leak.test/", action: "block", local: false }]]]);
  // A hit more specific than the known block, that nobody can explain offline: in doubt the block stands.
  const doubt = offlineResult("http://leak.test/public/a", await matcher.lookup("http://leak.test/public/a"), block);
  assert.deepEqual([doubt.listed, doubt.action, doubt.confirmed, doubt.entry], [true, "block", false, "leak.test/public/"]);
  const warn = new Map([["leak.test/", [{ expression: "leak.test/", action: "warn", local: false }]]]);
  const warned = offlineResult("http://leak.test/public/a", await matcher.lookup("http://leak.test/public/a"), warn);
  assert.deepEqual([warned.listed, warned.action, warned.confirmed, warned.may_proceed], [true, "warn", false, true]);
});

test("host markers answer as the proxy's reads_host does", async () => {
  const matcher = new Matcher(suffixes, PrefixSet.decode(await fullSet(["files.test/dump/", "mirror.test/"], ["files.test"])));
  assert.equal(await matcher.hostMayBeListed("cdn.files.test"), true);
  assert.equal(await matcher.hostMayBeListed("www.mirror.test"), true); // by the host entry's own key
  assert.equal(await matcher.hostMayBeListed("clean.test"), false);
  const unmarked = new Matcher(suffixes, PrefixSet.decode(await fullSet([], [], 1)));
  assert.equal(await unmarked.hostMayBeListed("clean.test"), true);
});

/** A fake local API: the answers it gives, in order. */
function source(psl, prefixes) {
  return { psl: async () => psl.shift(), prefixes: async (etag) => ({ ...prefixes.shift(), asked: etag }) };
}

test("the mirror takes answers whose ETag is their SHA-256, keeps the last good ones otherwise, and persists", async () => {
  let stored;
  const storage = { load: async () => stored, save: async (saved) => void (stored = saved) };
  const mirror = new ListMirror(storage);
  await mirror.restore();
  assert.equal(mirror.matcher, null);
  const first = await fullSet(["leak.test/"]);
  await mirror.sync(source([{ status: 200, bytes: PSL_BODY, etag: await etagOf(PSL_BODY) }], [{ status: 200, bytes: first, etag: await etagOf(first) }]));
  assert.equal(mirror.problem, null);
  assert.equal((await mirror.matcher.lookup("http://leak.test/x")).kind, "hit");

  // Garbled answers: a body that is not its ETag's, a truncated set, an HTML page.
  const garbled = [
    [{ status: 200, bytes: PSL_BODY.subarray(0, 100), etag: await etagOf(PSL_BODY) }, { status: 304, bytes: null, etag: null }],
    [{ status: 304, bytes: null, etag: null }, { status: 200, bytes: first.subarray(0, 20), etag: await etagOf(first.subarray(0, 20)) }],
    [{ status: 304, bytes: null, etag: null }, { status: 200, bytes: await fullSet(["other.test/"]), etag: await etagOf(first) }],
  ];
  for (const [psl, prefixes] of garbled) {
    await mirror.sync(source([psl], [prefixes]));
    assert.match(mirror.problem, /refused.*The last good lists are kept/);
    assert.equal((await mirror.matcher.lookup("http://leak.test/x")).kind, "hit");
    assert.equal((await mirror.matcher.lookup("http://other.test/x")).kind, "unlisted");
  }

  // After a refused set it asks for the full set; a diff then applies and checks against the ETag.
  const second = await fullSet(["leak.test/", "other.test/"]);
  const answers = source([{ status: 304, bytes: null, etag: null }], [{ status: 200, bytes: second, etag: await etagOf(second) }]);
  const asked = [];
  await mirror.sync({ psl: answers.psl, prefixes: async (etag) => (asked.push(etag), answers.prefixes(etag)) });
  assert.deepEqual(asked, [undefined]);
  assert.equal((await mirror.matcher.lookup("http://other.test/x")).kind, "hit");

  const restored = new ListMirror(storage);
  await restored.restore();
  assert.equal((await restored.matcher.lookup("http://other.test/x")).kind, "hit");
  assert.equal(restored.summary().prefixes, 2);
  assert.ok(restored.summary().suffixRules > 9000);
});

test("syncs asked for at once run one after another: a diff is never applied twice", async () => {
  const mirror = new ListMirror({ load: async () => undefined, save: async () => {} });
  const first = await fullSet(["leak.test/"]);
  const second = await fullSet(["leak.test/", "other.test/"]);
  const added = new DataView((await sha256("other.test/")).buffer).getBigUint64(0);
  const diff = new Uint8Array(24 + 8);
  const view = new DataView(diff.buffer);
  diff.set([76, 87, 68, 49]); // "LWD1": one key added
  view.setUint32(4, 1);
  view.setBigUint64(24, added);
  const psl = { status: 200, bytes: PSL_BODY, etag: await etagOf(PSL_BODY) };
  await mirror.sync(source([psl], [{ status: 200, bytes: first, etag: await etagOf(first) }]));
  // The proxy answers each sync with the diff since the ETag it is given, as /v1/prefixes does.
  const firstEtag = await etagOf(first);
  const secondEtag = await etagOf(second);
  let calls = 0;
  const prefixes = async (/** @type {string | undefined} */ since) => {
    if (calls++) await new Promise((resolve) => setTimeout(resolve, 20)); // the later ones answer after the first
    if (since === secondEtag) return { status: 304, bytes: null, etag: null };
    return since === firstEtag ? { status: 200, bytes: diff, etag: secondEtag } : { status: 200, bytes: second, etag: secondEtag };
  };
  const answers = { psl: async () => ({ status: 304, bytes: null, etag: null }), prefixes };
  await Promise.all([mirror.sync(answers), mirror.sync(answers), mirror.sync(answers)]);
  assert.equal(mirror.problem, null);
  assert.equal(mirror.summary().prefixes, 2);
});
