import assert from "node:assert/strict";
import { test } from "node:test";

import { BatchLookup, TtlCache, cacheKey } from "../lib/cache.js";
import { FIRST_PASS_RULE_ID, freePassRuleId, hasPass, prunePasses } from "../lib/passes.js";

test("the cache key drops the fragment only", () => {
  assert.equal(cacheKey("http://a.test/x?y#z"), "http://a.test/x?y");
  assert.equal(cacheKey("http://a.test/"), "http://a.test/");
});

test("values expire, and the least recently used goes first", () => {
  let now = 0;
  const cache = new TtlCache(2, 100, () => now);
  cache.set("a", 1);
  cache.set("b", 2);
  assert.equal(cache.get("a"), 1); // a is now the most recent
  cache.set("c", 3);
  assert.equal(cache.get("b"), undefined);
  assert.equal(cache.get("a"), 1);
  now = 150;
  assert.equal(cache.get("a"), undefined);
  assert.equal(cache.size, 1);
});

test("lookups are batched, cached and asked once while in flight", async () => {
  const calls = [];
  const lookup = new BatchLookup(async (urls) => {
    calls.push(urls);
    await new Promise((resolve) => setTimeout(resolve, 10));
    return urls.map((u) => u.toUpperCase());
  }, new TtlCache(10000, 60000), 500);
  const urls = Array.from({ length: 1200 }, (_, i) => `http://h${i}.test/`);
  const [first, second] = await Promise.all([lookup.lookup(urls), lookup.lookup([...urls.slice(0, 10), "http://x.test/#f"])]);
  assert.deepEqual(calls.map((c) => c.length), [500, 500, 200, 1]);
  assert.equal(first.size, 1200);
  assert.equal(first.get("http://h7.test/"), "HTTP://H7.TEST/");
  assert.equal(second.get("http://x.test/"), "HTTP://X.TEST/");
  calls.length = 0;
  const again = await lookup.lookup(["http://h1.test/#other"]);
  assert.deepEqual(calls, []);
  assert.equal(again.get("http://h1.test/"), "HTTP://H1.TEST/");
});

test("a failed batch reaches every caller and is not cached", async () => {
  let fail = true;
  const lookup = new BatchLookup(async (urls) => {
    if (fail) throw new Error("down");
    return urls.map(() => "ok");
  }, new TtlCache(10, 60000));
  await assert.rejects(lookup.lookup(["http://a.test/"]), /down/);
  fail = false;
  assert.equal((await lookup.lookup(["http://a.test/"])).get("http://a.test/"), "ok");
});

test("a result the caller does not keep (a refusal) is answered but not cached", async () => {
  let calls = 0;
  const cache = new TtlCache(10, 60000);
  const lookup = new BatchLookup(async (urls) => {
    calls++;
    return urls.map((u) => (u.includes("bad") ? { error: "refused" } : { error: null }));
  }, cache, 500, (result) => !result.error);
  const found = await lookup.lookup(["http://bad.test/", "http://good.test/"]);
  assert.deepEqual(found.get("http://bad.test/"), { error: "refused" });
  assert.equal(cache.get("http://bad.test/"), undefined);
  assert.deepEqual(cache.get("http://good.test/"), { error: null });
  await lookup.lookup(["http://bad.test/"]);
  assert.equal(calls, 2);
});

test("passes last until they expire, and expired ones give back their rules", () => {
  const passes = { k1: { expression: "leak.test/", expires: 1000, ruleId: FIRST_PASS_RULE_ID }, k2: { expression: null, expires: 3000, ruleId: null } };
  assert.equal(hasPass(passes, "k1", 999), true);
  assert.equal(hasPass(passes, "k1", 1000), false);
  assert.equal(hasPass(passes, "k3", 0), false);
  const { live, expiredRuleIds } = prunePasses(passes, 2000);
  assert.deepEqual(Object.keys(live), ["k2"]);
  assert.deepEqual(expiredRuleIds, [FIRST_PASS_RULE_ID]);
  assert.equal(freePassRuleId(passes), FIRST_PASS_RULE_ID + 1);
  assert.equal(freePassRuleId({}), FIRST_PASS_RULE_ID);
});
