"""The forgery benchmark's ground truth (bench/forgery_corpus.py) and the localisation figures built on it."""

from __future__ import annotations

import numpy as np
from skimage import data

from bench.forgery_corpus import Edit, copy_move, resample_paste, splice
from bench.localisation import localise, rank_auc


def changed(out: np.ndarray, host: np.ndarray) -> np.ndarray:
    return np.asarray(np.abs(out.astype(int) - host.astype(int)).max(axis=2) > 0)


def test_a_splice_records_where_it_landed_without_changing_the_image() -> None:
    host, donor = data.astronaut()[:256, :256], data.coffee()[:256, :256]
    edits: list[Edit] = []

    recorded = splice(host, donor, np.random.default_rng(5), edits)
    plain = splice(host, donor, np.random.default_rng(5))

    assert np.array_equal(recorded, plain)  # the corpus is byte for byte the same with or without truth
    (edit,) = edits
    assert edit.mask.shape == host.shape[:2]
    assert not changed(recorded, host)[edit.mask == 0].any()  # nothing changed outside the mask
    assert changed(recorded, host)[edit.mask > 0.99].mean() > 0.9
    assert 60 <= edit.params["donor_quality"] <= 95
    assert 0 <= edit.params["shift_x"] < 8
    assert 0 <= edit.params["shift_y"] < 8


def test_copy_moves_and_resampled_pastes_record_their_edit_too() -> None:
    host = data.astronaut()[:256, :256]
    for make in (copy_move, lambda rgb, rng, edits: resample_paste(rgb, rgb, rng, edits)):
        edits: list[Edit] = []
        out = make(host, np.random.default_rng(1), edits)
        assert len(edits) == 1
        assert not changed(out, host)[edits[0].mask == 0].any()


def test_a_heatmap_hot_on_the_paste_localises_it_and_a_flat_one_does_not() -> None:
    mask = np.zeros((256, 256), np.float32)
    mask[64:128, 160:224] = 1.0
    hot = np.zeros((64, 64), np.float32)
    hot[16:32, 40:56] = 200  # the same place, at a heatmap's own smaller size

    assert localise(hot, mask) == (1.0, True)
    assert localise(np.full((64, 64), 7, np.float32), mask) == (0.5, False)
    assert localise(None, mask) == (0.5, False)  # an abstention points nowhere


def test_rank_auc_counts_ties_half() -> None:
    assert rank_auc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert rank_auc(np.array([1.0]), np.array([1.0])) == 0.5
    assert rank_auc(np.array([2.0, 0.0]), np.array([1.0])) == 0.5
