"""Upload benchmark: Hlekkr's upload paths against plain boto3, all on loopback against moto's S3 server.

    .venv/bin/python bench/upload.py            # about 1-2 minutes

What it does:
1. starts moto's ThreadedMotoServer on 127.0.0.1 and a real web process (gunicorn, one worker, settings from env
   pointing django-storages at moto) on a temporary SQLite database; rate-limit policies are disabled there;
2. direct upload: POST /api/v1/media/ of a ~25 MB JPEG (requests, file as the form's only part, as curl -F
   sends it) vs boto3 put_object of the same bytes (median of 5); Hlekkr's time includes the client encoding
   the form, the validation (SHA-256, JPEG walk, skeleton decode) and the database rows. Two floors beside it, same
   run: the same form posted to a pass-through web process (bench/passthrough_wsgi.py under the same gunicorn
   options: the body streamed into one PutObject, no parsing, checks, database or Django), and the CPU time of the
   validation of those bytes alone (media.validation.StreamInspector fed 1 MiB chunks, in a Django process of
   its own: the CPU the checks add to the web worker);
3. multipart: a 256 MiB WAV through POST media/uploads/ + presigned part PUTs (4 threads) + complete, vs boto3
   upload_fileobj with the same part size and concurrency (both pay moto's CompleteMultipartUpload); then moto's
   own completion cost alone, for an upload created as Hlekkr creates them and as boto3 does, and a ranged GET;
   then the 25 MB JPEG the same way (an image is read back once at completion to hash and check it);
4. peak memory of the web worker during its first 25 MB direct upload (measured before the others): VmHWM
   after resetting it (/proc clear_refs), minus the RSS before the upload;
5. a failure run: several multipart uploads where 1 % of part PUTs (at least one) drop the connection
   mid-body once; the client retries those parts; every upload must complete.
Figures are printed as ratios against the baselines measured in the same run.
"""

from __future__ import annotations

import concurrent.futures as futures
import io
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from functools import partial
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import requests
from boto3.s3.transfer import TransferConfig
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
MiB = 1024 * 1024
PART_THREADS = 4


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- media -------------------------------------------------------------------------------------------------
def big_jpeg(target_bytes: int = 25_000_000) -> bytes:
    """A noise JPEG of about `target_bytes` (noise compresses badly, so the size is predictable)."""
    rng = np.random.default_rng(1)
    pixels = int(target_bytes / 1.17)
    width = int((pixels * 1.5) ** 0.5)
    height = pixels // width
    out = io.BytesIO()
    Image.fromarray((rng.random((height, width, 3)) * 255).astype("uint8")).save(out, "JPEG", quality=95)
    return out.getvalue()


def variant(jpeg: bytes, tag: int) -> bytes:
    """Same image, distinct bytes (a JPEG comment segment after SOI), so de-duplication does not kick in."""
    comment = f"bench variant {tag} {time.time_ns()}".encode()
    return jpeg[:2] + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment + jpeg[2:]


