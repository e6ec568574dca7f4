"""The TopK SAE (Gao et al. 2024, "Scaling and evaluating sparse autoencoders"), trained sparsely.

Only the encoder's forward product is dense. Everything after the TopK touches ``k`` latents per token: the
decoder is an ``embedding_bag`` over the chosen rows, and the encoder's backward pass updates only the chosen
rows of ``W_enc`` (``_SelectedPreActs``), so a step costs one dense [batch, d_in] x [d_in, n_latents] product
instead of the four of a dense implementation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from modscope.sae.base import SAE, TrainStep, register


class _SelectedPreActs(torch.autograd.Function):
    """The pre-activations ``p[b, j] = x_b . W_enc[idx[b, j]] + b_enc[idx[b, j]]`` of the selected latents.

    The forward pass returns the values already computed densely; the backward pass is sparse:
    ``dx_b = sum_j g[b, j] W_enc[idx[b, j]]`` and ``dW_enc[idx[b, j]] += g[b, j] x_b`` (both an embedding_bag
    and its weight gradient), ``db_enc[idx[b, j]] += g[b, j]``.
    """

    @staticmethod
    def forward(ctx, x, w_enc, b_enc, idx, values):  # noqa: D102 - see class docstring
        ctx.save_for_backward(x, w_enc, idx)
        ctx.n_latents = b_enc.shape[0]
        return values

    @staticmethod
    def backward(ctx, grad):  # noqa: D102
        x, w_enc, idx = ctx.saved_tensors
        with torch.enable_grad():
            weight = w_enc.detach().requires_grad_()
            dx = F.embedding_bag(idx, weight, per_sample_weights=grad, mode="sum")
            (dw,) = torch.autograd.grad(dx, weight, grad_outputs=x)
        db = torch.zeros(ctx.n_latents, dtype=grad.dtype).index_add_(0, idx.reshape(-1), grad.reshape(-1))
        return dx.detach(), dw, db, None, None


@register("topk")
class TopKSAE(SAE):
    """``z = relu(TopK_k((x - b_dec) W_enc^T + b_enc))``: the ``k`` largest pre-activations, others zero.

    Trained on the reconstruction error alone (the ``k`` sets the sparsity), decoder rows kept at unit norm.
    """

    def encode_sparse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The active codes as ``(values [..., k], latent indices [..., k])``."""
        values, idx = self.pre_acts(x).topk(self.cfg.k, dim=-1)
        return torch.relu(values), idx

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Dense codes [..., n_latents] with at most ``k`` non-zeros per token."""
        values, idx = self.encode_sparse(x)
        return torch.zeros(*x.shape[:-1], self.n_latents, dtype=values.dtype).scatter_(-1, idx, values)

    def training_step(self, x: torch.Tensor) -> TrainStep:
        centred = x - self.b_dec
        with torch.no_grad():
            values, idx = (centred @ self.W_enc.T + self.b_enc).topk(self.cfg.k, dim=-1)
        selected = _SelectedPreActs.apply(centred, self.W_enc, self.b_enc, idx, values)
        acts = torch.relu(selected)
        x_hat = F.embedding_bag(idx, self.W_dec, per_sample_weights=acts, mode="sum") + self.b_dec
        mse = (x_hat - x).pow(2).sum(dim=-1).mean()
        l0 = (acts > 0).sum(dim=-1).float().mean()
        return TrainStep(mse, mse, torch.zeros(()), l0)
