// Generates rekey/testdata/vectors.json with the reference implementation,
// @nucypher/umbral-pre 0.10.0. Run through scripts/gen-vectors.sh.
//
// Deterministic values (U, keys, SecretKeyFactory outputs, plaintexts) are
// checked byte for byte by the Go tests; randomized objects (capsules,
// kfrags, cfrags, signatures) are checked by parsing, re-serializing,
// verifying and decrypting.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const umbral = require('@nucypher/umbral-pre');
const { hex } = require('./umbral.js');

const fixedSK = (label) => umbral.SecretKey.fromBEBytes(crypto.createHash('sha256').update(label).digest());
const key = (label) => {
  const sk = fixedSK(label);
  return { label, sk: hex(sk.toBEBytes()), pk: hex(sk.publicKey().toCompressedBytes()) };
};

const seed = Uint8Array.from({ length: 32 }, (_, i) => i);
const skfLabels = ['', 'alice', '/', '/home', '/home/ubuntu', '/home/ubuntu/secret.txt', 'kadre/identity/v1'];
const skf = {
  seed: hex(seed),
  keys: skfLabels.map((l) => ({ label: hex(Buffer.from(l)), key: hex(umbral.SecretKeyFactory.fromSecureRandomness(seed).makeKey(Buffer.from(l)).toBEBytes()) })),
  secrets: skfLabels.map((l) => ({ label: hex(Buffer.from(l)), secret: hex(umbral.SecretKeyFactory.fromSecureRandomness(seed).makeSecret(Buffer.from(l))) })),
  factories: skfLabels.map((l) => ({
    factory: hex(Buffer.from(l)),
    label: hex(Buffer.from('bob')),
    key: hex(umbral.SecretKeyFactory.fromSecureRandomness(seed).makeFactory(Buffer.from(l)).makeKey(Buffer.from('bob')).toBEBytes()),
  })),
};

const alice = key('alice');
const bob = key('bob');
const signer = key('signer');
const pk = (k) => umbral.PublicKey.fromCompressedBytes(Buffer.from(k.pk, 'hex'));
const sk = (k) => umbral.SecretKey.fromBEBytes(Buffer.from(k.sk, 'hex'));

const signatures = ['', 'kadre', 'a longer message that is signed by the signer key'].map((m) => ({
  sk: signer.sk, pk: signer.pk, msg: hex(Buffer.from(m)),
  signature: hex(new umbral.Signer(sk(signer)).sign(Buffer.from(m)).toBEBytes()),
}));

const plaintexts = ['', 'peace at dawn', 'x'.repeat(1000)];
const capsules = plaintexts.map((p) => {
  const [c, ct] = umbral.encrypt(pk(alice), Buffer.from(p));
  return { sk: alice.sk, pk: alice.pk, plaintext: hex(Buffer.from(p)), capsule: hex(c.toBytes()), ciphertext: hex(ct) };
});

const grants = [];
for (const [threshold, shares] of [[3, 5], [1, 1], [2, 3]]) {
  for (const signDelegating of [false, true]) {
    for (const signReceiving of [false, true]) {
      const plaintext = Buffer.from(`grant ${threshold}-of-${shares} d=${signDelegating} r=${signReceiving}`);
      const [c, ct] = umbral.encrypt(pk(alice), plaintext);
      const kfrags = umbral.generateKFrags(sk(alice), pk(bob), new umbral.Signer(sk(signer)), threshold, shares, signDelegating, signReceiving);
      const cfrags = kfrags.map((k) => umbral.reencrypt(c, k));
      grants.push({
        delegating_sk: alice.sk, delegating_pk: alice.pk,
        receiving_sk: bob.sk, receiving_pk: bob.pk,
        verifying_pk: signer.pk,
        threshold, shares, sign_delegating: signDelegating, sign_receiving: signReceiving,
        plaintext: hex(plaintext), capsule: hex(c.toBytes()), ciphertext: hex(ct),
        kfrags: kfrags.map((k) => hex(k.toBytes())),
        cfrags: cfrags.map((k) => hex(k.toBytes())),
        cfrags_simple: cfrags.map((k) => hex(k.toBytesSimple())),
        capsule_simple: hex(c.toBytesSimple()),
      });
    }
  }
}

const [ux, uy] = new umbral.Parameters().u.coordinates();
const out = {
  generator: 'interop/gen-vectors.js',
  reference: '@nucypher/umbral-pre@' + require('@nucypher/umbral-pre/package.json').version,
  u: { x: hex(ux), y: hex(uy) },
  keys: [alice, bob, signer, key('carol'), key('kadre')],
  skf, signatures, capsules, grants,
};
const dest = process.argv[2] || path.join(__dirname, '..', 'rekey', 'testdata', 'vectors.json');
fs.writeFileSync(dest, JSON.stringify(out, null, 1) + '\n');
console.log(`wrote ${dest}`);
