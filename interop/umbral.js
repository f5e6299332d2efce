// kadre's bridge to the reference implementation, @nucypher/umbral-pre
// 0.10.0 (WASM). It reads a JSON array of operations on stdin and writes a
// JSON array of results on stdout, one per operation, so that Go tests can
// drive the reference in one process. Bytes travel as lowercase hex.
//
// Every result is {ok: true, ...} or {ok: false, error: "<reference error>"}.
'use strict';

const umbral = require('@nucypher/umbral-pre');

const hex = (b) => Buffer.from(b).toString('hex');
const bin = (h) => Uint8Array.from(Buffer.from(h, 'hex'));

const sk = (h) => umbral.SecretKey.fromBEBytes(bin(h));
const pk = (h) => (h === null || h === undefined ? null : umbral.PublicKey.fromCompressedBytes(bin(h)));
const capsule = (h) => umbral.Capsule.fromBytes(bin(h));

function verifiedKFrag(op) {
  return umbral.KeyFrag.fromBytes(bin(op.kfrag)).verify(pk(op.verifying_pk), pk(op.delegating_pk), pk(op.receiving_pk));
}

function verifiedCFrag(h, op, c) {
  return umbral.CapsuleFrag.fromBytes(bin(h)).verify(c, pk(op.verifying_pk), pk(op.delegating_pk), pk(op.receiving_pk));
}

const ops = {
  public_key: (op) => ({ pk: hex(sk(op.sk).publicKey().toCompressedBytes()) }),

  parameters_u: () => {
    const [x, y] = new umbral.Parameters().u.coordinates();
    return { x: hex(x), y: hex(y) };
  },

  skf: (op) => {
    let f = umbral.SecretKeyFactory.fromSecureRandomness(bin(op.seed));
    for (const l of op.factories || []) f = f.makeFactory(bin(l));
    const out = {};
    if (op.key !== undefined) out.key = hex(f.makeKey(bin(op.key)).toBEBytes());
    if (op.secret !== undefined) out.secret = hex(f.makeSecret(bin(op.secret)));
    return out;
  },

  sign: (op) => ({ signature: hex(new umbral.Signer(sk(op.sk)).sign(bin(op.msg)).toBEBytes()) }),

  verify_signature: (op) => ({
    valid: umbral.Signature.fromBEBytes(bin(op.signature)).verify(pk(op.pk), bin(op.msg)),
  }),

  encrypt: (op) => {
    const [c, ct] = umbral.encrypt(pk(op.pk), bin(op.plaintext));
    return { capsule: hex(c.toBytes()), ciphertext: hex(ct) };
  },

  decrypt_original: (op) => ({ plaintext: hex(umbral.decryptOriginal(sk(op.sk), capsule(op.capsule), bin(op.ciphertext))) }),

  generate_kfrags: (op) => {
    const kfrags = umbral.generateKFrags(sk(op.delegating_sk), pk(op.receiving_pk), new umbral.Signer(sk(op.signer_sk)),
      op.threshold, op.shares, op.sign_delegating, op.sign_receiving);
    return { kfrags: kfrags.map((k) => hex(k.toBytes())) };
  },

  verify_kfrag: (op) => {
    verifiedKFrag(op);
    return {};
  },

  reencrypt: (op) => ({ cfrag: hex(umbral.reencrypt(capsule(op.capsule), verifiedKFrag(op)).toBytes()) }),

  verify_cfrag: (op) => {
    verifiedCFrag(op.cfrag, op, capsule(op.capsule));
    return {};
  },

  decrypt_reencrypted: (op) => {
    const c = capsule(op.capsule);
    const cfrags = op.cfrags.map((h) => verifiedCFrag(h, op, c));
    return { plaintext: hex(umbral.decryptReencrypted(sk(op.receiving_sk), pk(op.delegating_pk), c, cfrags, bin(op.ciphertext))) };
  },

  // Parse with the reference and serialize again: the byte-exact check.
  roundtrip: (op) => {
    const types = {
      capsule: umbral.Capsule,
      kfrag: umbral.KeyFrag,
      cfrag: umbral.CapsuleFrag,
    };
    const b = bin(op.bytes);
    switch (op.type) {
      case 'secret_key': return { bytes: hex(umbral.SecretKey.fromBEBytes(b).toBEBytes()) };
      case 'public_key': return { bytes: hex(umbral.PublicKey.fromCompressedBytes(b).toCompressedBytes()) };
      case 'signature': return { bytes: hex(umbral.Signature.fromBEBytes(b).toBEBytes()) };
      default: return { bytes: hex(types[op.type].fromBytes(b).toBytes()) };
    }
  },
};

function run(op) {
  try {
    const f = ops[op.op];
    if (!f) throw new Error(`unknown op ${op.op}`);
    return { ok: true, ...f(op) };
  } catch (e) {
    return { ok: false, error: String(e && e.message ? e.message : e) };
  }
}

if (require.main === module) {
  const chunks = [];
  process.stdin.on('data', (c) => chunks.push(c));
  process.stdin.on('end', () => {
    const input = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    process.stdout.write(JSON.stringify(input.map(run)));
  });
}

module.exports = { ops, run, hex, bin };
