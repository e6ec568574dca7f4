"""MNIST loader, models and trainer: shapes, determinism, null conditions."""

import numpy as np
import pytest
import torch

from modscope.errors import ModscopeError
from modscope.training import load_mnist, make_cnn, make_mlp, parse_null, train_mnist
from modscope.training.nulls import apply_null_to_data


def test_load_mnist_splits_have_documented_shapes_and_range():
    for split, n in (("train", 50000), ("valid", 10000), ("test", 10000)):
        images, labels = load_mnist(split)
        assert images.shape == (n, 784) and images.dtype == np.float32
        assert labels.shape == (n,) and labels.dtype == np.int64
    images, labels = load_mnist("train")
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert set(np.unique(labels)) == set(range(10))
    assert load_mnist("train")[0] is images  # cached per process


def test_load_mnist_unknown_split_is_a_modscope_error():
    with pytest.raises(ModscopeError, match="split"):
        load_mnist("dev")


def test_default_mlp_has_over_100k_parameters_and_linear_relu_layers():
    mlp = make_mlp()
    assert sum(p.numel() for p in mlp.parameters()) == 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10
    assert [type(m).__name__ for m in mlp] == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    assert make_cnn()(torch.zeros(2, 784)).shape == (2, 10)


def test_same_seed_gives_identical_losses_and_training_lowers_loss():
    a = train_mnist(max_steps=30, n_train=2000, seed=3)
    b = train_mnist(max_steps=30, n_train=2000, seed=3)
    assert np.array_equal(a.losses, b.losses)
    assert a.n_steps == 30 and a.losses[-5:].mean() < a.losses[:5].mean()


def test_null_parsing_rejects_bad_values_and_applies_label_shuffle():
    assert parse_null("noise:0.5").value == 0.5 and parse_null("pixel-shuffle").value is None
    for bad in ("noise", "noise:2", "classes:1", "blur:3", "pixel-shuffle:3"):
        with pytest.raises(ModscopeError):
            parse_null(bad)
    images, labels = load_mnist("valid")
    _, shuffled = apply_null_to_data(images, labels, parse_null("label-shuffle"))
    assert np.array_equal(np.sort(shuffled), np.sort(labels)) and (shuffled != labels).mean() > 0.8
    kept, kept_labels = apply_null_to_data(images, labels, parse_null("classes:2"))
    assert set(np.unique(kept_labels)) == {0, 1} and len(kept) == len(kept_labels)
    down, _ = apply_null_to_data(images[:3], labels[:3], parse_null("downscale:7"))
    assert len(np.unique(down[0])) <= 49  # 7 x 7 constant blocks
    shuffled_px, _ = apply_null_to_data(images[:5], labels[:5], parse_null("pixel-shuffle"))
    assert np.allclose(np.sort(shuffled_px, axis=1), np.sort(images[:5], axis=1))


def test_modadd_data_labels_are_sums_mod_p_and_training_memorises_the_train_split():
    from modscope.training.modadd import modadd_data, train_modadd

    inputs, labels, train_idx, test_idx = modadd_data(7, 0.5)
    a, b = inputs[:, :7].argmax(1), inputs[:, 7:].argmax(1)
    assert np.array_equal(labels.numpy(), ((a + b) % 7).numpy())
    assert len(np.intersect1d(train_idx, test_idx)) == 0 and len(train_idx) + len(test_idx) == 49
    run = train_modadd(p=7, steps=150, train_frac=0.5, lr=1e-2, recorder=True, every=3)
    assert run.recorder.store.steps == list(range(0, 150, 3))
    assert run.train_accuracy[-1] == 1.0 and run.train_losses[-1] < run.train_losses[0]
