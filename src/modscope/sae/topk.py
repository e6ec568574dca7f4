"""The TopK SAE (Gao et al. 2024, "Scaling and evaluating sparse autoencoders"), trained sparsely.

Only the encoder's forward product is dense. Everything after the TopK touches ``k`` latents per token: the
decoder is an ``embedding_bag`` over the chosen rows, and the encoder's backward pass updates only the chosen
rows of ``W_enc`` (``_SelectedPreActs``), so a step costs one dense [batch, d_in] x [d_in, n_latents] product
instead of the four of a dense implementation.

Dead latents get the auxiliary-K loss of Gao et al. (2024, sec. A.2, and their reference code), made blind to
the size of its reconstruction. With the main residual ``e = x - x_hat`` (detached) and
``e_hat = sum_{i in TopK_aux(pre over dead latents)} relu(pre_i) d_i`` (decoder rows, no ``b_dec``), the paper
adds ``aux_k_coefficient * nmse(e_hat, e)``, ``nmse(a, b) = sum ||a - b||^2 / sum ||b - mean b||^2`` over the
batch. We use ``1 - cos(e_hat, e)`` (both flattened over the batch): its gradient with respect to ``e_hat`` is
the paper's (``e_hat - e``, up to a positive factor) with the component along ``e_hat`` removed, the same
direction as the gradient of ``nmse(s e_hat, e)`` at the least-squares scale ``s > 0``. So the dead latents are
asked for the *direction* of what the live ones miss, not its size. With the paper's form, when the residual
holds nothing the dead latents can explain (a planted dictionary smaller than the SAE: the residual is the encoder's
interference), the minimum is ``e_hat = 0``: the loss shrinks the dead latents' encoder rows and biases until
their pre-activations sit below the TopK threshold for good. We measured it leaving more latents dead than no
aux loss at all (``benchmarks/sae_planted.py``: its nmse stayed at 1.00 while the dead count grew).

Our main loss is the unnormalised ``||x - x_hat||^2`` (the paper's nmse times the batch's variance of ``x``), so
the auxiliary term is multiplied by that variance too (a constant). Only dead latents' rows receive this
gradient. ``k_aux = d_in // 2`` and coefficient 1/32 by default, as in the paper; it is computed sparsely too
(one more selection of ``k_aux`` rows). The pre-activations are rectified as in the paper's code: unrectified
(SAELens' variant) a dead latent can fit the residual with a negative code and an inverted decoder row, which
keeps it dead.
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
        db = torch.zeros(ctx.n_latents, dtype=grad.dtype, device=grad.device).index_add_(0, idx.reshape(-1),
                                                                                          grad.reshape(-1))
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
        zeros = torch.zeros(*x.shape[:-1], self.n_latents, dtype=values.dtype, device=values.device)
        return zeros.scatter_(-1, idx, values)

    def training_step(self, x: torch.Tensor, dead: torch.Tensor | None = None) -> TrainStep:
        """Reconstruction loss of batch ``x`` [batch, d_in], plus the auxiliary-K loss when ``dead`` marks any
        latent as dead ([n_latents] bool)."""
        centred = x - self.b_dec
        with torch.no_grad():
            pre = centred @ self.W_enc.T + self.b_enc
            values, idx = pre.topk(self.cfg.k, dim=-1)
        selected = _SelectedPreActs.apply(centred, self.W_enc, self.b_enc, idx, values)
        acts = torch.relu(selected)
        x_hat = F.embedding_bag(idx, self.W_dec, per_sample_weights=acts, mode="sum") + self.b_dec
        mse = (x_hat - x).pow(2).sum(dim=-1).mean()
        l0 = (acts > 0).sum(dim=-1).float().mean()
        with torch.no_grad():
            fired = torch.zeros(self.n_latents, dtype=torch.bool, device=x.device)
            fired[idx[acts > 0]] = True
        loss, aux = mse, None
        n_dead = int(dead.sum()) if dead is not None and self.cfg.aux_k_coefficient > 0 else 0
        if n_dead:
            aux = self._aux_k_loss(centred, pre, dead, min(self.cfg.aux_k_latents, n_dead), (x - x_hat).detach())
            x_variance = (x - x.mean(dim=0)).pow(2).sum(dim=-1).mean().detach()
            loss = mse + self.cfg.aux_k_coefficient * x_variance * aux
        return TrainStep(loss, mse, torch.zeros((), device=x.device), l0, fired, aux)

    def _aux_k_loss(self, centred: torch.Tensor, pre: torch.Tensor, dead: torch.Tensor, k_aux: int,
                    residual: torch.Tensor) -> torch.Tensor:
        """``1 - <e_hat, e> / (||e_hat|| ||e||)`` over the batch (0: the residual's direction, 1: orthogonal to it),
        ``e_hat`` decoded (no bias) from the rectified ``k_aux`` largest pre-activations among the dead latents
        (Gao et al. 2024, sec. A.2); see the module docstring for why the cosine and not their nmse."""
        with torch.no_grad():
            values, idx = pre.masked_fill(~dead, float("-inf")).topk(k_aux, dim=-1)
        selected = _SelectedPreActs.apply(centred, self.W_enc, self.b_enc, idx, values)
        e_hat = F.embedding_bag(idx, self.W_dec, per_sample_weights=torch.relu(selected), mode="sum")
        norms = (e_hat.pow(2).sum() * residual.pow(2).sum()).sqrt().clamp_min(1e-12)
        return 1.0 - (e_hat * residual).sum() / norms
