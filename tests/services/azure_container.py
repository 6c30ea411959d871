#!/usr/bin/env python3
"""azure_container.py - creates or deletes a blob container, or lists its blob names, on a
loopback Azure Blob endpoint such as Azurite, signing with Shared Key (stdlib only). Used by tests/services/azurite.sh and
the azure e2e test; an independent implementation of the signing rules, so it also serves as a
cross-check of the C signer.

usage: azure_container.py create|delete ENDPOINT CONTAINER [ACCOUNT KEY]
       azure_container.py list ENDPOINT CONTAINER PREFIX [ACCOUNT KEY]
("list" prints the name of every blob starting with PREFIX, one a line, in order.)
ENDPOINT is path-style, e.g. http://127.0.0.1:10000/devstoreaccount1 (https: trusts the
certificate file named by $AZURITE_CA). The account and key
default to Azurite's well-known development account.
"""
import base64
import email.utils
import hashlib
import hmac
import os
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==")


def request(method, url, account, key):
    u = urllib.parse.urlsplit(url)
    if u.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("azure_container.py: only loopback endpoints are allowed")
    date = email.utils.formatdate(usegmt=True)
    headers = {"x-ms-date": date, "x-ms-version": "2021-12-02"}
    canon_headers = "".join(f"{k}:{headers[k]}\n" for k in sorted(headers))
    resource = f"/{account}{u.path}"
    for k, v in sorted(urllib.parse.parse_qsl(u.query, keep_blank_values=True)):
        resource += f"\n{k.lower()}:{v}"
    ctype = "application/octet-stream" if method == "PUT" else ""
    # VERB, Content-Encoding, -Language, -Length (empty for 0), -MD5, Content-Type, Date,
    # If-Modified-Since, If-Match, If-None-Match, If-Unmodified-Since, Range.
    sts = f"{method}\n\n\n\n\n{ctype}\n" + "\n" * 6 + canon_headers + resource
    sig = base64.b64encode(hmac.new(base64.b64decode(key), sts.encode(), hashlib.sha256).digest())
    headers["Authorization"] = f"SharedKey {account}:{sig.decode()}"
    if ctype:
        headers["Content-Type"] = ctype
    req = urllib.request.Request(url, method=method, headers=headers, data=b"" if method == "PUT" else None)
    try:
        ctx = None
        if u.scheme == "https":  # Azurite's throw-away certificate (tests/services/azurite.sh)
            ctx = ssl.create_default_context(cafile=os.environ.get("AZURITE_CA"))
        with urllib.request.urlopen(req, timeout=60, context=ctx) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, b""


def list_blobs(endpoint, container, prefix, account, key):
    marker = ""
    while True:
        url = f"{endpoint.rstrip('/')}/{container}?restype=container&comp=list"
        url += "&prefix=" + urllib.parse.quote(prefix, safe="")
        if marker:
            url += "&marker=" + urllib.parse.quote(marker, safe="")
        status, body = request("GET", url, account, key)
        if status != 200:
            raise SystemExit(f"azure_container.py: list {container}: HTTP {status}")
        root = ET.fromstring(body)
        for name in root.iter("Name"):
            print(name.text)
        marker = root.findtext("NextMarker") or ""
        if not marker:
            return


def main():
    op = sys.argv[1] if len(sys.argv) > 1 else ""
    nargs = 5 if op == "list" else 4
    if op not in ("create", "delete", "list") or len(sys.argv) not in (nargs, nargs + 2):
        raise SystemExit(__doc__)
    endpoint, container = sys.argv[2:4]
    extra = sys.argv[nargs:]
    account, key = (extra[0], extra[1]) if extra else (DEV_ACCOUNT, DEV_KEY)
    if op == "list":
        list_blobs(endpoint, container, sys.argv[4], account, key)
        return
    url = f"{endpoint.rstrip('/')}/{container}?restype=container"
    status, _ = request("PUT" if op == "create" else "DELETE", url, account, key)
    ok = (201, 409) if op == "create" else (202, 404)
    if status not in ok:
        raise SystemExit(f"azure_container.py: {op} {container}: HTTP {status}")


if __name__ == "__main__":
    main()
