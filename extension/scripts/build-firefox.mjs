// @ts-check
// Builds the Firefox package from the same sources: only the manifest differs.
//
//   node scripts/build-firefox.mjs [OUT_DIR]     (default: dist/firefox)
//
// Firefox runs the background as an event page (`background.scripts`), not a
// service worker; it needs an add-on id (`browser_specific_settings.gecko`),
// takes policy settings from its own `3rdparty` policy (no `managed_schema`
// key in the manifest), and ignores Chrome's `minimum_chrome_version`. Every
// other file is copied unchanged, so the two builds cannot drift.
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { SOURCE, stage } from "./package.mjs";

export const GECKO_ID = "linkwarn@linkwarn.internal";
// The first releases that take an add-on's data collection declaration (desktop ESR 140, Android 142);
// MV3, declarativeNetRequest and module event pages are older.
export const FIREFOX_MIN_VERSION = "140.0";
export const FIREFOX_ANDROID_MIN_VERSION = "142.0";

/**
 * The Firefox manifest made from Chromium's.
 * @param {Record<string, any>} chromium
 * @returns {Record<string, any>}
 */
export function firefoxManifest(chromium) {
  const manifest = structuredClone(chromium);
  delete manifest.minimum_chrome_version;
  manifest.background = { scripts: [chromium.background.service_worker], type: chromium.background.type };
  delete manifest.storage; // managed storage comes from Firefox's enterprise policy, keyed by the add-on id
  manifest.browser_specific_settings = {
    gecko: {
      id: GECKO_ID,
      strict_min_version: FIREFOX_MIN_VERSION,
      // Warnings shown and proceeds (the listed address, never other browsing) go to the
      // organisation's own proxy, on this computer, for IT's event log.
      data_collection_permissions: { required: ["browsingActivity"] },
    },
    gecko_android: { strict_min_version: FIREFOX_ANDROID_MIN_VERSION },
  };
  return manifest;
}

/** @param {string} out */
export function build(out) {
  stage(out);
  const chromium = JSON.parse(readFileSync(join(SOURCE, "manifest.json"), "utf8"));
  writeFileSync(join(out, "manifest.json"), JSON.stringify(firefoxManifest(chromium), null, 2) + "\n");
  return out;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = resolve(process.argv[2] ?? join(SOURCE, "dist", "firefox"));
  console.log(`built ${build(out)}`);
}
