import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { test } from "node:test";

import { sha256Bytes, sha256Text } from "../lib/sha256.js";

const hexOf = (/** @type {Uint8Array} */ bytes) => Buffer.from(bytes).toString("hex");

test("the digests of FIPS 180-4's examples", () => {
  assert.equal(hexOf(sha256Text("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  assert.equal(hexOf(sha256Text("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  assert.equal(
    hexOf(sha256Text("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
  );
});

test("the same digest as node:crypto for random bytes of every length around the block boundaries", () => {
  for (let length = 0; length < 300; length++) {
    const bytes = randomBytes(length);
    assert.equal(hexOf(sha256Bytes(bytes)), createHash("sha256").update(bytes).digest("hex"), `length ${length}`);
  }
  const big = randomBytes(100_000);
  assert.equal(hexOf(sha256Bytes(big)), createHash("sha256").update(big).digest("hex"));
});

test("the same digest as WebCrypto of the UTF-8 bytes, for random text with non-ASCII and lone surrogates", async () => {
  const pick = ["a", "/", "%", "?", ".", "\u00e9", "\u00ff", "\u4e2d", "\ud83d\ude00", "\ud800", "\udc80", "\x00", "\x7f"];
  for (let n = 0; n < 500; n++) {
    const length = Math.floor(Math.random() * 150);
    let text = "";
    for (let i = 0; i < length; i++) text += Math.random() < 0.8 ? String.fromCharCode(32 + Math.floor(Math.random() * 95)) : pick[Math.floor(Math.random() * pick.length)];
    const expected = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
    assert.equal(hexOf(sha256Text(text)), hexOf(expected), JSON.stringify(text));
  }
});

test("a digest is its own array: a later call does not change an earlier result", () => {
  const first = sha256Text("leak.test/");
  const copy = Uint8Array.from(first);
  sha256Text("other.test/");
  sha256Bytes(randomBytes(1000));
  assert.deepEqual(first, copy);
});
