#!/usr/bin/env python3
"""make_corpus.py - (re)builds the seed corpus of the fuzz targets from the repository's test data
(tests/data: captured Aerospike traffic, asbackup .asb files, configurations). Run from anywhere:
    python3 tests/fuzz/make_corpus.py
Existing regress-* inputs (crashes found and fixed) and found-* inputs (kept from long local
fuzzing runs, minimised with libFuzzer's -merge=1) stay; seed-* files are rewritten. The corpus
is kept under 2 MB: after a rebuild, merge it (-merge=1) into a fresh directory."""
import glob
import hashlib
import json
import os
import re
import struct

import yaml  # python3-yaml

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, '..', 'data')
CORPUS = os.path.join(HERE, 'corpus')


def save(target, blob, seen):
    h = hashlib.sha1(blob).hexdigest()[:16]
    if h in seen.setdefault(target, set()):
        return
    seen[target].add(h)
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, 'seed-' + h), 'wb') as f:
        f.write(blob)


def frames():
    for path in sorted(glob.glob(os.path.join(DATA, 'wire', '*.jsonl'))):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    m = json.loads(line)
                    yield m['dir'], m['type'], bytes.fromhex(m['hex'])


def split_msgs(body):
    """AS_MSG messages of a type-3 body (22-byte header, fields, ops)."""
    out, p = [], 0
    while p + 22 <= len(body):
        n_fields, n_ops = struct.unpack('>HH', body[p + 18:p + 22])
        q = p + 22
        for _ in range(n_fields + n_ops):
            if q + 4 > len(body):
                return out
            q += 4 + struct.unpack('>I', body[q:q + 4])[0]
        out.append(body[p:q])
        p = q
    return out


def frame(ptype, body):
    return bytes([2, ptype]) + struct.pack('>Q', len(body))[2:] + body


def as_msg_seeds(seen):
    for d, t, msg in frames():
        if t != 3:
            continue
        msgs = split_msgs(msg[8:])
        if len(msg) <= 4096:
            save('as_msg', msg, seen)
        # one frame per record (every particle type on its own) and a small multi-message frame
        for m in msgs[:60]:
            save('as_msg', frame(3, m), seen)
        if len(msgs) > 1:
            save('as_msg', frame(3, b''.join(msgs[:3])), seen)


def info_seeds(seen):
    for d, t, msg in frames():
        if t == 1 and d == 's2c' and len(msg) <= 16384:
            save('as_info', msg[8:], seen)


def admin_seeds(seen):
    for d, t, msg in frames():
        if t == 2 and d == 's2c':
            save('as_admin', msg, seen)
    # a LOGIN reply with a session token (field 5) and a TTL (field 6), as the server sends it
    token = bytes(range(32))
    fields = struct.pack('>IB', 1 + len(token), 5) + token + struct.pack('>IBI', 5, 6, 86400)
    header = bytes([0, 0, 0, 2]) + bytes(12)
    save('as_admin', frame(2, header + fields), seen)


RECORD_START = re.compile(rb'^\+ [kn] ', re.M)


def asb_seeds(seen):
    files = sorted(glob.glob(os.path.join(DATA, 'asb', '*', '*.asb'))) + [os.path.join(DATA, 'asb', 'dataset.asb')]
    for path in files:
        raw = open(path, 'rb').read()
        if not raw.startswith(b'Version'):
            continue  # compressed / encrypted: not the decoder's input
        starts = [m.start() for m in RECORD_START.finditer(raw)]
        if not starts:
            save('asb', b'\x00' + raw[:8192], seen)
            continue
        head = raw[:starts[0]]
        # the header (with UDF and index lines) plus a few slices of records across the file
        for k in range(0, len(starts), max(1, len(starts) // 4)):
            chunk = starts[k:k + 12]
            end = starts[k + 12] if k + 12 < len(starts) else len(raw)
            body = raw[chunk[0]:end]
            for chunk_byte in (0x00, 0xff):
                save('asb', bytes([chunk_byte]) + head + body[:6000], seen)


def config_seeds(seen):
    paths = sorted(glob.glob(os.path.join(DATA, 'config', '*.yml')))
    paths += sorted(glob.glob(os.path.join(HERE, '..', '..', 'config', '*.yml')))
    for path in paths:
        text = open(path, 'rb').read()
        save('config', b'\x00' + text, seen)
        doc = yaml.safe_load(text)
        save('config', b'\x01' + json.dumps(doc, default=str).encode(), seen)


def main():
    for target in ('as_msg', 'as_info', 'as_admin', 'asb', 'config'):
        d = os.path.join(CORPUS, target)
        for old in glob.glob(os.path.join(d, 'seed-*')):
            os.remove(old)
    seen = {}
    as_msg_seeds(seen)
    info_seeds(seen)
    admin_seeds(seen)
    asb_seeds(seen)
    config_seeds(seen)
    for target, hashes in sorted(seen.items()):
        print(target, len(hashes), 'seeds')


if __name__ == '__main__':
    main()
