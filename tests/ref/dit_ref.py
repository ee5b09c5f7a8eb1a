"""Independent PyTorch reference of DiT and DyDiT and their training losses, written from docs/algorithm.md 1-4.

It is the yardstick for `dydit forward` and `dydit grad`: the same command line, the same
safetensors tensor names, computed by default in float64 (weights and inputs upcast from their
float32 values) so that the reference's own rounding is negligible next to the C float32 result.
Gradients come from autograd, so they are independent of any hand-written backward pass.

    python3 dit_ref.py forward --weights W --inputs IN --out OUT [--heads H] [--dtype float32] [--complete]
    python3 dit_ref.py grad    --weights W --inputs IN --out OUT [--heads H] [--dtype float32]
                               [--stage 1|2] [--target F] [--tau T] [--flops-weight W]

Weights with router tensors (`blocks.{i}.attn_rate.router.weight`, ...) make the model a DyDiT
(class DyDiT, docs/algorithm.md 3); the DyDiT options are ignored for a plain DiT. DyDiT commands:
  forward: eval mode (no noise): `out` (B, C_out, H, W) of the dynamic path (--complete: of the
           complete path, i.e. the plain DiT on the same weights) and the hard masks `attn_mask`
           (B, L, H), `mlp_mask` (B, L, H), `token_mask` (B, L, N) as float 0/1.
  grad:    inputs x0, noise, t, y and optionally gumbel_attn (B, L, H-1), gumbel_mlp (B, L, H-1),
           gumbel_token (B, L, N) (logistic noise added to the router logits; absent = 0) and
           y_complete (B, default y). Stage 2: loss = mse + vb + flops_loss on the dynamic path;
           stage 1 adds complete_mse + complete_vb of the complete path on the same x_t with labels
           y_complete. Writes loss, mse, vb, flops_loss, flops_ratio (stage 1: complete_mse,
           complete_vb) and grad.<name> for every trainable parameter, routers included.
"""
import argparse
import dataclasses
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_np  # noqa: E402

LN_EPS = 1e-6
MAX_PERIOD = 10000.0
DTYPES = {"float64": torch.float64, "float32": torch.float32}

# DyDiT defaults (docs/algorithm.md 3.3, 4.1): Gumbel-sigmoid temperature, FLOPs target and FLOPs-loss weight.
TAU = 5.0
FLOPS_TARGET = 1.0
FLOPS_WEIGHT = 2.0
ROUTER_INPUTS = ("timestep", "condition")  # what the width routers read: E_t, or c = E_t + E_y
ROUTER_PROBE = "blocks.0.attn_rate.router.weight"  # its presence makes a weight file a DyDiT


# ----------------------------------------------------------------------------------------------
# Configuration


