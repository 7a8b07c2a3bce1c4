"""Known-video matching benchmark: a query video against a bank of 10,000 banked videos.

    python bench/video_match.py [--videos 10000] [--frames 30]

The bank is one real signature (a synthetic 12 s clip, the "known fake") plus N-1 random signatures of
`--frames` seconds each (random hashes: every unrelated video frame is ~128 bits from the query's, as real
unrelated frames are). The query is a trimmed, resized, re-encoded copy of the fake. Printed: the time to build the
index, the time of one match, and the ratio of the match time to the time the query's own signature took to
compute in the same run (decoding and hashing its frames, a cost every analysis of a video pays anyway), plus a
check that the fake is found with the right time range. No database.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "analysis"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hlekkr.settings")

import django

django.setup()

from video_samples import make_video  # noqa: E402

from analysis.detectors.video_signature import BankedVideoEntry, FrameHash, VideoIndex, compute_signature  # noqa: E402


def random_signature(rng: random.Random, frames: int) -> list[FrameHash]:
    return [FrameHash(float(t), f"{rng.getrandbits(256):064x}", 100) for t in range(frames)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--videos", type=int, default=10_000)
    parser.add_argument("--frames", type=int, default=30, help="seconds (frames) per random banked video")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(16)
    with tempfile.TemporaryDirectory() as folder:
        fake = make_video(Path(folder) / "fake.mp4", seed=1, seconds=12)
        copy = make_video(Path(folder) / "copy.mp4", seed=1, seconds=6, start_second=4, size=(128, 96), quality=14)
        fake_signature = compute_signature(fake)
        started = time.perf_counter()
        query = compute_signature(copy)
        signature_s = time.perf_counter() - started

    videos = [BankedVideoEntry(0, "fakes", "known_fake", "the fake", fake_signature)]
    videos += [
        BankedVideoEntry(i, "noise", "known_fake", "", random_signature(rng, args.frames))
        for i in range(1, args.videos)
    ]
    started = time.perf_counter()
    index = VideoIndex.build(videos)
    build_s = time.perf_counter() - started
    timings = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        matches = index.match(query)
        timings.append(time.perf_counter() - started)
    match_s = statistics.median(timings)
    found = [m for m in matches if m.video_id == 0]
    print(f"bank: {len(index)} videos, {len(index.hashes)} frame hashes; query: {len(query)} frames")
    print(f"index build: {build_s * 1000:.0f} ms (once per process, reloaded when the banks change)")
    print(f"match (median of {args.repeat}): {match_s * 1000:.1f} ms")
    print(f"query signature (decode + PDQ, same run): {signature_s * 1000:.1f} ms")
    print(f"ratio match / signature: {match_s / signature_s:.2f}")
    if found:
        m = found[0]
        print(f"found the fake: query {m.query_start}-{m.query_end} s = banked {m.bank_start}-{m.bank_end} s")
    else:
        print("MISS: the fake was not found")
    print(f"false matches among {len(index) - 1} unrelated videos: {len([m for m in matches if m.video_id != 0])}")


if __name__ == "__main__":
    main()
