"""SAELens' file format: modscope round trip always; modscope <-> SAELens in its own venv when that exists."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from modscope.errors import ModscopeError
from modscope.sae import SAEConfig, load, make_sae
from modscope.sae.saelens import hook_name, site_name

ROOT = Path(__file__).resolve().parents[2]
SAELENS_PYTHON = ROOT / "benchmarks" / ".venv-saelens" / "bin" / "python"


def random_sae(architecture: str, seed: int, d_in: int = 12, d_sae: int = 40):
    """An SAE with every parameter non-trivial (biases drawn, decoder rows of unequal norm for ReLU)."""
    sae = make_sae(SAEConfig(d_in=d_in, d_sae=d_sae, architecture=architecture, k=5, seed=seed),
                   {"site": "mlp_out.2", "model": "tiny-gpt2", "ctx": 64})
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        sae.b_enc.copy_(0.3 * torch.randn(d_sae, generator=gen))
        sae.b_dec.copy_(torch.randn(d_in, generator=gen))
        if architecture == "relu":
            sae.W_dec.mul_(0.5 + torch.rand(d_sae, 1, generator=gen))
    return sae


def inputs(d_in: int = 12, n: int = 64) -> np.ndarray:
    return np.random.default_rng(7).standard_normal((n, d_in)).astype(np.float32) * 2


@pytest.mark.parametrize("architecture", ["relu", "topk"])
def test_saelens_format_round_trip_reproduces_the_forward_pass(tmp_path, architecture):
    sae = random_sae(architecture, seed=1)
    sae.save(tmp_path, format="saelens")
    cfg = json.loads((tmp_path / "cfg.json").read_text())
    assert cfg["architecture"] == {"relu": "standard", "topk": "topk"}[architecture]
    assert (cfg["d_in"], cfg["d_sae"]) == (12, 40) and cfg["metadata"]["hook_name"] == "blocks.2.hook_mlp_out"
    loaded = load(tmp_path)
    x = torch.from_numpy(inputs())
    assert torch.allclose(loaded(x), sae(x), atol=1e-6)
    assert loaded.meta["site"] == "mlp_out.2" and loaded.cfg.n_latents == 40


def test_site_and_hook_names_invert_each_other():
    for site in ("resid_post.3", "mlp_out.0", "mlp_act.11", "attn_out.5"):
        assert site_name(hook_name(site)) == site
    assert hook_name("mlp_act.4") == "blocks.4.mlp.hook_post"


def test_unfoldable_saelens_options_are_refused(tmp_path):
    sae = random_sae("topk", seed=2)
    sae.save(tmp_path, format="saelens")
    cfg = json.loads((tmp_path / "cfg.json").read_text())
    cfg["normalize_activations"] = "layer_norm"
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    with pytest.raises(ModscopeError, match="normalize_activations"):
        load(tmp_path)
    with pytest.raises(ModscopeError, match="format"):
        sae.save(tmp_path / "x", format="pickle")


PEER_SCRIPT = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    import numpy as np, torch
    from sae_lens import SAE, StandardSAE, StandardSAEConfig, TopKSAE, TopKSAEConfig
    work = Path(sys.argv[1])
    x = torch.from_numpy(np.load(work / "x.npy"))
    out = {}
    # read what modscope wrote
    for name in ("modscope_relu", "modscope_topk"):
        sae = SAE.load_from_disk(work / name)
        out[name] = {"architecture": sae.cfg.architecture(), "recon": sae(x).detach().numpy().tolist()}
    # write SAEs of our own, with every option that changes the forward pass
    gen = torch.Generator().manual_seed(3)
    made = {
        "saelens_standard": StandardSAE(StandardSAEConfig(d_in=12, d_sae=40)),
        "saelens_standard_no_bdec": StandardSAE(StandardSAEConfig(d_in=12, d_sae=40, apply_b_dec_to_input=False)),
        "saelens_topk": TopKSAE(TopKSAEConfig(d_in=12, d_sae=40, k=5)),
        "saelens_topk_rescaled": TopKSAE(TopKSAEConfig(d_in=12, d_sae=40, k=5, rescale_acts_by_decoder_norm=True)),
    }
    for name, sae in made.items():
        with torch.no_grad():
            for p in sae.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * (0.3 if p.ndim == 1 else 1.0))
        sae.save_model(work / name)
        out[name] = {"recon": sae(x).detach().numpy().tolist()}
    (work / "peer.json").write_text(json.dumps(out))
""")


@pytest.fixture(scope="module")
def peer_run(tmp_path_factory):
    if not SAELENS_PYTHON.exists():
        pytest.skip(f"SAELens venv absent ({SAELENS_PYTHON}); create it with `benchmarks/make_peer_venv.sh saelens`")
    work = tmp_path_factory.mktemp("peer")
    x = inputs()
    np.save(work / "x.npy", x)
    ours = {arch: random_sae(arch, seed=5) for arch in ("relu", "topk")}
    for arch, sae in ours.items():
        sae.save(work / f"modscope_{arch}", format="saelens")
    done = subprocess.run([str(SAELENS_PYTHON), "-c", PEER_SCRIPT, str(work)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return work, x, ours, json.loads((work / "peer.json").read_text())


@pytest.mark.parametrize("architecture", ["relu", "topk"])
def test_saelens_reads_modscope_files_and_reconstructs_the_same(peer_run, architecture):
    _, x, ours, peer = peer_run
    theirs = peer[f"modscope_{architecture}"]
    assert theirs["architecture"] == {"relu": "standard", "topk": "topk"}[architecture]
    with torch.no_grad():
        expected = ours[architecture](torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(np.array(theirs["recon"]), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["saelens_standard", "saelens_standard_no_bdec", "saelens_topk",
                                  "saelens_topk_rescaled"])
def test_modscope_reads_saelens_files_and_reconstructs_the_same(peer_run, name):
    work, x, _, peer = peer_run
    sae = load(work / name)
    assert sae.architecture == ("topk" if "topk" in name else "relu")
    with torch.no_grad():
        ours = sae(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours, np.array(peer[name]["recon"]), rtol=1e-5, atol=1e-5)
