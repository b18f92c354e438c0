// @ts-check
// What a package of the extension holds: the same files for every browser's build.
import { cpSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const SOURCE = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const FILES = [
  "background.js", "content.css", "content.js", "textlinks.js", "options.html", "options.js", "popup.css", "popup.html",
  "popup.js", "share.js", "warning.css", "warning.html", "warning.js", "managed_schema.json", "icons", "lib",
];

/** A fresh directory *out* holding the package's files (and Chromium's manifest). @param {string} out */
export function stage(out) {
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  for (const name of [...FILES, "manifest.json"]) cpSync(join(SOURCE, name), join(out, name), { recursive: true });
  return out;
}
