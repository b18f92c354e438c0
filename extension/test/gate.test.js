import assert from "node:assert/strict";
import { test } from "node:test";

import { TtlCache } from "../lib/cache.js";
import { NavigationGate, opens } from "../lib/gate.js";
import { Matcher, hex, sha256 } from "../lib/matcher.js";
import { PrefixSet } from "../lib/prefixes.js";
import { SuffixList } from "../lib/psl.js";
import { EntryIndex } from "../lib/rules.js";
import { PSL_BODY, fullSet } from "./fixtures.js";

const WARNING = "chrome-extension://x/warning.html";
const suffixes = SuffixList.fromRules(JSON.parse(PSL_BODY.toString("utf8")).rules);
const ENTRIES = [
  { expression: "leak.test/", action: "warn", local: false },
  { expression: "leak.test/press/", action: "allow", local: false },
  { expression: "mirror.test/", action: "block", local: false },
];

/** A gate with everything read: the prefixes of ENTRIES plus a hashed entry and an audit entry. */
async function readyGate() {
  const prefixes = PrefixSet.decode(
    await fullSet([...ENTRIES.map((e) => e.expression), "secret.test/dump/", "audited.test/"], ["leak.test", "mirror.test", "secret.test", "audited.test"]),
  );
  const gate = new NavigationGate(WARNING, new TtlCache(100, 60_000), { matcher: new Matcher(suffixes, prefixes) });
  Object.assign(gate, { mode: "warn", passes: {}, known: new EntryIndex(ENTRIES), restored: true });
  return gate;
}

const stopped = (url) => ({ redirectUrl: `${WARNING}#${url}` });

test("an address without a prefix hit goes; a listed one is sent to the warning page before it is fetched", async () => {
  const gate = await readyGate();
  assert.equal(gate.decide("https://clean.test/page"), undefined);
  assert.equal(gate.decide("http://secret.test/other/"), undefined);
  // spellings only canonicalization recognizes, which the browser's rules do not hold
  for (const url of ["http://leak.test/inbox", "https://WWW.Mirror.test/films/", "http://mirror.test./%66ilms", "http://leak.test:80/a/..%2F"]) {
    assert.deepEqual(gate.decide(url), stopped(url), url);
  }
  // allow wins where it is more specific, as in the proxy
  assert.equal(gate.decide("http://leak.test/press/story"), undefined);
});

test("a hit no plaintext entry explains (hashed, audit) is left to the warning page, which asks the proxy", async () => {
  const gate = await readyGate();
  assert.deepEqual(gate.decide("http://secret.test/dump/file.zip"), stopped("http://secret.test/dump/file.zip"));
  assert.deepEqual(gate.decide("http://audited.test/x"), stopped("http://audited.test/x"));
  // Once the proxy has answered (the warning page asked), its verdict decides, without the page.
  const auditVerdict = { url: "http://audited.test/x", listed: true, action: "audit", entry_key: null };
  gate.verdicts.set("http://audited.test/x", /** @type {any} */ (auditVerdict));
  assert.equal(gate.decide("http://audited.test/x#part"), undefined);
});

test("a warn entry with a live pass goes; an expired pass or a block entry does not", async () => {
  const gate = await readyGate();
  const key = hex(await sha256("leak.test/"));
  gate.passes = { [key]: { expression: "leak.test/", expires: 2_000, ruleId: null } };
  assert.equal(gate.decide("http://leak.test/inbox", "GET", 1_000), undefined);
  assert.deepEqual(gate.decide("http://leak.test/inbox", "GET", 2_000), stopped("http://leak.test/inbox"));
  gate.passes = { [hex(await sha256("mirror.test/"))]: { expression: "mirror.test/", expires: 9e15, ruleId: null } };
  assert.deepEqual(gate.decide("http://mirror.test/"), stopped("http://mirror.test/"));
});

test("until everything is read back after a restart, every address goes through the warning page", async () => {
  const gate = new NavigationGate(WARNING, new TtlCache(10, 1000), { matcher: null });
  assert.equal(gate.ready, false);
  assert.deepEqual(gate.decide("https://clean.test/"), stopped("https://clean.test/"));
  Object.assign(gate, { mode: "warn", passes: {}, known: new EntryIndex(ENTRIES) });
  assert.deepEqual(gate.decide("https://clean.test/"), stopped("https://clean.test/"));
  // Read back, with no prefixes ever received: the plaintext entries decide (the popup says NOT PROTECTING).
  gate.restored = true;
  assert.equal(gate.decide("https://clean.test/"), undefined);
  assert.deepEqual(gate.decide("http://mirror.test/x"), stopped("http://mirror.test/x"));
  assert.equal(gate.decide("http://secret.test/dump/file.zip"), undefined); // a hashed entry is not known without prefixes
  gate.passes = { any: { expression: "leak.test/", expires: 9e15, ruleId: null } };
  assert.equal(gate.decide("http://leak.test/inbox"), undefined);
});

