// What the proxy's own code says, made at test time by tests/support/jsfixtures.py: the
// suffix list the local API serves and the differential corpus. tests/test_extension_js.py
// passes them as LINKWARN_FIXTURES; run alone, this makes them (uv must be on the PATH).
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

import { PrefixSet } from "../lib/prefixes.js";
import { sha256 } from "../lib/matcher.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

function directory() {
  const given = process.env.LINKWARN_FIXTURES;
  if (given) {
    if (!existsSync(join(given, "psl.json"))) throw new Error(`LINKWARN_FIXTURES=${given} holds no psl.json`);
    return given;
  }
  const made = mkdtempSync(join(tmpdir(), "linkwarn-fixtures-"));
  const run = spawnSync("uv", ["run", "--frozen", "python", "-m", "tests.support.jsfixtures", made], { cwd: ROOT, encoding: "utf8" });
  if (run.status !== 0) {
    throw new Error(
      "LINKWARN_FIXTURES is not set, and making the fixtures failed; run " +
        "`uv run python -m tests.support.jsfixtures DIR` in the repository and set LINKWARN_FIXTURES=DIR:\n" +
        (run.error?.message ?? run.stderr),
    );
  }
  process.env.LINKWARN_FIXTURES = made;
  return made;
}

const DIR = directory();

/** The body of GET /v1/psl. */
export const PSL_BODY = readFileSync(join(DIR, "psl.json"));
/** @type {{registrable: [string, string][], urls: any[]}} */
export const DIFFERENTIAL = JSON.parse(readFileSync(join(DIR, "differential.json"), "utf8"));

/** @param {string} name */
export function vectors(name) {
  return JSON.parse(readFileSync(join(ROOT, "tests", "vectors", name), "utf8"));
}

/** The bytes of a full set holding the keys of *expressions* and the markers of *hosts*. */
export async function fullSet(expressions, hosts = [], unmarked = 0) {
  const keys = [];
  for (const e of expressions) keys.push(new DataView((await sha256(e)).buffer).getBigUint64(0));
  const markers = [];
  for (const h of hosts) markers.push(new DataView((await sha256(h)).buffer).getUint32(0));
  keys.sort((a, b) => (a < b ? -1 : 1));
  markers.sort((a, b) => a - b);
  return new PrefixSet(BigUint64Array.from(keys), Uint32Array.from(markers), unmarked).encode();
}

