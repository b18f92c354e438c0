import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, test } from "node:test";

import { ApiClient, ApiError } from "../lib/api.js";

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
