// Times the reference implementation (@nucypher/umbral-pre 0.10.0, WASM)
// with the same method as kadre's side (scripts/bench-umbral): fixed keys, a
// 1 KiB plaintext, both keys signed, 3-of-5; per operation a warm-up, then
// interleaved rounds of individually timed calls; median and p90 over the
// pooled samples. Prints JSON {op: {median_us, p90_us, n}} on stdout.
'use strict';

const crypto = require('crypto');
const umbral = require('@nucypher/umbral-pre');

const rounds = Number(process.env.ROUNDS || 5);
const iters = Number(process.env.ITERS || 200);
const warmup = Number(process.env.WARMUP || 50);

const fixed = (l) => umbral.SecretKey.fromBEBytes(crypto.createHash('sha256').update(l).digest());
const alice = fixed('alice'), bob = fixed('bob'), signerSK = fixed('signer');
const apk = alice.publicKey(), bpk = bob.publicKey(), spk = signerSK.publicKey();
const signer = new umbral.Signer(signerSK);
const pt = crypto.randomBytes(1024);

const [capsule, ct] = umbral.encrypt(apk, pt);
const capsuleBytes = capsule.toBytes();
const kfrags = umbral.generateKFrags(alice, bpk, signer, 3, 5, true, true);
const kfragBytes = kfrags[0].toBytes();
const vcfrags = kfrags.map((k) => umbral.reencrypt(capsule, k));
const cfragBytes = vcfrags[0].toBytes();

// Each op: prepare() runs untimed before every call, run(x) is timed.
const ops = {
  encrypt: { run: () => umbral.encrypt(apk, pt) },
  decrypt_original: { run: () => umbral.decryptOriginal(alice, capsule, ct) },
  generate_kfrags: { run: () => umbral.generateKFrags(alice, bpk, signer, 3, 5, true, true) },
  kfrag_verify: { prepare: () => umbral.KeyFrag.fromBytes(kfragBytes), run: (k) => k.verify(spk, apk, bpk) },
  reencrypt: { run: () => umbral.reencrypt(capsule, kfrags[0]) },
  cfrag_verify: { prepare: () => umbral.CapsuleFrag.fromBytes(cfragBytes), run: (c) => c.verify(capsule, spk, apk, bpk) },
  decrypt_reencrypted: { run: () => umbral.decryptReencrypted(bob, apk, capsule, vcfrags.slice(0, 3), ct) },
  capsule_parse: { run: () => umbral.Capsule.fromBytes(capsuleBytes) },
};

const samples = Object.fromEntries(Object.keys(ops).map((k) => [k, []]));
function once(name, record) {
  const op = ops[name];
  const x = op.prepare ? op.prepare() : undefined;
  const t0 = process.hrtime.bigint();
  op.run(x);
  const dt = Number(process.hrtime.bigint() - t0) / 1000;
  if (record) samples[name].push(dt);
}

for (const name of Object.keys(ops)) for (let i = 0; i < warmup; i++) once(name, false);
for (let r = 0; r < rounds; r++) {
  for (const name of Object.keys(ops)) for (let i = 0; i < iters; i++) once(name, true);
}

const q = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
};
const out = {};
for (const [name, xs] of Object.entries(samples)) out[name] = { median_us: q(xs, 0.5), p90_us: q(xs, 0.9), n: xs.length };
process.stdout.write(JSON.stringify(out) + '\n');
