import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, test } from "node:test";

import { ApiClient, ApiError, MAX_BATCH, MAX_BATCH_BYTES, MAX_URL_SENT, batches, checkEach } from "../lib/api.js";

/** A stand-in for the proxy's API on 127.0.0.1: records requests, answers what each test sets. */
let server;
let base;
const seen = [];
let answer = () => ({ status: 200, body: {} });

before(async () => {
  server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => (body += chunk));
    request.on("end", () => {
      seen.push({ method: request.method, url: request.url, headers: request.headers, body });
      const { status, body: out, headers = {}, delay = 0 } = answer(request);
      setTimeout(() => {
        response.writeHead(status, { "content-type": "application/json", ...headers });
        response.end(out === undefined ? "" : JSON.stringify(out));
      }, delay);
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${server.address().port}`;
});
after(() => server.close());

test("check posts JSON and returns one result per URL", async () => {
  answer = () => ({ status: 200, body: { results: [{ url: "http://a.test/", listed: false }], checked_at: 1 } });
  const results = await new ApiClient(base, "").check(["http://a.test/"]);
  assert.equal(results[0].url, "http://a.test/");
  const request = seen.at(-1);
  assert.equal(request.method, "POST");
  assert.equal(request.headers["content-type"], "application/json");
  assert.equal(request.headers.authorization, undefined);
  assert.deepEqual(JSON.parse(request.body), { urls: ["http://a.test/"] });
});

test("a result count that does not match is refused", async () => {
  answer = () => ({ status: 200, body: { results: [], checked_at: 1 } });
  await assert.rejects(new ApiClient(base, "").check(["http://a.test/"]), (e) => e instanceof ApiError && e.code === "bad_answer");
});

test("writes carry the token, and are not sent without one", async () => {
  answer = () => ({ status: 202, body: { recorded: true } });
  const token = "f".repeat(64);
  await new ApiClient(base, token).report("http://a.test/", "ours");
  assert.equal(seen.at(-1).headers.authorization, `Bearer ${token}`);
  const count = seen.length;
  await assert.rejects(new ApiClient(base, "").report("http://a.test/", ""), (e) => e.code === "token_missing");
  assert.equal(seen.length, count);
});

test("the API's own errors keep their code and message", async () => {
  answer = () => ({ status: 403, body: { error: { code: "origin_not_allowed", message: "requests from web pages are refused" } } });
  await assert.rejects(new ApiClient(base, "").status(), (e) => e.code === "origin_not_allowed" && e.status === 403);
});

test("ETags: a 304 comes back without a body", async () => {
  answer = (request) =>
    request.headers["if-none-match"] === '"v1"'
      ? { status: 304, body: undefined, headers: { etag: '"v1"' } }
      : { status: 200, body: { entries: [], truncated: false }, headers: { etag: '"v1"' } };
  const client = new ApiClient(base, "");
  const first = await client.rules();
  assert.equal(first.etag, '"v1"');
  const second = await client.rules(first.etag);
  assert.equal(second.status, 304);
});

test("unreachable and slow backends are told apart", async () => {
  const closed = createServer();
  await new Promise((resolve) => closed.listen(0, "127.0.0.1", resolve));
  const port = closed.address().port;
  await new Promise((resolve) => closed.close(resolve));
  await assert.rejects(new ApiClient(`http://127.0.0.1:${port}`, "").status(), (e) => e.code === "unreachable");
  answer = () => ({ status: 200, body: {}, delay: 300 });
  await assert.rejects(new ApiClient(base, "", { timeoutMs: 50 }).status(), (e) => e.code === "timeout");
});

test("one URL the proxy refuses costs only its own verdict", async () => {
  const asked = [];
  const check = async (urls) => {
    asked.push(urls.length);
    if (urls.some((u) => u.includes("bad"))) throw new ApiError("invalid_text", "the body holds a lone surrogate", 400);
    return urls.map((url) => ({ url, listed: url.includes("leak"), error: null }));
  };
  const urls = Array.from({ length: 40 }, (_, i) => (i === 17 ? "http://bad.test/" : `http://site${i}.test/`));
  urls[3] = "http://leak.test/";
  const results = await checkEach(check, urls);
  assert.equal(results.length, 40);
  assert.deepEqual(results[17].error, { code: "invalid_text", message: "the body holds a lone surrogate" });
  assert.equal(results[3].listed, true);
  assert.ok(results.every((r, i) => i === 17 || r.error === null));
  assert.ok(asked.length <= 2 * Math.ceil(Math.log2(40)) + 1); // split in halves, not one by one
});

test("an unreachable proxy is not a refusal: the whole lookup fails", async () => {
  const check = async () => {
    throw new ApiError("unreachable", "nothing answers there");
  };
  await assert.rejects(checkEach(check, ["http://a.test/"]), /nothing answers there/);
  const failing = async () => {
    throw new ApiError("lists_unavailable", "the lists are still loading", 503);
  };
  await assert.rejects(checkEach(failing, ["http://a.test/"]), /still loading/);
});

test("batches stay within the API's limits, and a very long URL is sent cut where the proxy stops reading", () => {
  const long = `http://leak.test/${"a".repeat(200_000)}`;
  const many = Array.from({ length: 1200 }, (_, i) => `http://site${i}.test/`);
  const split = batches([...many, long, "http://b.test/"]);
  assert.ok(split.every((batch) => batch.length <= MAX_BATCH));
  assert.ok(split.every((batch) => JSON.stringify({ urls: batch }).length <= MAX_BATCH_BYTES + MAX_URL_SENT * 3));
  assert.deepEqual(split.flat().slice(0, 1200), many);
  assert.equal(split.flat()[1200].length, MAX_URL_SENT);
  assert.equal(split.flat()[1200], long.slice(0, MAX_URL_SENT));
});
