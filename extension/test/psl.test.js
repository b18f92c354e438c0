import assert from "node:assert/strict";
import { test } from "node:test";

import { SuffixList } from "../lib/psl.js";
import { PSL_BODY } from "./fixtures.js";

const list = SuffixList.fromRules(JSON.parse(PSL_BODY.toString("utf8")).rules);

test("registrable domains: ordinary, private, wildcard and exception rules, unknown suffixes", () => {
  const cases = [
    ["www.example.co.uk", "example.co.uk"],
    ["co.uk", ""],
    ["a.b.blogspot.com", "b.blogspot.com"], // the private section counts
    ["user.github.io", "user.github.io"],
    ["foo.ck", ""], // *.ck: foo.ck is itself a suffix
    ["a.foo.ck", "a.foo.ck"],
    ["www.ck", "www.ck"], // !www.ck
    ["a.www.ck", "www.ck"],
    ["a.b.city.kawasaki.jp", "city.kawasaki.jp"],
    ["a.xn--55qx5d.cn", "a.xn--55qx5d.cn"], // 公司.cn, as a canonical host has it
    ["x.leak.test", "leak.test"], // .test is not listed: its last label is the suffix
    ["intranet", "intranet"],
    ["x.leak.com:b", "leak.com"], // what tldextract reads of a host with a colon
  ];
  for (const [host, expected] of cases) assert.equal(list.registrableDomain(host), expected, host);
});

test("a garbled suffix list is refused whole", () => {
  for (const bad of [null, [], "com", [1], ["com", "a b"], ["COM"], ["*.*.x"], ["公司.cn"], ["a..b"]]) {
    assert.throws(() => SuffixList.fromRules(bad), /suffix/, JSON.stringify(bad));
  }
  assert.equal(SuffixList.fromRules(["com", "*.ck", "!www.ck"]).size, 3);
});
