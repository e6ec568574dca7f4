"""SAELens' on-disk format: ``sae_weights.safetensors`` + ``cfg.json`` as SAELens 6.x writes and reads them.

SAELens (``SAE.save_model`` / ``SAE.load_from_disk``, 6.54) stores ``W_enc`` [d_in, d_sae], ``W_dec``
[d_sae, d_in], ``b_enc`` [d_sae], ``b_dec`` [d_in], and a flat config: ``architecture`` (``"standard"`` is a
ReLU SAE, ``"topk"`` keeps the ``k`` largest pre-activations, then ReLU), ``d_in``, ``d_sae``, ``dtype``,
``device``, ``apply_b_dec_to_input``, ``normalize_activations``, ``reshape_activations``, ``k`` and
``rescale_acts_by_decoder_norm`` (topk), and ``metadata`` (``hook_name``, ``model_name``, ``context_size``,
``sae_lens_version``...). Its forward pass is ours with ``W_enc`` transposed:
``z = f((x - b_dec) W_enc + b_enc)``, ``x_hat = z W_dec + b_dec``.

Reading folds SAELens' options into that one form, exactly: ``apply_b_dec_to_input=False`` moves
``b_dec W_enc`` into ``b_enc``; ``rescale_acts_by_decoder_norm`` scales encoder column ``i`` and ``b_enc_i`` by
``||d_i||`` and divides decoder row ``i`` by it. Run-time normalisations (``layer_norm``,
``constant_norm_rescale``, an unfolded ``expected_average_only_in``) and ``hook_z`` reshaping are not linear
folds and are refused with a message.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

import modscope
from modscope.errors import ModscopeError
from modscope.models.sites import parse_site
from modscope.sae.config import SAEConfig

WEIGHTS_FILE = "sae_weights.safetensors"
CONFIG_FILE = "cfg.json"
FORMAT_VERSION = "6.54.12"  # the SAELens release whose format this writes (and was tested against)
ARCHITECTURE_NAMES = {"relu": "standard", "topk": "topk"}  # modscope name -> SAELens name
HOOK_NAMES = {  # modscope site kind -> TransformerLens hook (SAELens' ``hook_name``)
    "resid_post": "blocks.{layer}.hook_resid_post",
    "resid_pre": "blocks.{layer}.hook_resid_pre",
    "resid_mid": "blocks.{layer}.hook_resid_mid",
    "mlp_out": "blocks.{layer}.hook_mlp_out",
    "attn_out": "blocks.{layer}.hook_attn_out",
    "mlp_act": "blocks.{layer}.mlp.hook_post",
}


def hook_name(site: str | None) -> str | None:
    """The TransformerLens hook name of a modscope site (``'mlp_out.3'`` -> ``'blocks.3.hook_mlp_out'``)."""
    if site is None:
        return None
    kind, layer = parse_site(site)
    return HOOK_NAMES[kind].format(layer=layer) if kind in HOOK_NAMES and layer is not None else site


def site_name(hook: str | None) -> str | None:
    """The modscope site of a TransformerLens hook name (inverse of ``hook_name``; unknown names pass through)."""
    if hook is None:
        return None
    for kind, pattern in HOOK_NAMES.items():
        head, tail = pattern.split("{layer}")
        if hook.startswith(head) and hook.endswith(tail) and hook[len(head):len(hook) - len(tail)].isdigit():
            return f"{kind}.{hook[len(head):len(hook) - len(tail)]}"
    return hook


def is_saelens_dir(directory: str | Path) -> bool:
    return (Path(directory) / CONFIG_FILE).exists() and (Path(directory) / WEIGHTS_FILE).exists()


def save_saelens(sae, directory: str | Path) -> Path:
    """Write ``sae`` as SAELens does (float32 on the CPU; modscope's config and meta kept in ``metadata``)."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {"W_enc": sae.W_enc.detach().T, "W_dec": sae.W_dec.detach(), "b_enc": sae.b_enc.detach(),
               "b_dec": sae.b_dec.detach()}
    save_file({k: v.float().contiguous().cpu() for k, v in tensors.items()}, str(directory / WEIGHTS_FILE))
    meta = dict(sae.meta)
    cfg: dict[str, Any] = {
        "d_in": sae.d_in, "d_sae": sae.n_latents, "dtype": "float32", "device": "cpu", "apply_b_dec_to_input": True,
        "normalize_activations": "none", "reshape_activations": "none",
        "metadata": {"sae_lens_version": FORMAT_VERSION, "sae_lens_training_version": None,
                     "model_name": meta.get("model"), "hook_name": hook_name(meta.get("site")),
                     "hook_head_index": None, "context_size": meta.get("ctx"),
                     "written_by": f"modscope {modscope.__version__}",
                     "modscope": {"config": sae.cfg.to_dict(), "meta": meta}},
    }
    if sae.architecture == "topk":
        cfg.update(k=sae.cfg.k, rescale_acts_by_decoder_norm=False)
    cfg["architecture"] = ARCHITECTURE_NAMES[sae.architecture]
    (directory / CONFIG_FILE).write_text(json.dumps(cfg, indent=1, default=float))
    return directory


