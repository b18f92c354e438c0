import assert from "node:assert/strict";
import { test } from "node:test";

import { DEFAULTS, effectiveSettings, problemWith } from "../lib/settings.js";

const TOKEN = "a".repeat(64);

test("defaults, then the options page, then policy", () => {
  assert.deepEqual(effectiveSettings({}, {}).settings, DEFAULTS);
  const local = effectiveSettings({}, { apiUrl: "http://localhost:9000/", mode: "mark" });
  assert.deepEqual(local.settings, { apiUrl: "http://localhost:9000", apiToken: "", mode: "mark" });
  assert.deepEqual(local.locked, []);
  const policy = effectiveSettings({ apiUrl: "http://127.0.0.1:7000", apiToken: TOKEN }, { apiUrl: "http://localhost:9000", mode: "mark" });
  assert.deepEqual(policy.settings, { apiUrl: "http://127.0.0.1:7000", apiToken: TOKEN, mode: "mark" });
  assert.deepEqual(policy.locked, ["apiUrl", "apiToken"]);
});

test("a bad value is reported and the next source's used", () => {
  const { settings, problems, locked } = effectiveSettings({ apiUrl: "http://api.example:8089" }, { apiUrl: "http://[::1]:8089" });
  assert.equal(settings.apiUrl, "http://[::1]:8089");
  assert.deepEqual(locked, []);
  assert.match(problems[0], /^policy: apiUrl must name this computer/);
});

test("each setting's problems are named", () => {
  assert.equal(problemWith("apiUrl", "http://127.0.0.1:8089"), null);
  assert.match(problemWith("apiUrl", "https://127.0.0.1:8089"), /http:\/\//);
  assert.match(problemWith("apiUrl", "127.0.0.1:8089"), /not a URL|http/);
  assert.match(problemWith("apiUrl", "http://127.0.0.1:8089/v1"), /address only/);
  assert.match(problemWith("apiUrl", 8089), /must be text/);
  assert.equal(problemWith("apiToken", ""), null);
  assert.equal(problemWith("apiToken", TOKEN), null);
  assert.match(problemWith("apiToken", "secret"), /64 hex/);
  assert.match(problemWith("mode", "block"), /"warn" or "mark"/);
});
