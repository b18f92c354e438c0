// @ts-check
// Builds the Chromium package IT force-installs by policy: a CRX signed with the
// organisation's key, and the update manifest that points at it.
//
//   node scripts/build-chromium.mjs --key KEY.pem --base-url URL [--out DIR] [--chromium PATH]
//
// Writes DIR/linkwarn.crx and DIR/updates.xml (default DIR: dist/chromium), to be
// served at URL, and prints the extension id and the ExtensionInstallForcelist
// entry. KEY.pem is made (RSA, 2048 bits) when it does not exist: keep it, it is
// the extension's id. The CRX is signed by Chromium itself (`--pack-extension`).
import { execFileSync } from "node:child_process";
import { createHash, createPublicKey, generateKeyPairSync } from "node:crypto";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import { SOURCE, stage } from "./package.mjs";

/** The extension id Chromium derives from a key: the first 128 bits of its SHA-256, as letters a-p. @param {string} pem */
export function extensionId(pem) {
  const der = createPublicKey(pem).export({ type: "spki", format: "der" });
  const digest = createHash("sha256").update(der).digest("hex").slice(0, 32);
  return [...digest].map((c) => String.fromCharCode(97 + parseInt(c, 16))).join("");
}

/** @param {string} text */
function xmlAttribute(text) {
  return text.replace(/&/g, "&amp;").replace(/'/g, "&apos;").replace(/</g, "&lt;");
}

/**
 * The update manifest (Chromium's gupdate format) for one extension.
 * @param {string} id @param {string} codebase @param {string} version
 */
export function updateManifest(id, codebase, version) {
  return (
    "<?xml version='1.0' encoding='UTF-8'?>\n" +
    "<gupdate xmlns='http://www.google.com/update2/response' protocol='2.0'>\n" +
    `  <app appid='${id}'>\n    <updatecheck codebase='${xmlAttribute(codebase)}' version='${xmlAttribute(version)}' />\n  </app>\n` +
    "</gupdate>\n"
  );
}

/**
 * @param {{key: string, baseUrl: string, out: string, chromium: string}} options
 * @returns {{id: string, crx: string, updates: string, forcelist: string}}
 */
export function build({ key, baseUrl, out, chromium }) {
  const base = new URL(baseUrl.endsWith("/") ? baseUrl : `${baseUrl}/`);
  if (!existsSync(key)) {
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    writeFileSync(key, privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
  }
  const pem = readFileSync(key, "utf8");
  const id = extensionId(pem);
  const work = mkdtempSync(join(tmpdir(), "linkwarn-crx-"));
  try {
    const staged = stage(join(work, "linkwarn"));
    const root = typeof process.getuid === "function" && process.getuid() === 0;
    // A profile of its own: with the user's browser open, the command would be handed to it.
    const profile = join(work, "profile");
    execFileSync(
      chromium,
      [...(root ? ["--no-sandbox"] : []), "--headless", `--user-data-dir=${profile}`, `--pack-extension=${staged}`, `--pack-extension-key=${resolve(key)}`],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    const packed = join(work, "linkwarn.crx");
    if (!existsSync(packed)) throw new Error(`${chromium} --pack-extension wrote no ${packed}`);
    mkdirSync(out, { recursive: true });
    const crx = join(out, "linkwarn.crx");
    copyFileSync(packed, crx); // not a rename: the temporary directory may be another file system
    chmodSync(crx, 0o644); // Chromium writes it private; it is served to every browser
    const version = JSON.parse(readFileSync(join(SOURCE, "manifest.json"), "utf8")).version;
    const updates = join(out, "updates.xml");
    writeFileSync(updates, updateManifest(id, new URL("linkwarn.crx", base).href, version));
    return { id, crx, updates, forcelist: `${id};${new URL("updates.xml", base).href}` };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      key: { type: "string" },
      "base-url": { type: "string" },
      out: { type: "string", default: join(SOURCE, "dist", "chromium") },
      chromium: { type: "string", default: process.env.CHROMIUM ?? "chromium" },
    },
  });
  if (!values.key || !values["base-url"]) {
    console.error("usage: node scripts/build-chromium.mjs --key KEY.pem --base-url URL [--out DIR] [--chromium PATH]");
    process.exit(2);
  }
  const built = build({ key: values.key, baseUrl: values["base-url"], out: resolve(values.out), chromium: values.chromium });
  console.log(`built ${built.crx} and ${built.updates}`);
  console.log(`extension id: ${built.id}`);
  console.log(`ExtensionInstallForcelist entry: ${built.forcelist}`);
}
