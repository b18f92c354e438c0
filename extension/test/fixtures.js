// What the proxy's own code says, made at test time by tests/support/jsfixtures.py: the
// suffix list the local API serves and the differential corpus. tests/test_extension_js.py
// passes them as LINKWARN_FIXTURES; run alone, this makes them (uv must be on the PATH).
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

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
