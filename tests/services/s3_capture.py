#!/usr/bin/env python3
"""s3_capture.py LOG PORTFILE - a tiny S3-like HTTP server for test_stor_s3.c's request checks.

Listens on 127.0.0.1 (a free port, written to PORTFILE), answers just enough of the S3 API
(PUT object, multipart create/part/complete/abort, ListObjectsV2, DeleteObjects, HEAD), and
appends one line per request to LOG:
    METHOD PATH?QUERY class=<x-amz-storage-class|-> sha=<ok|bad|missing> sig=<ok|bad|none|...>
    token=<x-amz-security-token|-> [md5=<ok|bad>]
`sig` is an independent AWS SigV4 check (the canonical request as AWS builds it) with the
secrets of the test keys below; it also insists that x-amz-content-sha256 and any session
token are among the signed headers. Object names trigger scripted replies: .../deny (403),
.../flaky (500 twice, then 200), .../broken (500 always), .../missing (404), a part of
.../failpart (400), a completion of .../failcomplete (200 with an <Error> body), and
.../changing (HEAD says ETag "v1"; the first GET answers another version, "v2").
"""
import base64
import hashlib
import hmac
import http.server
import socketserver
import sys
import threading
import urllib.parse

SECRETS = {"AKIDCAPTURE": "capture-secret", "AK": "topsecret"}
LOG, PORTFILE = sys.argv[1], sys.argv[2]
lock = threading.Lock()
counts = {}


def aws_quote(s):
    return urllib.parse.quote(s, safe="-_.~")


def canonical_query(raw):
    if not raw:
        return ""
    pairs = []
    for part in raw.split("&"):
        k, _, v = part.partition("=")
        pairs.append((aws_quote(urllib.parse.unquote(k)), aws_quote(urllib.parse.unquote(v))))
    pairs.sort()
    return "&".join(f"{k}={v}" for k, v in pairs)


def hm(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def check_sig(method, path, query, headers):
    auth = headers.get("Authorization")
    if not auth:
        return "none"
    try:
        algo, rest = auth.split(" ", 1)
        fields = dict(p.strip().split("=", 1) for p in rest.split(","))
        cred = fields["Credential"].split("/")
        key_id, date, region, service = cred[0], cred[1], cred[2], cred[3]
        signed = fields["SignedHeaders"].split(";")
    except Exception:
        return "malformed"
    if algo != "AWS4-HMAC-SHA256" or service != "s3":
        return "wrong-algo"
    if "x-amz-content-sha256" not in signed or "host" not in signed:
        return "unsigned-sha"
    if headers.get("x-amz-security-token") and "x-amz-security-token" not in signed:
        return "unsigned-token"
    secret = SECRETS.get(key_id)
    if secret is None:
        return "unknown-key"
    canon_headers = "".join(f"{h}:{' '.join((headers.get(h) or '').split())}\n" for h in signed)
    creq = "\n".join([method, path, canonical_query(query), canon_headers, ";".join(signed),
                      headers.get("x-amz-content-sha256", "")])
    amz_date = headers.get("x-amz-date", "")
    scope = f"{date}/{region}/{service}/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                     hashlib.sha256(creq.encode()).hexdigest()])
    k = hm(("AWS4" + secret).encode(), date)
    k = hm(k, region)
    k = hm(k, service)
    k = hm(k, "aws4_request")
    want = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    return "ok" if hmac.compare_digest(want, fields["Signature"]) else "bad"


def error_xml(code, msg):
    return (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
            f"<Message>{msg}</Message></Error>").encode()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body=b"", headers=None):
        self.send_response(status)
        headers = headers or {}
        for k, v in headers.items():
            self.send_header(k, v)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        path, _, query = self.path.partition("?")
        sha = self.headers.get("x-amz-content-sha256")
        sha_v = "missing" if sha is None else ("ok" if sha == hashlib.sha256(body).hexdigest() else "bad")
        line = (f"{self.command} {path}?{query} class={self.headers.get('x-amz-storage-class') or '-'} "
                f"sha={sha_v} sig={check_sig(self.command, path, query, self.headers)} "
                f"token={self.headers.get('x-amz-security-token') or '-'}")
        if self.headers.get("If-Match"):
            line += " if-match=" + self.headers.get("If-Match")
        md5 = self.headers.get("Content-MD5")
        if md5 is not None:
            ok = md5 == base64.b64encode(hashlib.md5(body).digest()).decode()
            line += " md5=" + ("ok" if ok else "bad")
        with lock:
            with open(LOG, "a") as f:
                f.write(line + "\n")
            counts[path] = counts.get(path, 0) + 1
            count = counts[path]
        q = urllib.parse.parse_qs(query, keep_blank_values=True)
        if path.endswith("/deny"):
            return self.reply(403, error_xml("SignatureDoesNotMatch", "no"))
        if path.endswith("/flaky") and count <= 2:
            return self.reply(500, error_xml("InternalError", "try again"))
        if path.endswith("/broken"):
            return self.reply(500, error_xml("InternalError", "always"))
        if path.endswith("/missing"):
            return self.reply(404)
        if path.endswith("/changing"):  # replaced between the HEAD and the first GET, once
            if self.command == "HEAD":
                return self.reply(200, headers={"Content-Length": "5", "ETag": '"v1"'})
            if count <= 2:
                return self.reply(206, b"XXXXX", {"ETag": '"v2"', "Content-Range": "bytes 0-4/5"})
            return self.reply(206, b"hello", {"ETag": '"v1"', "Content-Range": "bytes 0-4/5"})
        if self.command == "POST" and "uploads" in q:
            return self.reply(200, b"<InitiateMultipartUploadResult><UploadId>UP/1</UploadId>"
                                   b"</InitiateMultipartUploadResult>")
        if self.command == "PUT" and "partNumber" in q:
            if path.endswith("/failpart"):
                return self.reply(400, error_xml("InvalidPart", "bad part"))
            return self.reply(200, headers={"ETag": f'"etag{q["partNumber"][0]}"'})
        if self.command == "POST" and "uploadId" in q:
            if path.endswith("/failcomplete"):
                return self.reply(200, error_xml("InternalError", "complete failed"))
            return self.reply(200, b"<CompleteMultipartUploadResult/>")
        if self.command == "DELETE":
            return self.reply(204)
        if self.command == "GET" and "list-type" in q:
            return self.reply(200, b"<ListBucketResult><IsTruncated>false</IsTruncated>"
                                   b"<Contents><Key>pre/r/big</Key><Size>1</Size></Contents>"
                                   b"</ListBucketResult>")
        if self.command == "POST" and "delete" in q:
            return self.reply(200, b"<DeleteResult/>")
        if self.command == "PUT":
            return self.reply(200, headers={"ETag": '"e"'})
        if self.command == "HEAD":
            return self.reply(200, headers={"Content-Length": "0"})
        return self.reply(404, error_xml("NoSuchKey", "no such key"))

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


srv = Server(("127.0.0.1", 0), Handler)
with open(PORTFILE + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
import os  # noqa: E402
os.rename(PORTFILE + ".tmp", PORTFILE)
srv.serve_forever()