test("a refusal by the proxy is not an answer: the address is still held", async () => {
  const gate = await readyGate();
  const refused = { url: "http://mirror.test/x", listed: false, action: null, entry_key: null, error: { code: "invalid_url", message: "no" } };
  gate.verdicts.set("http://mirror.test/x", /** @type {any} */ (refused));
  assert.deepEqual(gate.decide("http://mirror.test/x"), stopped("http://mirror.test/x"));
});

test("what canonicalization cannot read here, and a decision that fails, are held; an invalid address goes", async () => {
  const gate = await readyGate();
  assert.equal(gate.verdict("http://\u05d0\u05d1.test/"), "ask"); // right-to-left: the proxy decides
  assert.deepEqual(gate.decide("http://\u05d0\u05d1.test/"), stopped("http://\u05d0\u05d1.test/"));
  assert.equal(gate.verdict("javascript:alert(1)"), "go");
  const broken = await readyGate();
  broken.lists = { get matcher() { throw new Error("boom"); } };
  assert.deepEqual(broken.decide("http://clean.test/"), stopped("http://clean.test/"));
});

test("a form sent where only the proxy can say is cancelled, not turned into a GET; a listed one is warned", async () => {
  const gate = await readyGate();
  assert.deepEqual(gate.decide("http://secret.test/dump/upload", "POST"), { cancel: true });
  assert.deepEqual(gate.decide("http://mirror.test/upload", "POST"), stopped("http://mirror.test/upload"));
  assert.equal(gate.decide("http://clean.test/form", "POST"), undefined);
  assert.equal(gate.held, 2);
});

test("an address the warning page was told to go on to is let through (the two cannot loop)", async () => {
  const gate = await readyGate();
  gate.cleared.set("http://secret.test/dump/file.zip", true);
  assert.equal(gate.decide("http://secret.test/dump/file.zip#top"), undefined);
  gate.forget(); // the lists changed
  assert.deepEqual(gate.decide("http://secret.test/dump/file.zip"), stopped("http://secret.test/dump/file.zip"));
  assert.deepEqual(gate.decide("http://secret.test/dump/other.zip"), stopped("http://secret.test/dump/other.zip"));
});

test("frames and a site's worker: a known listing is cancelled, what only the proxy can say goes", async () => {
  const gate = await readyGate();
  assert.deepEqual(gate.refuse("http://mirror.test/films/"), { cancel: true });
  assert.equal(gate.refuse("http://secret.test/dump/file.zip"), undefined); // hashed: the proxy refuses it
  assert.equal(gate.refuse("http://clean.test/"), undefined);
  const broken = await readyGate();
  broken.lists = { get matcher() { throw new Error("boom"); } };
  assert.equal(broken.refuse("http://clean.test/"), undefined);
});

test("in mark-only mode nothing is held, even before the lists are read back", async () => {
  const gate = await readyGate();
  gate.mode = "mark";
  assert.equal(gate.decide("http://mirror.test/"), undefined);
  const waking = new NavigationGate(WARNING, new TtlCache(10, 1000), { matcher: null });
  waking.mode = "mark";
  assert.equal(waking.decide("http://mirror.test/"), undefined);
});

test("opens: what the warning page goes on to", () => {
  const base = { url: "u", listed: true, action: "warn", entry_key: "k" };
  const result = (/** @type {any} */ change) => /** @type {any} */ ({ ...base, ...change });
  assert.equal(opens(result({}), {}, "warn"), false);
  assert.equal(opens(result({}), { k: { expression: null, expires: 9e15, ruleId: null } }, "warn"), true);
  assert.equal(opens(result({ action: "block" }), { k: { expression: null, expires: 9e15, ruleId: null } }, "warn"), false);
  assert.equal(opens(result({ listed: false, action: null }), {}, "warn"), true);
  assert.equal(opens(result({ action: "audit" }), {}, "warn"), true);
  assert.equal(opens(result({ action: "block" }), {}, "mark"), true);
});
