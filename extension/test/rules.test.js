import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { EntryIndex, MAX_REGEX_RULES, buildRules, passRule, priorityOf, regexFor, ruleCatches, urlExpressions } from "../lib/rules.js";

const vectors = JSON.parse(readFileSync(new URL("../../tests/vectors/precedence.json", import.meta.url), "utf8"));
const WARNING = "chrome-extension://abc/warning.html";

test("the shared precedence vectors: the same winner as the proxy", async (t) => {
  assert.ok(vectors.cases.length >= 20);
  for (const vector of vectors.cases) {
    await t.test(vector.name, () => {
      const index = new EntryIndex(vector.entries.map(([expression, action]) => ({ expression, action, local: false })));
      const winner = index.match(vector.url);
      assert.deepEqual(winner && [winner.expression, winner.action], vector.winner);
    });
  }
});

test("a local entry beats a feed's at equal specificity, whatever the actions", () => {
  assert.ok(priorityOf("leak.test/", true, "warn") > priorityOf("leak.test/", false, "allow"));
  assert.ok(priorityOf("a.leak.test/", false, "warn") > priorityOf("leak.test/", true, "allow"));
  assert.ok(priorityOf("leak.test/x/", false, "warn") > priorityOf("www.leak.test/", true, "allow"));
});

test("a proceed pass outranks its warn entry but not a block or allow of equal rank", () => {
  const warn = priorityOf("leak.test/", false, "warn");
  const pass = priorityOf("leak.test/", false, "proceed");
  assert.ok(pass > warn);
  assert.ok(pass < priorityOf("leak.test/", false, "block"));
  assert.ok(pass < priorityOf("leak.test/secret/", false, "block"));
});

test("priorities fit the browser's integer range", () => {
  const huge = priorityOf(`${"a".repeat(300)}/${"p".repeat(9000)}`, true, "allow");
  assert.ok(huge < 2 ** 31 && huge > 0);
});

test("expressions of a URL: hosts, then paths, most specific first", () => {
  assert.deepEqual(urlExpressions("http://a.b.leak.test/1/2.html?q=1#frag"), [
    "a.b.leak.test/1/2.html?q=1", "a.b.leak.test/1/2.html", "a.b.leak.test/1/", "a.b.leak.test/",
    "b.leak.test/1/2.html?q=1", "b.leak.test/1/2.html", "b.leak.test/1/", "b.leak.test/",
    "leak.test/1/2.html?q=1", "leak.test/1/2.html", "leak.test/1/", "leak.test/",
  ]);
  assert.deepEqual(urlExpressions("http://0xC6.51.100.7/"), ["198.51.100.7/"]);
  assert.deepEqual(urlExpressions("https://LEAK.test/%7Euser/%2F"), ["leak.test/~user/%2F", "leak.test/~user/", "leak.test/"]);
  assert.equal(urlExpressions("mailto:x@leak.test"), null);
  assert.equal(urlExpressions("not a url"), null);
});

test("host entries become grouped domain rules; path entries regex rules", () => {
  const entries = [
    { expression: "leak.test/", action: "warn", local: false },
    { expression: "mirror.test/", action: "block", local: false },
    { expression: "other.test/", action: "warn", local: false },
    { expression: "press.leak.test/", action: "allow", local: false },
    { expression: "files.test/dump/", action: "block", local: true },
    { expression: "paste.test/raw/salaries", action: "warn", local: false },
    { expression: "198.51.100.7/", action: "block", local: false },
    { expression: "gone.test/", action: "block", local: false, expires_at: 1 },
  ];
  const { rules, covered, uncovered } = buildRules(entries, { warningUrl: WARNING });
  const warnGroup = rules.find((r) => r.condition.requestDomains?.includes("leak.test"));
  assert.deepEqual(warnGroup.condition.requestDomains, ["leak.test"]);
  assert.deepEqual(warnGroup.action, { type: "redirect", redirect: { regexSubstitution: `${WARNING}#\\0` } });
  const otherGroup = rules.find((r) => r.condition.requestDomains?.includes("other.test"));
  assert.equal(otherGroup.condition.requestDomains.length, 1); // "other.test" is longer than "leak.test": another rank
  const allow = rules.find((r) => r.condition.requestDomains?.includes("press.leak.test"));
  assert.deepEqual(allow.action, { type: "allow" });
  assert.equal(allow.condition.regexFilter, undefined);
  assert.ok(rules.every((r) => r.condition.resourceTypes.join() === "main_frame"));
  assert.equal(new Set(rules.map((r) => r.id)).size, rules.length);
  assert.deepEqual(uncovered, []);
  assert.ok(!covered.has("gone.test/"));
  assert.equal(covered.size, 7);
});

test("rules past the regex limit are left to the proxy check, and said so", () => {
  const entries = Array.from({ length: MAX_REGEX_RULES + 5 }, (_, i) => ({ expression: `h${i}.test/p/`, action: "block", local: false }));
  const { rules, uncovered, covered } = buildRules(entries, { warningUrl: WARNING });
  assert.equal(rules.length, MAX_REGEX_RULES);
  assert.equal(uncovered.length, 5);
  assert.equal(covered.size, MAX_REGEX_RULES);
});

test("a rule's regex catches what the entry covers and nothing else", () => {
  const cases = [
    ["files.test/dump/", "https://files.test/dump/a.zip", true],
    ["files.test/dump/", "http://www.files.test:8080/dump/", true],
    ["files.test/dump/", "https://files.test/dumpster", false],
    ["files.test/dump/", "https://notfiles.test/dump/", false],
    ["paste.test/raw/salaries", "https://paste.test/raw/salaries?v=2", true],
    ["paste.test/raw/salaries", "https://paste.test/raw/salaries2", false],
    ["paste.test/p?id=1", "https://paste.test/p?id=1", true],
    ["paste.test/p?id=1", "https://paste.test/p?id=12", false],
    ["198.51.100.7/", "http://198.51.100.7/x", true],
    ["198.51.100.7/", "http://1198.51.100.7/x", false],
  ];
  for (const [expression, url, expected] of cases) {
    assert.equal(new RegExp(regexFor(expression)).test(url), expected, `${expression} ${url}`);
    assert.equal(ruleCatches(url, expression), expected, `ruleCatches ${expression} ${url}`);
  }
  assert.equal(ruleCatches("https://sub.leak.test/a", "leak.test/"), true);
  assert.equal(ruleCatches("https://notleak.test/a", "leak.test/"), false);
});

test("a pass rule uses the entry's condition one rank above it", () => {
  const entry = { expression: "leak.test/", action: "warn", local: false };
  const rule = passRule(entry, 1_000_000);
  assert.deepEqual(rule.condition.requestDomains, ["leak.test"]);
  assert.equal(rule.priority, priorityOf("leak.test/", false, "warn") + 1);
  assert.deepEqual(rule.action, { type: "allow" });
});