@dataclasses.dataclass
class DitConfig:
    depth: int
    hidden: int
    heads: int
    patch: int
    in_channels: int
    input_size: int  # latent height = width
    num_classes: int  # without the null class
    learn_sigma: bool = True
    mlp_ratio: float = 4.0
    class_dropout: float = 0.1
    frequency_size: int = 256
    dynamic: bool = False  # DyDiT: the routers of docs/algorithm.md 7.2 exist (set from the tensors, not the metadata)
    router_input: "str | None" = None  # DyDiT width-router input, one of ROUTER_INPUTS; None: unstated (= "timestep")

    @property
    def out_channels(self):
        return 2 * self.in_channels if self.learn_sigma else self.in_channels

    @property
    def head_dim(self):
        return self.hidden // self.heads

    @property
    def grid(self):
        return self.input_size // self.patch

    @property
    def tokens(self):
        return self.grid * self.grid

    @property
    def mlp_hidden(self):
        return int(self.hidden * self.mlp_ratio + 0.5)

    @property
    def token_router_hidden(self):
        """Width of the token router's hidden layer, D/16 (at least 1)."""
        return max(1, self.hidden // 16)

    @property
    def group_size(self):
        """DyDiT MLP channel group: the M hidden units split into H contiguous groups."""
        return self.mlp_hidden // self.heads

    @property
    def width_router_input(self):
        return self.router_input or "timestep"

    @property
    def label_rows(self):
        """Class dropout needs a null-class row (index num_classes) for dropped labels."""
        return self.num_classes + (1 if self.class_dropout > 0 else 0)

    def validate(self):
        if self.hidden % self.heads:
            raise ValueError(f"hidden {self.hidden} is not divisible by heads {self.heads}")
        if self.hidden % 4:
            raise ValueError(f"hidden {self.hidden} must be a multiple of 4 for the 2-D sin-cos embedding")
        if self.input_size % self.patch:
            raise ValueError(f"input size {self.input_size} is not a multiple of patch {self.patch}")
        if self.frequency_size % 2:
            raise ValueError(f"frequency size {self.frequency_size} must be even")
        if self.router_input is not None and self.router_input not in ROUTER_INPUTS:
            raise ValueError(f"router_input '{self.router_input}' is not one of {', '.join(ROUTER_INPUTS)}")
        if self.dynamic and self.heads < 2:
            raise ValueError("a DyDiT needs at least 2 heads (head 0 is never routed)")
        if self.dynamic and self.mlp_hidden % self.heads:
            raise ValueError(f"MLP hidden {self.mlp_hidden} is not divisible into {self.heads} channel groups")
        return self

    def metadata(self):
        """The `__metadata__` strings of a dydit weight file (router_input only when stated)."""
        meta = {
            "format": "dydit-weights",
            "format_version": "1",
            "depth": str(self.depth),
            "hidden": str(self.hidden),
            "heads": str(self.heads),
            "patch": str(self.patch),
            "in_channels": str(self.in_channels),
            "input_size": str(self.input_size),
            "num_classes": str(self.num_classes),
            "learn_sigma": "1" if self.learn_sigma else "0",
            "mlp_ratio": f"{self.mlp_ratio:g}",
            "class_dropout": f"{self.class_dropout:g}",
            "frequency_size": str(self.frequency_size),
        }
        if self.router_input is not None:
            meta["router_input"] = self.router_input
        return meta

    @classmethod
    def from_metadata(cls, meta):
        return cls(
            depth=int(meta["depth"]),
            hidden=int(meta["hidden"]),
            heads=int(meta["heads"]),
            patch=int(meta["patch"]),
            in_channels=int(meta["in_channels"]),
            input_size=int(meta["input_size"]),
            num_classes=int(meta["num_classes"]),
            learn_sigma=meta["learn_sigma"] == "1",
            mlp_ratio=float(meta["mlp_ratio"]),
            class_dropout=float(meta["class_dropout"]),
            frequency_size=int(meta.get("frequency_size", "256")),
            router_input=meta.get("router_input"),
        ).validate()

    @classmethod
    def from_tensors(cls, tensors, heads, input_size=None):
        """docs/algorithm.md 7.6: everything but the head count follows from the shapes (DyDiT: heads too).

        The label table is assumed to end with a null-class row, as in every official checkpoint;
        the latent size comes from pos_embed when present; a DyDiT's head count is its width
        routers' row count + 1.
        """
        if ROUTER_PROBE in tensors:
            routed = tensors[ROUTER_PROBE].shape[0] + 1
            if heads is not None and heads != routed:
                raise ValueError(f"--heads {heads} disagrees with the routers' {routed} heads")
            heads = routed
        if heads is None:
            raise ValueError("no metadata and no routers: the head count must be given")
        hidden, in_channels, patch, _ = tensors["x_embedder.proj.weight"].shape
        depth = 1 + max(int(k.split(".")[1]) for k in tensors if k.startswith("blocks."))
        out_channels = tensors["final_layer.linear.weight"].shape[0] // (patch * patch)
        if "pos_embed" in tensors:
            input_size = math.isqrt(tensors["pos_embed"].shape[1]) * patch
        if input_size is None:
            raise ValueError("no pos_embed in the weights: the latent size must be given")
        return cls(
            depth=depth,
            hidden=hidden,
            heads=heads,
            patch=patch,
            in_channels=in_channels,
            input_size=input_size,
            num_classes=tensors["y_embedder.embedding_table.weight"].shape[0] - 1,
            learn_sigma=out_channels == 2 * in_channels,
            mlp_ratio=tensors["blocks.0.mlp.fc1.weight"].shape[0] / hidden,
            class_dropout=0.1,
            frequency_size=tensors["t_embedder.mlp.0.weight"].shape[1],
            dynamic=ROUTER_PROBE in tensors,
        ).validate()


def param_shapes(cfg):
    """Official DiT state-dict names and shapes (docs/algorithm.md 7.1), pos_embed included, in state-dict order;
    a DyDiT config adds each block's routers (docs/algorithm.md 7.2) after the block's DiT tensors."""
    D, M, H, R = cfg.hidden, cfg.mlp_hidden, cfg.heads, cfg.token_router_hidden
    shapes = {
        "pos_embed": (1, cfg.tokens, D),
        "x_embedder.proj.weight": (D, cfg.in_channels, cfg.patch, cfg.patch),
        "x_embedder.proj.bias": (D,),
        "t_embedder.mlp.0.weight": (D, cfg.frequency_size),
        "t_embedder.mlp.0.bias": (D,),
        "t_embedder.mlp.2.weight": (D, D),
        "t_embedder.mlp.2.bias": (D,),
        "y_embedder.embedding_table.weight": (cfg.label_rows, D),
    }
    for i in range(cfg.depth):
        b = f"blocks.{i}."
        shapes[b + "attn.qkv.weight"] = (3 * D, D)
        shapes[b + "attn.qkv.bias"] = (3 * D,)
        shapes[b + "attn.proj.weight"] = (D, D)
        shapes[b + "attn.proj.bias"] = (D,)
        shapes[b + "mlp.fc1.weight"] = (M, D)
        shapes[b + "mlp.fc1.bias"] = (M,)
        shapes[b + "mlp.fc2.weight"] = (D, M)
        shapes[b + "mlp.fc2.bias"] = (D,)
        shapes[b + "adaLN_modulation.1.weight"] = (6 * D, D)
        shapes[b + "adaLN_modulation.1.bias"] = (6 * D,)
        if cfg.dynamic:
            shapes[b + "attn_rate.router.weight"] = (H - 1, D)
            shapes[b + "attn_rate.router.bias"] = (H - 1,)
            shapes[b + "mlp_rate.router.weight"] = (H - 1, D)
            shapes[b + "mlp_rate.router.bias"] = (H - 1,)
            shapes[b + "token_selection.mlp_head.0.weight"] = (R, D)
            shapes[b + "token_selection.mlp_head.0.bias"] = (R,)
            shapes[b + "token_selection.mlp_head.2.weight"] = (1, R)
            shapes[b + "token_selection.mlp_head.2.bias"] = (1,)
    patch_out = cfg.patch * cfg.patch * cfg.out_channels
    shapes["final_layer.adaLN_modulation.1.weight"] = (2 * D, D)
    shapes["final_layer.adaLN_modulation.1.bias"] = (2 * D,)
    shapes["final_layer.linear.weight"] = (patch_out, D)
    shapes["final_layer.linear.bias"] = (patch_out,)
    return shapes


def parameter_count(cfg):
    """All parameters including the frozen pos_embed, as DiT's train.py logs them."""
    return sum(math.prod(s) for s in param_shapes(cfg).values())


# ----------------------------------------------------------------------------------------------
# Fixed embeddings


def sincos_1d(size, positions):
    """(P,) float64 positions -> (P, size): [sin(pos*w_k) | cos(pos*w_k)], w_k = 10000^(-k/(size/2))."""
    omega = MAX_PERIOD ** (-np.arange(size // 2, dtype=np.float64) / (size / 2))
    angles = positions[:, None] * omega[None, :]
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)


def sincos_pos_embed(hidden, grid):
    """(grid*grid, hidden) float64, token n = row*grid + col.

    docs/algorithm.md 1.4: the first hidden/2 channels encode the column, the second half the row.
    """
    rows, cols = np.divmod(np.arange(grid * grid, dtype=np.float64), grid)
    return np.concatenate([sincos_1d(hidden // 2, cols), sincos_1d(hidden // 2, rows)], axis=1)


def timestep_frequencies(t, size, dtype):
    """(B,) timesteps -> (B, size): [cos(t*f_k) | sin(t*f_k)], f_k = exp(-ln(10000) k/(size/2)).

    The model defines these features as float32 arithmetic (the official code builds them in
    float32 whatever the rest runs in), so they are always computed in float32 and then cast: with
    t up to 999 the float32 phases differ from the exact ones by up to ~1e-4, a difference of
    definition, not of rounding, that a float64 reference must not smooth away.
    """
    half = size // 2
    freqs = torch.exp(-math.log(MAX_PERIOD) * torch.arange(half, dtype=torch.float32) / half)
    args = t.to(torch.float32)[:, None] * freqs[None, :]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1).to(dtype)


# ----------------------------------------------------------------------------------------------
# Model


def layer_norm(x):
    """LayerNorm over the last dim, eps 1e-6, no affine parameters (the adaLN provides them)."""
    return F.layer_norm(x, x.shape[-1:], eps=LN_EPS)


def modulate(x, shift, scale):
    """x (B, N, D), shift/scale (B, D): x * (1 + scale) + shift, broadcast over tokens."""
    return x * (1 + scale[:, None, :]) + shift[:, None, :]


class DiT:
    """A DiT whose parameters are plain autograd leaves keyed by their official names."""

    dynamic = False  # DyDiT overrides: whether the weights carry routers

    def __init__(self, cfg, state, dtype=torch.float64):
        """state: name -> float32 array (pos_embed optional). Parameters are upcast to `dtype`."""
        self.cfg = dataclasses.replace(cfg, dynamic=self.dynamic).validate()
        self.dtype = dtype
        shapes = param_shapes(self.cfg)
        state = dict(state)
        if "pos_embed" not in state:
            # The official model stores the float64 table as a float32 parameter.
            state["pos_embed"] = sincos_pos_embed(cfg.hidden, cfg.grid).astype(np.float32)[None]
        unknown = sorted(set(state) - set(shapes))
        if unknown:
            raise ValueError(f"unexpected tensors in the weights: {unknown[:5]}")
        self.params = {}
        for name, shape in shapes.items():
            if name not in state:
                raise ValueError(f"missing tensor '{name}'")
            value = np.asarray(state[name])
            if tuple(value.shape) != shape:
                raise ValueError(f"tensor '{name}' has shape {list(value.shape)}, want {list(shape)}")
            tensor = torch.tensor(value.astype(np.float32), dtype=dtype)
            self.params[name] = tensor.requires_grad_(name != "pos_embed")

    def trainable(self):
        """Every parameter except the frozen pos_embed, in state-dict order."""
        return {k: v for k, v in self.params.items() if v.requires_grad}

    def linear(self, x, name):
        return F.linear(x, self.params[name + ".weight"], self.params[name + ".bias"])

    def embed_patches(self, x):
        """x (B, C, H, W) -> tokens (B, N, D); a p x p stride-p convolution, patch vector order (c, py, px)."""
        w, b = self.params["x_embedder.proj.weight"], self.params["x_embedder.proj.bias"]
        tokens = F.conv2d(x, w, b, stride=self.cfg.patch)  # (B, D, h, w)
        return tokens.flatten(2).transpose(1, 2) + self.params["pos_embed"]

    def embed_timesteps(self, t):
        """E_t (B, D): the timestep MLP on the sinusoidal features."""
        freq = timestep_frequencies(t, self.cfg.frequency_size, self.dtype)  # (B, F)
        return self.linear(F.silu(self.linear(freq, "t_embedder.mlp.0")), "t_embedder.mlp.2")

    def condition(self, t, y):
        """c = E_t + E_y, (B, D)."""
        return self.embed_timesteps(t) + self.params["y_embedder.embedding_table.weight"][y]

    def attention_heads(self, h, prefix):
        """h (B, N, D) -> the heads' outputs concatenated head-major (B, N, D), before proj.

        qkv feature index = which*D + head*hd + d.
        """
        B, N, D = h.shape
        H, hd = self.cfg.heads, self.cfg.head_dim
        qkv = self.linear(h, prefix + "attn.qkv").reshape(B, N, 3, H, hd).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # each (B, H, N, hd)
        weights = torch.softmax((q * hd ** -0.5) @ k.transpose(-2, -1), dim=-1)  # (B, H, N, N)
        return (weights @ v).transpose(1, 2).reshape(B, N, D)  # channel h*hd + d

    def attention(self, h, prefix):
        """h (B, N, D) -> (B, N, D)."""
        return self.linear(self.attention_heads(h, prefix), prefix + "attn.proj")

    def mlp(self, h, prefix):
        return self.linear(F.gelu(self.linear(h, prefix + "mlp.fc1"), approximate="tanh"), prefix + "mlp.fc2")

    def block(self, x, silu_c, i):
        """adaLN-Zero block; x (B, N, D), silu_c (B, D)."""
        prefix = f"blocks.{i}."
        mod = self.linear(silu_c, prefix + "adaLN_modulation.1")  # (B, 6D)
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = mod.chunk(6, dim=1)
        x = x + gate_msa[:, None, :] * self.attention(modulate(layer_norm(x), shift_msa, scale_msa), prefix)
        x = x + gate_mlp[:, None, :] * self.mlp(modulate(layer_norm(x), shift_mlp, scale_mlp), prefix)
        return x

    def final_layer(self, x, silu_c):
        """x (B, N, D) -> (B, N, p*p*C_out)."""
        shift, scale = self.linear(silu_c, "final_layer.adaLN_modulation.1").chunk(2, dim=1)
        return self.linear(modulate(layer_norm(x), shift, scale), "final_layer.linear")

    def unpatchify(self, tokens):
        """(B, N, p*p*C_out) with per-token order (py, px, c) -> (B, C_out, H, W)."""
        B = tokens.shape[0]
        g, p, c = self.cfg.grid, self.cfg.patch, self.cfg.out_channels
        img = tokens.reshape(B, g, g, p, p, c).permute(0, 5, 1, 3, 2, 4)  # (B, c, row, py, col, px)
        return img.reshape(B, c, g * p, g * p)

    def forward(self, x, t, y):
        """x (B, C, H, W), t (B) timesteps, y (B) int64 labels -> (B, C_out, H, W).

        For a DyDiT this is the complete path: the same weights, routers unused (docs/algorithm.md 3.7).
        """
        tokens = self.embed_patches(x.to(self.dtype))
        silu_c = F.silu(self.condition(t, y))
        for i in range(self.cfg.depth):
            tokens = self.block(tokens, silu_c, i)
        return self.unpatchify(self.final_layer(tokens, silu_c))


# ----------------------------------------------------------------------------------------------
# DyDiT (docs/algorithm.md 3, 4.1)


def straight_through_gate(z, noise, tau):
    """Straight-through Gumbel-sigmoid (docs/algorithm.md 3.3) on logits z with logistic noise (None: 0).

    Value: exactly hard = 1[z + noise > 0] (strict). Gradient: that of soft = sigmoid((z + noise)/tau),
    via hard + (soft - soft.detach()), whose value is hard + 0 exactly (the usual
    hard - soft.detach() + soft can be off by an ulp).
    """
    zg = z if noise is None else z + noise
    soft = torch.sigmoid(zg / tau)
    hard = (zg > 0).to(z.dtype)
    return hard + (soft - soft.detach())


def block_macs(cfg):
    """One block's multiply-adds for one sample (docs/algorithm.md 1.2): (ATTN, MLP) = (4ND^2 + 2N^2 D, 2NDM)."""
    N, D, M = cfg.tokens, cfg.hidden, cfg.mlp_hidden
    return 4 * N * D * D + 2 * N * N * D, 2 * N * D * M


def flops_ratio(cfg, head, chan, token):
    """Realised compute ratio per sample F (B,) from masks head (B, L, H), chan (B, L, H), token (B, L, N):
    sum_l (mean_h head * ATTN + mean_h chan * mean_n token * MLP) / (L (ATTN + MLP)) (docs/algorithm.md 4.1)."""
    attn, mlp = block_macs(cfg)
    a, g, k = head.mean(dim=-1), chan.mean(dim=-1), token.mean(dim=-1)  # (B, L) each
    return (a * attn + g * k * mlp).sum(dim=-1) / (cfg.depth * (attn + mlp))


@dataclasses.dataclass
class DynamicResult:
    out: torch.Tensor  # (B, C_out, H, W)
    head: torch.Tensor  # (B, L, H) head masks, column 0 = 1; straight-through values
    chan: torch.Tensor  # (B, L, H) MLP channel-group masks, column 0 = 1
    token: torch.Tensor  # (B, L, N) token masks


class DyDiT(DiT):
    """DiT plus per-block routers: head and channel-group masks from the timestep (TDW), a token
    mask from the residual stream (SDT). `forward` (inherited) is the complete path; `run` is the
    dynamic one."""

    dynamic = True
    KINDS = ("attn", "mlp", "token")  # the three decisions of a block, in the order they are taken

    def router_input(self, t, y):
        """(E_t or c, c): what the width routers read, and the adaLN conditioning c = E_t + E_y."""
        e_t = self.embed_timesteps(t)
        c = e_t + self.params["y_embedder.embedding_table.weight"][y]
        return (c if self.cfg.width_router_input == "condition" else e_t), c

    def token_logits(self, x, prefix, hook=None, block=None):
        """x (B, N, D) -> (B, N): Linear(D, R) -> ReLU -> Linear(R, 1) per token."""
        pre = self.linear(x, prefix + "token_selection.mlp_head.0")  # (B, N, R)
        if hook is not None:
            hook("token_hidden", block, pre, None)
        return self.linear(F.relu(pre), prefix + "token_selection.mlp_head.2")[..., 0]

    def decide(self, kind, block, z, noise, tau, hook):
        """One straight-through decision over logits z; noise[kind] (B, L, K) may be absent."""
        g = None if noise is None or noise.get(kind) is None else noise[kind][:, block].to(z.dtype)
        if hook is not None:
            g = hook(kind, block, z, g)
        return straight_through_gate(z, g, tau)

    def dynamic_block(self, x, silu_c, r_in, i, noise, tau, apply, hook):
        """One DyDiT block -> (x_out, m_head (B, H), m_chan (B, H), s_tok (B, N)).

        apply=False evaluates the routers (on this stream) but applies no mask: the complete block.
        """
        prefix = f"blocks.{i}."
        B, N, D = x.shape
        hd, gs = self.cfg.head_dim, self.cfg.group_size
        mod = self.linear(silu_c, prefix + "adaLN_modulation.1")
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = mod.chunk(6, dim=1)
        ones = torch.ones(B, 1, dtype=x.dtype)
        m_head = torch.cat([ones, self.decide("attn", i, self.linear(r_in, prefix + "attn_rate.router"),
                                              noise, tau, hook)], dim=1)  # (B, H)
        m_chan = torch.cat([ones, self.decide("mlp", i, self.linear(r_in, prefix + "mlp_rate.router"),
                                              noise, tau, hook)], dim=1)  # (B, H)

        heads = self.attention_heads(modulate(layer_norm(x), shift_msa, scale_msa), prefix)  # (B, N, D)
        if apply:
            heads = heads * m_head.repeat_interleave(hd, dim=1)[:, None, :]  # channel h*hd+d times m_head[b, h]
        x = x + gate_msa[:, None, :] * self.linear(heads, prefix + "attn.proj")

        s_tok = self.decide("token", i, self.token_logits(x, prefix, hook, i), noise, tau, hook)  # (B, N)
        hidden = self.linear(modulate(layer_norm(x), shift_mlp, scale_mlp), prefix + "mlp.fc1")  # (B, N, M)
        if apply:
            hidden = hidden * m_chan.repeat_interleave(gs, dim=1)[:, None, :]  # unit g*gs+j times m_chan[b, g]
        branch = gate_mlp[:, None, :] * self.linear(F.gelu(hidden, approximate="tanh"), prefix + "mlp.fc2")
        if apply:
            branch = s_tok[:, :, None] * branch
        return x + branch, m_head, m_chan, s_tok

    def run(self, x, t, y, noise=None, tau=TAU, apply=True, hook=None):
        """The dynamic path -> DynamicResult.

        noise: None (eval mode) or {"attn": (B, L, H-1), "mlp": (B, L, H-1), "token": (B, L, N)}
        logistic noise (any entry may be None). apply=False: every mask is computed by the routers
        on this stream but none is applied, so `out` is the complete path's. hook(kind, block, z,
        noise) -> noise is called before each decision with the noiseless logits (and with kind
        "token_hidden" on the token router's ReLU input): make_case uses it to look at and adjust
        decision margins.
        """
        tokens = self.embed_patches(x.to(self.dtype))
        r_in, c = self.router_input(t, y)
        silu_c = F.silu(c)
        heads, chans, toks = [], [], []
        for i in range(self.cfg.depth):
            tokens, m_head, m_chan, s_tok = self.dynamic_block(tokens, silu_c, r_in, i, noise, tau, apply, hook)
            heads.append(m_head)
            chans.append(m_chan)
            toks.append(s_tok)
        out = self.unpatchify(self.final_layer(tokens, silu_c))
        return DynamicResult(out, torch.stack(heads, 1), torch.stack(chans, 1), torch.stack(toks, 1))

    def flops_ratio(self, result):
        """F (B,) of a run's masks."""
        return flops_ratio(self.cfg, result.head, result.chan, result.token)


def make_model(cfg, state, dtype=torch.float64):
    """DyDiT when cfg says the weights carry routers, else DiT."""
    return (DyDiT if cfg.dynamic else DiT)(cfg, state, dtype)


# ----------------------------------------------------------------------------------------------
# Diffusion


class Diffusion:
    """Linear-beta DDPM schedule (docs/algorithm.md 2.1) and the training loss (docs/algorithm.md 2.3).

    Tables are float64; per-sample coefficients are gathered from them and then cast to the
    compute dtype (float32 in the official code).
    """

    def __init__(self, steps=1000, beta_start=1e-4, beta_end=0.02):
        betas = np.linspace(beta_start, beta_end, steps, dtype=np.float64)
        alphas = 1.0 - betas
        abar = np.cumprod(alphas)
        abar_prev = np.concatenate([[1.0], abar[:-1]])
        post_var = betas * (1.0 - abar_prev) / (1.0 - abar)
        self.betas = betas
        self.alphas_cumprod = abar
        self.sqrt_abar = np.sqrt(abar)
        self.sqrt_one_minus_abar = np.sqrt(1.0 - abar)
        self.sqrt_recip_abar = np.sqrt(1.0 / abar)
        self.sqrt_recipm1_abar = np.sqrt(1.0 / abar - 1.0)
        # log of 0 at t = 0: the clipped version borrows entry 1.
        self.post_log_var_clipped = np.log(np.concatenate([post_var[1:2], post_var[1:]]))
        self.post_mean_c1 = betas * np.sqrt(abar_prev) / (1.0 - abar)
        self.post_mean_c2 = (1.0 - abar_prev) * np.sqrt(alphas) / (1.0 - abar)

    @staticmethod
    def gather(table, t, dtype):
        """table (T,) float64, t (B) -> (B, 1, 1, 1) in dtype, through float32 as the model does."""
        return torch.from_numpy(table[t.numpy()]).to(torch.float32).to(dtype)[:, None, None, None]

    def q_sample(self, x0, noise, t):
        dt = x0.dtype
        return self.gather(self.sqrt_abar, t, dt) * x0 + self.gather(self.sqrt_one_minus_abar, t, dt) * noise

    def model_mean_logvar(self, x_t, t, eps, v):
        """Learned-range variance and the eps-parameterised mean: (mu_theta, log sigma^2_theta)."""
        dt = x_t.dtype
        frac = (v + 1) / 2
        max_log = self.gather(np.log(self.betas), t, dt)
        min_log = self.gather(self.post_log_var_clipped, t, dt)
        log_var = frac * max_log + (1 - frac) * min_log
        x0_hat = self.gather(self.sqrt_recip_abar, t, dt) * x_t - self.gather(self.sqrt_recipm1_abar, t, dt) * eps
        mean = self.gather(self.post_mean_c1, t, dt) * x0_hat + self.gather(self.post_mean_c2, t, dt) * x_t
        return mean, log_var

    def vb_bits(self, x0, x_t, t, eps, v):
        """Per-sample variational bound term in bits, (B,): KL for t > 0, decoder NLL at t = 0."""
        dt = x0.dtype
        mean, log_var = self.model_mean_logvar(x_t, t, eps, v)
        true_mean = self.gather(self.post_mean_c1, t, dt) * x0 + self.gather(self.post_mean_c2, t, dt) * x_t
        true_log_var = self.gather(self.post_log_var_clipped, t, dt)
        kl = gaussian_kl(true_mean, true_log_var, mean, log_var).mean(dim=(1, 2, 3)) / math.log(2.0)
        nll = -discretized_gaussian_log_likelihood(x0, mean, 0.5 * log_var).mean(dim=(1, 2, 3)) / math.log(2.0)
        return torch.where(t == 0, nll, kl)

    def sample_losses(self, out, x0, x_t, noise, t, learn_sigma):
        """Per-sample (mse, vb), each (B,), of a model output (docs/algorithm.md 2.3); vb sees eps_hat detached."""
        C = x0.shape[1]
        eps = out[:, :C]
        mse = ((noise - eps) ** 2).mean(dim=(1, 2, 3))
        if learn_sigma:
            vb = self.vb_bits(x0, x_t, t, eps.detach(), out[:, C:])
        else:
            vb = torch.zeros_like(mse)
        return mse, vb

    def training_losses(self, model, x0, noise, t, y):
        """Batch means {loss, mse, vb}; loss = MSE(eps) + VB with the mean frozen (docs/algorithm.md 2.3)."""
        x0, noise = x0.to(model.dtype), noise.to(model.dtype)
        x_t = self.q_sample(x0, noise, t)
        mse, vb = self.sample_losses(model.forward(x_t, t, y), x0, x_t, noise, t, model.cfg.learn_sigma)
        return {"loss": (mse + vb).mean(), "mse": mse.mean(), "vb": vb.mean()}

    def dydit_losses(self, model, x0, noise, t, y, gumbel=None, stage=2, y_complete=None, target=FLOPS_TARGET,
                     tau=TAU, flops_weight=FLOPS_WEIGHT):
        """Batch means of the DyDiT objective (docs/algorithm.md 4.1, 4.3).

        Stage 2: loss = mse + vb (dynamic path, noise `gumbel`) + flops_loss with
        flops_loss = flops_weight * (mean_b F - target)^2. Stage 1 adds complete_mse + complete_vb,
        the complete path on the same x_t with labels y_complete (default y).
        """
        x0, noise = x0.to(model.dtype), noise.to(model.dtype)
        x_t = self.q_sample(x0, noise, t)
        result = model.run(x_t, t, y, noise=gumbel, tau=tau)
        mse, vb = self.sample_losses(result.out, x0, x_t, noise, t, model.cfg.learn_sigma)
        ratio = model.flops_ratio(result).mean()
        flops_loss = flops_weight * (ratio - target) ** 2
        losses = {"mse": mse.mean(), "vb": vb.mean(), "flops_loss": flops_loss, "flops_ratio": ratio}
        loss = losses["mse"] + losses["vb"] + flops_loss
        if stage == 1:
            out = model.forward(x_t, t, y if y_complete is None else y_complete)
            mse_c, vb_c = self.sample_losses(out, x0, x_t, noise, t, model.cfg.learn_sigma)
            losses.update(complete_mse=mse_c.mean(), complete_vb=vb_c.mean())
            loss = loss + losses["complete_mse"] + losses["complete_vb"]
        elif stage != 2:
            raise ValueError(f"stage {stage}: want 1 or 2")
        return {"loss": loss, **losses}


def gaussian_kl(mean1, log_var1, mean2, log_var2):
    """KL(N(mean1, e^log_var1) || N(mean2, e^log_var2)) elementwise, in nats."""
    return 0.5 * (-1.0 + log_var2 - log_var1 + torch.exp(log_var1 - log_var2)
                  + (mean1 - mean2) ** 2 * torch.exp(-log_var2))


def approx_normal_cdf(u):
    """Standard normal CDF via the tanh approximation 0.5(1 + tanh(sqrt(2/pi)(u + 0.044715 u^3)))."""
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (u + 0.044715 * u ** 3)))


def discretized_gaussian_log_likelihood(x, mean, log_scale):
    """log P(x) of data quantised to 256 levels on [-1, 1]: the Gaussian mass of the bin x +- 1/255.

    The outermost bins (x < -0.999, x > 0.999) extend to -inf / +inf; probabilities are clamped
    at 1e-12 before the log, so far-off values contribute a constant and no gradient.
    """
    inv_std = torch.exp(-log_scale)
    centered = x - mean
    cdf_plus = approx_normal_cdf(inv_std * (centered + 1.0 / 255.0))
    cdf_min = approx_normal_cdf(inv_std * (centered - 1.0 / 255.0))
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_cdf_min = torch.log((1.0 - cdf_min).clamp(min=1e-12))
    log_bin = torch.log((cdf_plus - cdf_min).clamp(min=1e-12))
    return torch.where(x < -0.999, log_cdf_plus, torch.where(x > 0.999, log_one_minus_cdf_min, log_bin))


# ----------------------------------------------------------------------------------------------
# The forward / grad commands


def load_model(path, heads=None, dtype=torch.float64, input_size=None):
    """A DiT or DyDiT from a weight file; the config comes from its metadata, else from the shapes
    plus `heads` (a DyDiT's head count follows from its routers). Router tensors make a DyDiT."""
    tensors, meta = safetensors_np.load(path)
    if meta.get("format") == "dydit-weights":
        cfg = DitConfig.from_metadata(meta)
        cfg = dataclasses.replace(cfg, dynamic=ROUTER_PROBE in tensors).validate()
    elif heads is not None or ROUTER_PROBE in tensors:
        cfg = DitConfig.from_tensors(tensors, heads, input_size)
    else:
        raise ValueError(f"{path}: no dydit metadata; the head count must be given")
    return make_model(cfg, tensors, dtype)


def _as_float(array):
    return torch.from_numpy(np.asarray(array, dtype=np.float32))


def _as_long(array):
    return torch.from_numpy(np.asarray(array).astype(np.int64))


def _numpy(values):
    return {k: v.detach().numpy().astype(np.float32) for k, v in values.items()}


def gumbel_inputs(inputs):
    """The optional logistic-noise inputs of `grad` as run()'s noise dict, or None when none is given."""
    noise = {kind: _as_float(inputs["gumbel_" + kind]) if "gumbel_" + kind in inputs else None
             for kind in DyDiT.KINDS}
    return noise if any(v is not None for v in noise.values()) else None


def run_forward(model, inputs, complete=False):
    """inputs {x, t, y} -> {out} (DyDiT: + attn_mask, mlp_mask, token_mask, eval mode) as float32 arrays."""
    x, t, y = _as_float(inputs["x"]), _as_float(inputs["t"]), _as_long(inputs["y"])
    with torch.no_grad():
        if not model.dynamic:
            return {"out": model.forward(x, t, y).numpy().astype(np.float32)}
        result = model.run(x, t, y, apply=not complete)
    return _numpy({"out": result.out, "attn_mask": result.head, "mlp_mask": result.chan,
                   "token_mask": result.token})


def run_grad(model, inputs, diffusion=None, stage=2, target=FLOPS_TARGET, tau=TAU, flops_weight=FLOPS_WEIGHT):
    """inputs {x0, noise, t, y} -> {loss, mse, vb, grad.<name>...} as float32 arrays.

    A DyDiT also reads gumbel_attn / gumbel_mlp / gumbel_token and y_complete when present and adds
    flops_loss, flops_ratio (and complete_mse, complete_vb in stage 1); the options apply to it only.
    """
    diffusion = diffusion or Diffusion()
    params = model.trainable()
    for p in params.values():
        p.grad = None
    x0, noise = _as_float(inputs["x0"]), _as_float(inputs["noise"])
    t, y = _as_long(inputs["t"]), _as_long(inputs["y"])
    if model.dynamic:
        y_complete = _as_long(inputs["y_complete"]) if "y_complete" in inputs else None
        losses = diffusion.dydit_losses(model, x0, noise, t, y, gumbel_inputs(inputs), stage, y_complete,
                                        target, tau, flops_weight)
    else:
        losses = diffusion.training_losses(model, x0, noise, t, y)
    losses["loss"].backward()
    result = _numpy(losses)
    for name, p in params.items():
        result["grad." + name] = p.grad.numpy().astype(np.float32)
    return result


def command_parser():
    """The command line shared by main() and make_case.py (which parses the per-case flags with it)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("command", choices=["forward", "grad"])
    ap.add_argument("--weights", required=True)
    ap.add_argument("--inputs", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--heads", type=int, help="head count for weight files without metadata")
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="float64")
    dy = ap.add_argument_group("DyDiT (ignored for DiT weights)")
    dy.add_argument("--complete", action="store_true", help="forward: out of the complete path (masks still written)")
    dy.add_argument("--stage", type=int, choices=[1, 2], default=2, help="grad: 1 adds the complete-path loss")
    dy.add_argument("--target", type=float, default=FLOPS_TARGET, help="grad: FLOPs-ratio target")
    dy.add_argument("--tau", type=float, default=TAU, help="grad: Gumbel-sigmoid temperature")
    dy.add_argument("--flops-weight", type=float, default=FLOPS_WEIGHT, help="grad: FLOPs-loss weight")
    return ap


def run_command(model, args, inputs):
    """Runs the parsed command on a loaded model."""
    if args.command == "forward":
        return run_forward(model, inputs, complete=args.complete)
    return run_grad(model, inputs, stage=args.stage, target=args.target, tau=args.tau,
                    flops_weight=args.flops_weight)


def main(argv=None):
    args = command_parser().parse_args(argv)
    try:
        inputs, _ = safetensors_np.load(args.inputs)
        x = inputs["x"] if args.command == "forward" else inputs["x0"]
        model = load_model(args.weights, args.heads, DTYPES[args.dtype], input_size=x.shape[-1])
    except (OSError, KeyError, ValueError) as e:
        sys.exit(f"error: {e}")
    safetensors_np.save(args.out, run_command(model, args, inputs))


if __name__ == "__main__":
    main()
