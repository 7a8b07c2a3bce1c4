"""Fit the generated-image detector's logistic model on the corpus tune split (never the eval split).

    python bench/fit_generated.py CORPUS        # CORPUS made by bench/forgery_corpus.py (seed 13)

Positives: ``generated`` items; negatives: every other item (authentic camera files and controls, and the
manipulated photos, which are camera pixels too). Features are those of ``analysis.detectors.generated.features``,
standardised; an L2-regularised logistic regression is fitted by Newton's method (numpy only, deterministic).
Prints the constants to paste into analysis/detectors/generated.py (MEANS, SCALES, WEIGHTS, BIAS).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analysis.detectors.base import decode_image
from analysis.detectors.generated import FEATURES, GeneratedConfig, features
from bench.forgery_corpus import iter_labels


def fit(x: np.ndarray, y: np.ndarray, l2: float = 1.0, iterations: int = 50) -> tuple[np.ndarray, float]:
    xb = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(xb.shape[1])
    penalty = np.eye(xb.shape[1]) * l2
    penalty[-1, -1] = 0.0  # the bias is not shrunk
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-xb @ w))
        gradient = xb.T @ (p - y) + penalty @ w
        hessian = (xb * (p * (1 - p))[:, None]).T @ xb + penalty
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w[:-1], float(w[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--l2", type=float, default=1.0)
    args = parser.parse_args(argv)
    crop = GeneratedConfig().crop
    rows, labels = [], []
    for row in iter_labels(args.corpus):
        if row.split != "tune":
            continue
        f = features(decode_image((args.corpus / row.path).read_bytes()).luma, crop)
        if f is None:
            continue
        rows.append([f[k] for k in FEATURES])
        labels.append(1.0 if row.label == "generated" else 0.0)
    x, y = np.array(rows), np.array(labels)
    means, scales = x.mean(axis=0), x.std(axis=0) + 1e-9
    weights, bias = fit((x - means) / scales, y, args.l2)
    print(f"# {len(y)} tune items, {int(y.sum())} generated")
    print(f"MEANS = {tuple(round(float(v), 5) for v in means)}")
    print(f"SCALES = {tuple(round(float(v), 5) for v in scales)}")
    print(f"WEIGHTS = {tuple(round(float(v), 4) for v in weights)}")
    print(f"BIAS = {round(bias, 4)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
