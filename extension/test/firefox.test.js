// The Firefox build: the same sources, a manifest of Firefox's keys.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { GECKO_ID, firefoxManifest } from "../scripts/build-firefox.mjs";

const chromium = JSON.parse(readFileSync(new URL("../manifest.json", import.meta.url), "utf8"));

test("the Firefox manifest runs the same background script as an event page", () => {
  const manifest = firefoxManifest(chromium);
  assert.deepEqual(manifest.background, { scripts: ["background.js"], type: "module" });
  assert.equal(manifest.browser_specific_settings.gecko.id, GECKO_ID);
  assert.equal(manifest.minimum_chrome_version, undefined);
  assert.equal(manifest.storage, undefined);
});

test("every other key is Chromium's, unchanged", () => {
  const manifest = firefoxManifest(chromium);
  for (const key of Object.keys(chromium)) {
    if (["background", "minimum_chrome_version", "storage"].includes(key)) continue;
    assert.deepEqual(manifest[key], chromium[key], key);
  }
  assert.equal(chromium.background.service_worker, "background.js"); // the source is untouched
});
