#!/usr/bin/env python3
"""Known answers for kadre's pair keys and path hashes (SPEC.md §3.2.3),
computed from the specification with the standard library only (its own
secp256k1 arithmetic, hmac, hashlib), independently of the Go code.
policy/pathhash_test.go holds the output; run: python3 scripts/vectors/pairkey.py"""
import hashlib, hmac

P = 2**256 - 2**32 - 977
G = (0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798,
     0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8)

def add(a, b):
    if a is None: return b
    if b is None: return a
    if a[0] == b[0] and (a[1] + b[1]) % P == 0: return None
    if a == b: l = 3 * a[0] * a[0] * pow(2 * a[1], -1, P) % P
    else: l = (b[1] - a[1]) * pow(b[0] - a[0], -1, P) % P
    x = (l * l - a[0] - b[0]) % P
    return (x, (l * (a[0] - x) - a[1]) % P)

def mul(k, p):
    r = None
    while k:
        if k & 1: r = add(r, p)
        p, k = add(p, p), k >> 1
    return r

def comp(p): return bytes([2 + (p[1] & 1)]) + p[0].to_bytes(32, 'big')

def hkdf_extract(salt, ikm): return hmac.new(salt, ikm, hashlib.sha256).digest()

def hkdf_expand(prk, info, n=32):
    out, t, i = b'', b'', 1
    while len(out) < n:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        out, i = out + t, i + 1
    return out[:n]

a, b = 3, 5  # owner and recipient identity secret keys
owner, recipient = comp(mul(a, G)), comp(mul(b, G))
dh = comp(mul(a * b, G))
prk = hkdf_extract(b'kadre/pair/v1', dh)
path_key = hkdf_expand(prk, b'kadre/pair/v1 path hash' + owner + recipient)
seed = hkdf_expand(prk, b'kadre/pair/v1 map points' + owner + recipient)
print('owner', owner.hex())
print('recipient', recipient.hex())
print('dh', dh.hex())
for j in range(3):
    print('point', j, hashlib.sha256(b'kadre/map-point/v1\x00' + seed + bytes([j])).hexdigest())
for prefix, epoch in [('/', 0), ('/home', 0), ('/home/ubuntu', 0), ('/home/ubuntu/secret.txt', 0), ('/home', 1), ('/home', 2**32 - 1), ('/caf\u00e9', 0)]:
    msg = prefix.encode() + b'\x00' + epoch.to_bytes(4, 'big')
    print('path', repr(prefix), epoch, hmac.new(path_key, msg, hashlib.sha3_256).hexdigest())
