import assert from "node:assert/strict";
import { test } from "node:test";

import "../textlinks.js";

const { find } = /** @type {any} */ (globalThis).linkwarnTextLinks;

test("links in running text are read as the proxy's link finder reads them", () => {
  const urls = (/** @type {string} */ text) => find(text).map((/** @type {any} */ link) => link.url);
  assert.deepEqual(urls("see http://leak.example/inbox, and mirror.test/films/x."), ["http://leak.example/inbox", "http://mirror.test/films/x"]);
  // Typographic quotes and guillemets end a link, as straight quotes do (once read as part of the host).
  assert.deepEqual(urls("read \u201chttps://mirror.test/x\u201d and \u00abmirror.test/films/y\u00bb"), ["https://mirror.test/x", "http://mirror.test/films/y"]);
  assert.deepEqual(urls("\u201ehttp://leak.example/a\u201c \u2018http://leak.example/b\u2019"), ["http://leak.example/a", "http://leak.example/b"]);
  assert.deepEqual(urls("no link here"), []);
});
