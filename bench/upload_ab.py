"""Two versions of Hlekkr's direct upload side by side: this checkout against another one (an older commit), on
one moto server, upload by upload.

    git worktree add /tmp/hlekkr-before <commit> && ln -s "$PWD/.venv" /tmp/hlekkr-before/.venv
    .venv/bin/python bench/upload_ab.py /tmp/hlekkr-before [--pairs 9]

Starts moto's server on loopback and one gunicorn web process (bench/upload.py's options, S3 storage on moto,
a temporary SQLite database each) from each checkout, then posts the same ~25 MB JPEG variants to the other
version, to this one and as a plain boto3 put_object, in turn, `--pairs` times: background load on a shared
machine falls on both versions alike, unlike two runs of bench/upload.py at different moments. Prints each
triple, the medians, each version's ratio to put_object and this checkout's speed relative to the other.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import upload  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("other", type=Path, help="the other checkout")
    parser.add_argument("--pairs", type=int, default=9)
    args = parser.parse_args()
    import logging

    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
    bucket = "hlekkr-upload-ab"
    moto, moto_url, s3 = upload.start_moto(bucket)
    webs = {
        "other": upload.Web(moto_url, bucket, Path(tempfile.mkdtemp(prefix="hlekkr-ab-")), root=args.other.resolve()),
        "this": upload.Web(moto_url, bucket, Path(tempfile.mkdtemp(prefix="hlekkr-ab-"))),
    }
    try:
        tokens = {name: web.prepare() for name, web in webs.items()}
        for web in webs.values():
            web.start()
        jpeg = upload.big_jpeg()
        for name, web in webs.items():  # warm both: imports, the first connection to moto
            upload.direct_upload(web, tokens[name], "warmup.jpg", upload.variant(jpeg, 0), "image/jpeg")
        times: dict[str, list[float]] = {"other": [], "this": [], "put_object": []}
        for i in range(1, args.pairs + 1):
            data = upload.variant(jpeg, i)
            for name, web in webs.items():
                times[name].append(upload.direct_upload(web, tokens[name], f"p{i}.jpg", data, "image/jpeg"))
            started = time.perf_counter()
            s3.put_object(Bucket=bucket, Key=f"baseline/{i}", Body=data)
            times["put_object"].append(time.perf_counter() - started)
            print("  ".join(f"{name} {values[-1] * 1000:4.0f} ms" for name, values in times.items()), flush=True)
        med = {name: statistics.median(values) for name, values in times.items()}
        print(
            f"median of {args.pairs}: other {med['other'] * 1000:.0f} ms (ratio {med['put_object'] / med['other']:.2f}), "
            f"this {med['this'] * 1000:.0f} ms (ratio {med['put_object'] / med['this']:.2f}), put_object "
            f"{med['put_object'] * 1000:.0f} ms; this checkout {med['other'] / med['this']:.2f}x the other's speed; "
            f"load average {Path('/proc/loadavg').read_text().split()[0]}"
        )
    finally:
        for web in webs.values():
            web.stop()
        moto.stop()


if __name__ == "__main__":
    main()