def noise_wav(size_bytes: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    frames = (size_bytes - 44) // 4
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(48000)
        w.writeframes(rng.integers(-3000, 3000, frames * 2, dtype="<i2").tobytes())
    return out.getvalue()


def start_moto(bucket: str) -> tuple[Any, str, Any]:
    """moto's S3 server on a free loopback port with `bucket` made; returns (server, its URL, a boto3 client)."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    url = f"http://127.0.0.1:{port}"
    s3 = boto3.client(
        "s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    s3.create_bucket(Bucket=bucket)
    return moto, url, s3


# --- the web process ---------------------------------------------------------------------------------------
class Web:
    def __init__(self, moto_url: str, bucket: str, workdir: Path, *, root: Path = ROOT) -> None:
        self.root = root  # the checkout to run (bench/upload_ab.py runs two)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "hlekkr.settings",
            "HLEKKR_VAR_DIR": str(workdir / "var"),
            "AWS_STORAGE_BUCKET_NAME": bucket,
            "AWS_S3_ENDPOINT_URL": moto_url,
            "AWS_S3_REGION_NAME": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "HLEKKR_JWT_ACCESS_SECONDS": "3600",
            "HLEKKR_LOG_LEVEL": "WARNING",
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [PY, "manage.py", *args], cwd=self.root, env=self.env, capture_output=True, text=True, check=False
        )
        if done.returncode:
            raise SystemExit(f"manage.py {' '.join(args[:1])} failed:\n{done.stderr[-2000:]}")
        return done.stdout

    def prepare(self) -> str:
        self.manage("migrate", "--noinput", "-v", "0")
        script = (
            "from hlekkr.accounts.models import User\n"
            "from ratelimit.models import RateLimitPolicy\n"
            "from rest_framework_simplejwt.tokens import RefreshToken\n"
            "RateLimitPolicy.objects.update(enabled=False)\n"
            "u = User.objects.create_user(username='bench', password='bench-password-123', role='client')\n"
            "print(RefreshToken.for_user(u).access_token)\n"
        )
        return self.manage("shell", "-c", script).strip().splitlines()[-1]

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [str(Path(PY).parent / "gunicorn"), "hlekkr.wsgi:application", "--bind", f"127.0.0.1:{self.port}",
             "--workers", "1", "--threads", "4", "--timeout", "300", "--log-level", "warning"],
            cwd=self.root, env=self.env,
        )  # fmt: skip
        for _ in range(120):
            try:
                if requests.get(f"{self.url}/health", timeout=1).ok:
                    return
            except requests.RequestException:
                time.sleep(0.5)
        raise SystemExit("the web process did not come up")

    def worker_pid(self) -> int:
        assert self.proc is not None
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        return int(children[0])

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=20)


class PassThrough(Web):
    """bench/passthrough_wsgi.py under the same gunicorn options: the floor of an upload through a web process."""

    def __init__(self, moto_url: str, bucket: str, workdir: Path) -> None:
        super().__init__(moto_url, bucket, workdir)
        self.env.update({"BENCH_S3_URL": moto_url, "BENCH_BUCKET": bucket})

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [str(Path(PY).parent / "gunicorn"), "passthrough_wsgi:app", "--pythonpath", str(ROOT / "bench"),
             "--bind", f"127.0.0.1:{self.port}", "--workers", "1", "--threads", "4", "--timeout", "300",
             "--log-level", "warning"],
            cwd=ROOT, env=self.env,
        )  # fmt: skip
        for _ in range(120):
            try:
                if requests.get(self.url, timeout=1).ok:
                    return
            except requests.RequestException:
                time.sleep(0.5)
        raise SystemExit("the pass-through web process did not come up")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/<pid>/stat, clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


# --- client side -------------------------------------------------------------------------------------------
def direct_upload(web: Web, token: str, name: str, data: bytes, ctype: str, *, path: str = "/api/v1/media/") -> float:
    started = time.perf_counter()
    response = requests.post(
        f"{web.url}{path}",
        headers={"Authorization": f"Bearer {token}"},
        files={"file": (name, data, ctype)},
        timeout=300,
    )
    elapsed = time.perf_counter() - started
    if response.status_code != 201:
        raise SystemExit(f"direct upload failed: {response.status_code} {response.text[:300]}")
    return elapsed


class FlakyBody:
    """A part body whose first attempt dies half-way (the connection drops mid-request)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __iter__(self) -> Any:
        yield self.data[: len(self.data) // 2]
        raise ConnectionResetError("injected: connection dropped mid-part")


def put_part(url: str, chunk: bytes, *, fail_first: bool, retries: int = 3) -> tuple[str, int]:
    failures = 0
    for attempt in range(retries + 1):
        try:
            if fail_first and attempt == 0:
                requests.put(url, data=FlakyBody(chunk), timeout=60)
            response = requests.put(url, data=chunk, timeout=120)
            response.raise_for_status()
            return response.headers["ETag"].strip('"'), failures
        except (requests.RequestException, ConnectionResetError):
            failures += 1
            time.sleep(0.05 * (attempt + 1))
    raise SystemExit(f"part failed after {retries} retries")


def multipart_upload(
    web: Web,
    token: str,
    name: str,
    data: bytes,
    *,
    fail_parts: set[int] | None = None,
    content_type: str = "audio/wav",
) -> tuple[float, int, float]:
    """Whole client flow: start, PUT parts (4 threads) with retries, complete.
    Returns (seconds, failures seen, seconds spent in the complete call)."""
    auth = {"Authorization": f"Bearer {token}"}
    started = time.perf_counter()
    body = requests.post(
        f"{web.url}/api/v1/media/uploads/",
        json={"filename": name, "size": len(data), "content_type": content_type},
        headers=auth,
        timeout=60,
    ).json()
    size = body["part_size"]
    fail_parts = fail_parts or set()
    with futures.ThreadPoolExecutor(PART_THREADS) as pool:
        jobs = {
            p["part_number"]: pool.submit(
                put_part,
                p["url"],
                data[(p["part_number"] - 1) * size : p["part_number"] * size],
                fail_first=p["part_number"] in fail_parts,
            )
            for p in body["parts"]
        }
        results = {n: job.result() for n, job in jobs.items()}
    parts = [{"part_number": n, "etag": results[n][0]} for n in sorted(results)]
    completing = time.perf_counter()
    done = requests.post(
        f"{web.url}/api/v1/media/uploads/{body['upload_id']}/complete/",
        json={"parts": parts},
        headers=auth,
        timeout=600,
    )
    elapsed = time.perf_counter() - started
    if done.status_code not in (200, 201) or done.json().get("status") != "stored":
        raise SystemExit(f"multipart complete failed: {done.status_code} {done.text[:300]}")
    return elapsed, sum(f for _, f in results.values()), time.perf_counter() - completing


def main() -> None:
    import logging
    import threading

    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)  # moto's request log
    # The injected dropped connections make moto's server thread print a traceback; that is the point of them.
    default_hook = threading.excepthook
    threading.excepthook = lambda a: None if issubclass(a.exc_type, OSError) else default_hook(a)

    t0 = time.perf_counter()
    bucket = "hlekkr-bench"
    moto, moto_url, s3 = start_moto(bucket)
    workdir = Path(tempfile.mkdtemp(prefix="hlekkr-bench-"))
    web = Web(moto_url, bucket, workdir)
    passthrough = PassThrough(moto_url, bucket, workdir)
    try:
        token = web.prepare()
        web.start()
        passthrough.start()
        print(f"setup: moto at {moto_url}, web at {web.url} ({time.perf_counter() - t0:.1f} s)")

        jpeg = big_jpeg()
        direct_upload(web, token, "warmup.jpg", small_jpeg(), "image/jpeg")
        # 1. peak memory of the web worker during its first 25 MB direct upload ---------------------------------
        # (first: a heap already grown by earlier large uploads would hide the growth)
        pid = web.worker_pid()
        data = variant(jpeg, 99)
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset the peak RSS (VmHWM) to the current RSS
        before = proc_kib(pid, "VmRSS")
        direct_upload(web, token, "memory.jpg", data, "image/jpeg")
        peak = proc_kib(pid, "VmHWM")
        delta = (peak - before) * 1024
        print(
            f"web worker peak RSS during a {len(data) / 1e6:.1f} MB direct upload: +{delta / 1e6:.1f} MB "
            f"= {delta / len(data):.2f}x the upload (limit 3x) -> {'ok' if delta < 3 * len(data) else 'OVER'}"
        )

        # 2. direct upload vs put_object ------------------------------------------------------------------
        direct_upload(passthrough, token, "warmup.jpg", small_jpeg(), "image/jpeg", path="/")
        ours, base, floor = [], [], []
        # CPU per upload (all processes): this one (the client and moto's threads) plus the web worker. On a busy
        # machine the wall times follow the CPU each side needs; on a quiet one, what runs one after the other.
        pids = {"hlekkr": web.worker_pid(), "pass-through": passthrough.worker_pid()}
        cpu: dict[str, list[float]] = {"hlekkr": [], "put_object": [], "pass-through": [], "hlekkr worker": []}

        def timed(label: str, call: Any) -> float:
            worker = pids.get(label)
            here, there = time.process_time(), cpu_seconds(worker) if worker else 0.0
            elapsed = float(call())
            spent_there = cpu_seconds(worker) - there if worker else 0.0
            cpu[label].append(time.process_time() - here + spent_there)
            if label == "hlekkr":
                cpu["hlekkr worker"].append(spent_there)
            return elapsed

        def put(key: str, data: bytes) -> float:
            started = time.perf_counter()
            s3.put_object(Bucket=bucket, Key=key, Body=data)
            return time.perf_counter() - started

        for i in range(5):
            data = variant(jpeg, i + 1)
            ours.append(timed("hlekkr", partial(direct_upload, web, token, f"photo{i}.jpg", data, "image/jpeg")))
            base.append(timed("put_object", partial(put, f"baseline/direct-{i}", data)))
            through = partial(direct_upload, passthrough, token, f"photo{i}.jpg", data, "image/jpeg", path="/")
            floor.append(timed("pass-through", through))
        size_mb = len(jpeg) / 1e6
        o, b, f = statistics.median(ours), statistics.median(base), statistics.median(floor)
        print(
            f"direct upload ({size_mb:.1f} MB JPEG, median of 5): hlekkr {size_mb / o:.0f} MB/s, "
            f"put_object {size_mb / b:.0f} MB/s -> ratio {b / o:.2f}"
        )
        check_cpu = inspector_cpu(jpeg, web.env)
        ms = {label: statistics.median(values) * 1000 for label, values in cpu.items()}
        print(
            f"  floors, same run: the same form through a pass-through web process (gunicorn, body streamed into one "
            f"PutObject, nothing checked) {size_mb / f:.0f} MB/s -> ratio {b / f:.2f}; hlekkr = {f / o:.2f}x the "
            f"pass-through; validating these bytes alone (SHA-256, JPEG walk, skeleton decode) takes "
            f"{check_cpu * 1000:.0f} ms of CPU "
            f"(put_object's median wall time: {b * 1000:.0f} ms)"
        )
        print(
            f"  CPU per upload, client + moto + web worker (median; 10 ms ticks): hlekkr {ms['hlekkr']:.0f} ms (its web "
            f"worker {ms['hlekkr worker']:.0f} ms, the validation included), put_object {ms['put_object']:.0f} ms, "
            f"pass-through {ms['pass-through']:.0f} ms; load average {Path('/proc/loadavg').read_text().split()[0]}"
        )

        # 3. multipart 256 MiB vs boto3's own multipart --------------------------------------------------------
        wav = noise_wav(256 * MiB, seed=1)
        config = TransferConfig(
            multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB, max_concurrency=PART_THREADS, use_threads=True
        )
        ours_mp, base_mp, completes = [], [], []
        for round_ in range(3):  # alternating, so load from other jobs lands on both sides
            # distinct bytes each round (one sample), so de-duplication never resolves a round to the last one
            wav = wav[:100] + bytes([round_]) + wav[101:]
            seconds, _, complete_s = multipart_upload(web, token, f"big{round_}.wav", wav)
            ours_mp.append(seconds)
            completes.append(complete_s)
            started = time.perf_counter()
            s3.upload_fileobj(io.BytesIO(wav), bucket, "baseline/multipart", Config=config)
            base_mp.append(time.perf_counter() - started)
        ratios = sorted(b / o for b, o in zip(base_mp, ours_mp, strict=True))
        o, b = statistics.median(ours_mp), statistics.median(base_mp)
        print(
            f"multipart upload (256 MiB WAV, 8 MiB parts, {PART_THREADS} threads, median of 3): hlekkr "
            f"{256 / o:.0f} MiB/s (start + parts + complete with part and size checks and validation from the "
            f"object's two ends), boto3 upload_fileobj {256 / b:.0f} MiB/s -> ratio {b / o:.2f} (rounds "
            f"{ratios[0]:.2f}-{ratios[-1]:.2f}); the complete call took {statistics.median(completes):.1f} s of "
            f"hlekkr's {o:.1f} s"
        )
        started = time.perf_counter()
        body = s3.get_object(Bucket=bucket, Key="baseline/multipart")["Body"]
        for _chunk in body.iter_chunks(8 * MiB):
            pass
        print(
            f"  (for scale: one plain boto3 GET of the 256 MiB object from moto takes {time.perf_counter() - started:.1f} s)"
        )
        moto_complete = {label: moto_completion(s3, bucket, wav, **extra) for label, extra in COMPLETIONS}
        print(
            "  (moto alone, no hlekkr: CompleteMultipartUpload of these 256 MiB takes "
            f"{moto_complete['plain'][0]:.1f} s for an upload created as hlekkr creates them (no checksum algorithm: "
            "clients PUT plain parts to presigned URLs; moto then builds S3's default full-object CRC64NVME over a "
            f"copy of the object, in Python without awscrt) and {moto_complete['crc32'][0]:.1f} s for one created as "
            "boto3's upload_fileobj does (CRC32 per part); a 4 MiB ranged GET of the completed object takes "
            f"{moto_complete['plain'][1]:.2f} s, as moto reads the whole object for it)"
        )
        extra = moto_complete["plain"][0] - moto_complete["crc32"][0]
        print(
            f"  (diagnostic: hlekkr's median less that difference in moto's completion, {o - extra:.1f} s -> "
            f"ratio {b / (o - extra):.2f})"
        )
        del wav
        s3.delete_object(Bucket=bucket, Key="baseline/multipart")

        # 3b. the 25 MB JPEG as a multipart upload: images are read back once at completion (hashed and checked
        # in one pass: docs/media.md), audio and video only at their ends
        jpeg_config = TransferConfig(
            multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB, max_concurrency=PART_THREADS, use_threads=True
        )
        ours_img, base_img, completes_img = [], [], []
        for round_ in range(5):
            data = variant(jpeg, 200 + round_)
            seconds, _, complete_s = multipart_upload(web, token, f"img{round_}.jpg", data, content_type="image/jpeg")
            ours_img.append(seconds)
            completes_img.append(complete_s)
            started = time.perf_counter()
            s3.upload_fileobj(io.BytesIO(data), bucket, "baseline/multipart-jpeg", Config=jpeg_config)
            base_img.append(time.perf_counter() - started)
        o, b = statistics.median(ours_img), statistics.median(base_img)
        print(
            f"multipart upload of the {size_mb:.1f} MB JPEG (8 MiB parts, median of 5): hlekkr {o * 1000:.0f} ms, "
            f"of which the complete call (moto's completion, one read of the object to hash and check it, the rows) "
            f"{statistics.median(completes_img) * 1000:.0f} ms; boto3 upload_fileobj {b * 1000:.0f} ms -> ratio "
            f"{b / o:.2f}"
        )
        s3.delete_object(Bucket=bucket, Key="baseline/multipart-jpeg")

        # 4. 1 % of part uploads fail once; the client retries ------------------------------------------------
        uploads, parts_each = 12, 3
        rng = np.random.default_rng(7)
        total_parts = uploads * parts_each
        flaky = {int(i) for i in rng.choice(total_parts, size=max(1, round(total_parts * 0.01)), replace=False)}
        flaky |= {int(i) for i in np.flatnonzero(rng.random(total_parts) < 0.01)}
        completed = failures = 0
        for u in range(uploads):
            blob = noise_wav(2 * 8 * MiB + MiB, seed=100 + u)
            fail_parts = {i % parts_each + 1 for i in flaky if i // parts_each == u}
            _, failed, _ = multipart_upload(web, token, f"retry{u}.wav", blob, fail_parts=fail_parts)
            completed += 1
            failures += failed
        print(
            f"failure run: {uploads} multipart uploads, {total_parts} parts, {len(flaky)} part PUTs dropped mid-body "
            f"once ({failures} failures seen by the client, all retried): {completed}/{uploads} uploads completed"
        )
        print(f"total runtime {time.perf_counter() - t0:.0f} s")
    finally:
        passthrough.stop()
        web.stop()
        moto.stop()


COMPLETIONS: list[tuple[str, dict[str, str]]] = [("plain", {}), ("crc32", {"ChecksumAlgorithm": "CRC32"})]


def moto_completion(s3: Any, bucket: str, data: bytes, **create: str) -> tuple[float, float]:
    """Seconds of moto's CompleteMultipartUpload for `data` in 8 MiB parts PUT to presigned URLs (4 threads), and
    of one 4 MiB ranged GET of the object afterwards; the upload is created with `create`'s parameters."""
    key = f"baseline/complete-{len(create)}"
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, **create)["UploadId"]

    def put(number: int) -> dict[str, Any]:
        url = s3.generate_presigned_url(
            "upload_part", Params={"Bucket": bucket, "Key": key, "UploadId": upload_id, "PartNumber": number}
        )
        response = requests.put(url, data=data[(number - 1) * 8 * MiB : number * 8 * MiB], timeout=120)
        response.raise_for_status()
        return {"PartNumber": number, "ETag": response.headers["ETag"]}

    with futures.ThreadPoolExecutor(PART_THREADS) as pool:
        parts = list(pool.map(put, range(1, -(-len(data) // (8 * MiB)) + 1)))
    started = time.perf_counter()
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})
    complete = time.perf_counter() - started
    started = time.perf_counter()
    s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{4 * MiB - 1}")["Body"].read()
    ranged = time.perf_counter() - started
    s3.delete_object(Bucket=bucket, Key=key)
    return complete, ranged


INSPECT = """
import sys, time, django
django.setup()
from media.validation import StreamInspector
data = open(sys.argv[1], "rb").read()
best = None
for _ in range(3):
    started = time.process_time()
    inspector = StreamInspector(declared_content_type="image/jpeg")
    for at in range(0, len(data), 1 << 20):
        inspector.feed(data[at : at + (1 << 20)])
    inspector.finish()
    spent = time.process_time() - started
    best = spent if best is None else min(best, spent)
print(best)
"""


def inspector_cpu(data: bytes, env: dict[str, str]) -> float:
    """CPU seconds of the upload's validation alone: StreamInspector over the bytes in the web worker's chunks
    (best of 3, in a process of its own with the web process's settings)."""
    with tempfile.NamedTemporaryFile(suffix=".jpg") as file:
        file.write(data)
        file.flush()
        done = subprocess.run(
            [PY, "-c", INSPECT, file.name], cwd=ROOT, env=env, capture_output=True, text=True, check=True
        )
    return float(done.stdout.strip().splitlines()[-1])


def small_jpeg() -> bytes:
    out = io.BytesIO()
    Image.fromarray((np.random.default_rng(3).random((64, 64, 3)) * 255).astype("uint8")).save(out, "JPEG")
    return out.getvalue()


if __name__ == "__main__":
    main()
