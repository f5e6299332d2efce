// A third-party application on the agent's API (SPEC.md §8), in Node.js
// with nothing but its standard library: alice grants /app to bob,
// encrypts, bob decrypts (a small file in memory, a large one streamed
// from disk to disk, many small ones in one batch), refusals are checked,
// alice revokes, bob is refused with the CLI's hint.
//
//   node scripts/agent-app.mjs <alice home> <bob home>
//
// Both homes must have an agent running (kadre agent). Exits 1 at the
// first check that fails.
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";

const [aliceHome, bobHome] = process.argv.slice(2);
if (!aliceHome || !bobHome) {
  console.error("usage: node scripts/agent-app.mjs <alice home> <bob home>");
  process.exit(2);
}

function agent(home) {
  const { url } = JSON.parse(readFileSync(join(home, "agent.json"), "utf8"));
  return { url, token: readFileSync(join(home, "agent.cookie"), "utf8").trim() };
}
const alice = agent(aliceHome), bob = agent(bobHome);

function check(ok, what) {
  if (!ok) throw new Error(what);
}

// call sends a request with fetch; body is a Buffer, a string or an object (JSON).
async function call(a, method, path, body, headers = {}) {
  const h = { Authorization: `Bearer ${a.token}`, ...headers };
  if (body !== undefined && !(body instanceof Buffer) && typeof body !== "string") {
    body = JSON.stringify(body);
    h["Content-Type"] = "application/json";
  }
  const res = await fetch(a.url + path, { method, headers: h, body });
  const buf = Buffer.from(await res.arrayBuffer());
  const json = (res.headers.get("content-type") || "").startsWith("application/json") ? JSON.parse(buf.toString("utf8")) : undefined;
  return { status: res.status, headers: res.headers, buf, json };
}

// stream POSTs a file to the agent and writes the answer to another,
// both streamed (constant memory in this process as in the agent).
function stream(a, path, src, dst) {
  return new Promise((resolve, reject) => {
    const u = new URL(a.url + path);
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method: "POST",
      headers: { Authorization: `Bearer ${a.token}`, "Content-Type": "application/octet-stream" } }, (res) => {
      if (res.statusCode !== 200) {
        let text = "";
        res.on("data", (d) => (text += d));
        res.on("end", () => reject(new Error(`${path}: HTTP ${res.statusCode} ${text}`)));
        return;
      }
      pipeline(res, createWriteStream(dst)).then(() => resolve(res.headers), reject);
    });
    req.on("error", reject);
    pipeline(createReadStream(src), req).catch(reject);
  });
}

const sha = (file) => createHash("sha256").update(readFileSync(file)).digest("hex");

const work = mkdtempSync(join(tmpdir(), "kadre-app-"));
try {
  const bobID = (await call(bob, "GET", "/v1/identity")).json.identity;
  check(bobID.startsWith("kadre1"), `bob's identity: ${bobID}`);

  let r = await call(alice, "POST", "/v1/grants", { to: bobID, path: "/app", m: 2, n: 3, expires: "2w" });
  check(r.status === 201 && r.json.placed === 3, `grant: ${r.status} ${r.buf}`);
  r = await call(alice, "GET", "/v1/grants");
  check(r.status === 200 && r.json.some((g) => g.path === "/app" && g.recipient === bobID), "the grant is not listed");

  // A small file in memory.
  r = await call(alice, "POST", "/v1/encrypt?path=" + encodeURIComponent("/app/notes/été.txt"), Buffer.from("bonjour, bob"));
  check(r.status === 200 && r.buf.length > 100, `encrypt: ${r.status}`);
  const small = r.buf;
  r = await call(bob, "POST", "/v1/decrypt", small);
  check(r.status === 200 && r.buf.toString() === "bonjour, bob", `decrypt: ${r.status} ${r.buf}`);
  check(decodeURIComponent(r.headers.get("x-kadre-path")) === "/app/notes/été.txt", `path header ${r.headers.get("x-kadre-path")}`);

  // A large file, streamed both ways.
  const plain = join(work, "big.bin"), enc = join(work, "big.kadre"), out = join(work, "big.out");
  writeFileSync(plain, randomBytes(6 << 20));
  await stream(alice, "/v1/encrypt?path=/app/big.bin", plain, enc);
  const headers = await stream(bob, "/v1/decrypt", enc, out);
  check(sha(out) === sha(plain) && statSync(out).size === 6 << 20, "the streamed file differs");
  check(headers["x-kadre-signed"] === "true", "not signed");

  // Many small files in one batch, one of them not granted.
  const files = [];
  for (let i = 0; i < 20; i++) {
    r = await call(alice, "POST", `/v1/encrypt?path=/app/batch/${i}.txt`, Buffer.from(`batch ${i}`));
    files.push({ name: `f${i}`, data: r.buf.toString("base64") });
  }
  r = await call(alice, "POST", "/v1/encrypt?path=/private/x", Buffer.from("not for bob"));
  files.push({ name: "private", data: r.buf.toString("base64") });
  r = await call(bob, "POST", "/v1/decrypt-batch", { files });
  check(r.status === 200 && r.json.ok === 20 && r.json.failed === 1, `batch: ${r.status} ${r.buf}`);
  r.json.results.slice(0, 20).forEach((res, i) => check(Buffer.from(res.plaintext, "base64").toString() === `batch ${i}`, `batch file ${i}`));
  check(r.json.results[20].error.code === "NOT_GRANTED" && r.json.results[20].error.hint, "the private file");

  // Refusals.
  r = await call({ ...bob, token: "0".repeat(64) }, "GET", "/v1/identity");
  check(r.status === 401 && r.json.error.code === "UNAUTHORIZED", `wrong token: ${r.status}`);
  r = await call(bob, "POST", "/v1/decrypt", small, { Origin: "https://evil.example" });
  check(r.status === 403 && r.json.error.code === "FORBIDDEN_ORIGIN", `origin: ${r.status}`);
  r = await call(bob, "POST", "/v1/decrypt-batch", "{files: nope");
  check(r.status === 400 && r.json.error.code === "BAD_JSON", `bad JSON: ${r.status}`);

  // Revoked: the CLI's code and hint.
  r = await call(alice, "POST", "/v1/revoke", { to: bobID, path: "/app" });
  check(r.status === 200 && r.json.dead === true && r.json.rotated === true, `revoke: ${r.status} ${r.buf}`);
  r = await call(bob, "POST", "/v1/decrypt", small);
  check(r.status === 403 && r.json.error.code === "REVOKED" && r.json.error.hint.includes("revoked"), `after the revocation: ${r.status} ${r.buf}`);
  console.log(`agent-app: ok (hint after the revocation: ${r.json.error.hint})`);
} catch (e) {
  console.error("agent-app: FAIL:", e.message);
  process.exitCode = 1;
} finally {
  rmSync(work, { recursive: true, force: true });
}
