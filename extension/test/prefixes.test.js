import assert from "node:assert/strict";
import { test } from "node:test";

import { PrefixSet } from "../lib/prefixes.js";

/** A full set's bytes, written here independently of PrefixSet.encode. */
function full(keys, markers, unmarked = 0) {
  const bytes = new Uint8Array(16 + 8 * keys.length + 4 * markers.length);
  const view = new DataView(bytes.buffer);
  bytes.set([76, 87, 80, 49]); // "LWP1"
  view.setUint32(4, keys.length);
  view.setUint32(8, markers.length);
  view.setUint32(12, unmarked);
  keys.forEach((k, i) => view.setBigUint64(16 + 8 * i, k));
  markers.forEach((m, i) => view.setUint32(16 + 8 * keys.length + 4 * i, m));
  return bytes;
}

function diff({ ka = [], kr = [], ma = [], mr = [], unmarked = 0 }) {
  const bytes = new Uint8Array(24 + 8 * (ka.length + kr.length) + 4 * (ma.length + mr.length));
  const view = new DataView(bytes.buffer);
  bytes.set([76, 87, 68, 49]); // "LWD1"
  [ka.length, kr.length, ma.length, mr.length, unmarked].forEach((n, i) => view.setUint32(4 + 4 * i, n));
  let at = 24;
  for (const k of [...ka, ...kr]) (view.setBigUint64(at, k), (at += 8));
  for (const m of [...ma, ...mr]) (view.setUint32(at, m), (at += 4));
  return bytes;
}

/** @param {bigint} prefix */
function digest(prefix) {
  const bytes = new Uint8Array(32);
  new DataView(bytes.buffer).setBigUint64(0, prefix);
  return bytes;
}

test("a full set: decoded, searched and encoded back to the same bytes", () => {
  const keys = [1n, 5n, 2n ** 63n, 2n ** 64n - 1n];
  const bytes = full(keys, [7, 2 ** 32 - 1], 3);
  const set = PrefixSet.decode(bytes);
  assert.equal(set.size, 4);
  assert.equal(set.unmarked, 3);
  for (const k of keys) assert.ok(set.hasKey(digest(k)));
  for (const k of [0n, 2n, 6n, 2n ** 63n + 1n]) assert.ok(!set.hasKey(digest(k)));
  const marker = new Uint8Array(32);
  new DataView(marker.buffer).setUint32(0, 7);
  assert.ok(set.hasMarker(marker));
  assert.deepEqual(set.encode(), bytes);
  assert.ok(!PrefixSet.empty().hasKey(digest(1n)));
});

test("garbled sets are refused", () => {
  const good = full([1n, 2n], [3]);
  assert.throws(() => PrefixSet.decode(good.subarray(0, good.length - 1)), /length/);
  assert.throws(() => PrefixSet.decode(full([2n, 1n], [])), /order/);
  assert.throws(() => PrefixSet.decode(full([1n, 1n], [])), /order/);
  assert.throws(() => PrefixSet.decode(full([], [4, 3])), /order/);
  assert.throws(() => PrefixSet.decode(new TextEncoder().encode("<html>not this</html>")), /not a full prefix set/);
  assert.throws(() => PrefixSet.decode(diff({ ka: [1n] })), /not a full prefix set/);
});

test("a diff gives a new set and leaves the old one as it was", () => {
  const set = PrefixSet.decode(full([10n, 20n, 30n], [1, 2], 1));
  const next = set.applyDiff(diff({ ka: [5n, 25n, 40n], kr: [20n], ma: [3], mr: [1], unmarked: 0 }));
  assert.deepEqual([...next.keys], [5n, 10n, 25n, 30n, 40n]);
  assert.deepEqual([...next.markers], [2, 3]);
  assert.equal(next.unmarked, 0);
  assert.deepEqual([...set.keys], [10n, 20n, 30n]);
  assert.deepEqual(next.encode(), full([5n, 10n, 25n, 30n, 40n], [2, 3], 0));
});

test("a diff that does not fit the set is refused", () => {
  const set = PrefixSet.decode(full([10n, 20n], [1]));
  assert.throws(() => set.applyDiff(diff({ ka: [10n] })), /already holds/);
  assert.throws(() => set.applyDiff(diff({ kr: [15n] })), /does not hold/);
  assert.throws(() => set.applyDiff(diff({ kr: [30n] })), /does not hold/);
  assert.throws(() => set.applyDiff(diff({ kr: [10n, 20n, 30n] })), /does not hold/);
  assert.throws(() => set.applyDiff(diff({ mr: [2] })), /does not hold/);
  assert.throws(() => set.applyDiff(diff({ ka: [3n, 2n] })), /order/);
  assert.throws(() => set.applyDiff(diff({ ka: [3n] }).subarray(0, 30)), /length/);
  assert.throws(() => set.applyDiff(full([1n], [])), /not a prefix diff/);
});

test("keys that share their first four bytes are told apart by the other four", () => {
  const keys = [0x00000001_00000000n, 0xabcdef01_00000005n, 0xabcdef01_00000007n, 0xabcdef01_ffffffffn, 0xffffffff_ffffffffn];
  const set = PrefixSet.decode(full(keys, [0xabcdef01]));
  const digest = (/** @type {bigint} */ prefix) => {
    const bytes = new Uint8Array(32).fill(0x5a);
    new DataView(bytes.buffer).setBigUint64(0, prefix);
    return bytes;
  };
  for (const key of keys) assert.ok(set.hasKey(digest(key)), key.toString(16));
  for (const other of [0n, 0xabcdef01_00000006n, 0xabcdef01_00000000n, 0xabcdef02_00000005n, 0xfffffffe_ffffffffn]) {
    assert.ok(!set.hasKey(digest(other)), other.toString(16));
  }
  assert.ok(set.hasMarker(digest(0xabcdef01_00000000n)));
  assert.ok(!set.hasMarker(digest(0xabcdef02_00000000n)));
  assert.ok(!PrefixSet.empty().hasKey(digest(0n)));
});