def load_saelens(directory: str | Path):
    """Read an SAE written by SAELens' ``save_model`` (architectures ``standard`` and ``topk``) as a modscope SAE.

    The weights are converted to float32; SAELens options are folded as described in the module docstring, so the
    returned SAE's ``forward`` equals SAELens' ``forward`` on the same input (up to float rounding).
    """
    from safetensors.torch import load_file

    from modscope.sae.base import make_sae

    directory = Path(directory)
    if not is_saelens_dir(directory):
        raise ModscopeError(f"{directory} holds no SAELens SAE ({CONFIG_FILE} + {WEIGHTS_FILE})")
    cfg = json.loads((directory / CONFIG_FILE).read_text())
    names = {v: k for k, v in ARCHITECTURE_NAMES.items()}
    arch = cfg.get("architecture", "standard")
    if arch not in names:
        raise ModscopeError(f"{directory}: SAELens architecture '{arch}' is not supported; modscope reads "
                            f"{', '.join(names)}")
    norm = cfg.get("normalize_activations", "none")
    if norm not in ("none", None):
        raise ModscopeError(f"{directory}: normalize_activations='{norm}' is applied at run time and cannot be folded "
                            "into the weights; in SAELens call sae.fold_activation_norm_scaling_factor(...) (or train "
                            "with 'none') and save again")
    if cfg.get("reshape_activations", "none") not in ("none", None):
        raise ModscopeError(f"{directory}: reshape_activations='{cfg['reshape_activations']}' (hook_z SAEs) is not "
                            "supported; modscope SAEs act on flat vectors")
    state = load_file(str(directory / WEIGHTS_FILE))
    missing = {"W_enc", "W_dec", "b_enc", "b_dec"} - set(state)
    if missing:
        raise ModscopeError(f"{directory}/{WEIGHTS_FILE} lacks {', '.join(sorted(missing))}")
    w_enc, w_dec = state["W_enc"].float().T.clone(), state["W_dec"].float().clone()
    b_enc, b_dec = state["b_enc"].float().clone(), state["b_dec"].float().clone()
    d_sae, d_in = w_dec.shape
    if w_enc.shape != (d_sae, d_in) or b_enc.shape != (d_sae,) or b_dec.shape != (d_in,):
        raise ModscopeError(f"{directory}: inconsistent weight shapes W_enc {tuple(state['W_enc'].shape)}, "
                            f"W_dec {tuple(w_dec.shape)}, b_enc {tuple(b_enc.shape)}, b_dec {tuple(b_dec.shape)}")
    if not cfg.get("apply_b_dec_to_input", True):
        b_enc += w_enc @ b_dec  # (x - b_dec) W + b_enc' = x W + b_enc
    metadata = dict(cfg.get("metadata") or {})
    ours = metadata.get("modscope") or {}
    settings = dict(ours.get("config") or {})
    settings.update(d_in=d_in, d_sae=d_sae, expansion=max(1, d_sae // d_in), architecture=names[arch])
    if arch == "topk":
        settings["k"] = int(cfg.get("k", settings.get("k", 32)))
    else:
        settings["decoder_norm"] = "unit" if torch.allclose(w_dec.norm(dim=1), torch.ones(d_sae), atol=1e-4) else "free"
    meta = dict(ours.get("meta") or {})
    meta.setdefault("site", site_name(metadata.get("hook_name")))
    meta.setdefault("model", metadata.get("model_name"))
    meta.setdefault("ctx", metadata.get("context_size"))
    meta.update(format="saelens", saelens_dtype=cfg.get("dtype", "float32"),
                saelens_version=metadata.get("sae_lens_version"))
    sae = make_sae(SAEConfig.from_dict(settings), meta)
    sae.load_state_dict({"W_enc": w_enc, "W_dec": w_dec, "b_enc": b_enc, "b_dec": b_dec})
    if arch == "topk" and cfg.get("rescale_acts_by_decoder_norm", False):
        # SAELens scales the pre-activations by the decoder row norms before its TopK; folded, the codes are equal
        sae.fold_decoder_norms()
    return sae
