"""A pass-through web app for bench/upload.py: the floor of any upload that goes through a web process.

It streams the request body, unread by anything else, into one S3 PutObject (a presigned URL to the bench's moto,
over http.client, in 256 KiB reads like Hlekkr's upload handler) and answers 201: no form parsing, no hashing,
no checks, no database, no Django. Run by gunicorn with the same options as Hlekkr's web process:

    BENCH_S3_URL=http://127.0.0.1:PORT BENCH_BUCKET=NAME gunicorn --pythonpath bench passthrough_wsgi:app
"""

from __future__ import annotations

import http.client
import os
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

import boto3

CHUNK = 256 * 1024
_client = boto3.client(
    "s3",
    endpoint_url=os.environ.get("BENCH_S3_URL"),
    region_name="us-east-1",
    aws_access_key_id="testing",
    aws_secret_access_key="testing",
)


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if environ["REQUEST_METHOD"] != "POST" or length <= 0:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
    url = urlsplit(
        _client.generate_presigned_url(
            "put_object",
            Params={"Bucket": os.environ["BENCH_BUCKET"], "Key": f"passthrough/{uuid.uuid4()}"},
            ExpiresIn=300,
        )
    )
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=60)
    connection.putrequest("PUT", f"{url.path}?{url.query}", skip_accept_encoding=True)
    connection.putheader("Content-Length", str(length))
    connection.endheaders()
    body, left = environ["wsgi.input"], length
    while left > 0:
        chunk = body.read(min(CHUNK, left))
        if not chunk:
            break
        connection.send(chunk)
        left -= len(chunk)
    response = connection.getresponse()
    response.read()
    connection.close()
    status = "201 Created" if response.status == 200 and left == 0 else "502 Bad Gateway"
    start_response(status, [("Content-Type", "application/json")])
    return [b"{}"]
