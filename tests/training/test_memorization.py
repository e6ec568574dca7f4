"""Counterfactual memorization: the estimator on planted score tables, and planted MNIST examples end to end."""

from __future__ import annotations

import numpy as np
import pytest

from modscope.errors import ModscopeError
from modscope.training.memorization import counterfactual_memorization, memorization_report, train_subset_models


def test_score_is_in_minus_out_with_exact_planted_values():
    rng = np.random.default_rng(0)
    masks = rng.random((40, 3)) < 0.5
    # example 0: right only when trained on (mem 1); example 1: always right (mem 0); example 2: right 30 % when in
    correct = np.stack([masks[:, 0], np.ones(40, bool), masks[:, 2] & (np.arange(40) % 10 < 3)], 1)
    result = counterfactual_memorization(masks, correct, np.zeros((40, 3)))
    assert result.mem[0] == pytest.approx(1.0) and result.mem[1] == pytest.approx(0.0)
    assert result.ci_low[0] <= 1.0 <= result.ci_high[0]
    assert result.n_in.sum() + result.n_out.sum() == 120
    assert result.curve[40] == 0.0
    assert abs(result.null_mean) < 0.2


def test_fewer_than_two_models_is_an_error():
    with pytest.raises(ModscopeError):
        counterfactual_memorization(np.ones((1, 4)), np.ones((1, 4)), np.ones((1, 4)))


def test_planted_flipped_and_atypical_score_high_duplicated_low_and_runs_resume(tmp_path):
    payload = memorization_report(300, models=8, steps=300, width=64, workers=2, shuffled_null=False, seed=0,
                                  out=tmp_path)
    means = payload["result"]["group_means"]
    assert means["flipped"] > means["clean"] + 0.3
    assert means["atypical"] > means["clean"]
    assert means["duplicated"] < means["flipped"]
    assert len(list((tmp_path / "models").glob("model_*.npz"))) == 8
    assert len(payload["result"]["mem"]) == 306  # 300 plus 6 planted copies
    # a rerun reuses the eight finished files (retraining on these 4 dummy examples would give 4-long masks)
    runs = train_subset_models(np.zeros((4, 784), np.float32), np.zeros(4, np.int64), models=8,
                               out=tmp_path / "models")
    assert all(len(r["mask"]) == 306 for r in runs)
