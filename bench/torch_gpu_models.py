"""What the PyTorch GPU benchmarks share: the reference DiT and DyDiT of tests/ref/dit_ref.py on a
device, with scaled_dot_product_attention for the attention core, random weights, a DyDiT's routers
set to a keep pattern (as bench/gpu_bench.h does for dydit), and the analytic MAC counts of
model/flops.c.

The reference creates some tensors without naming a device (torch.ones, torch.arange, torch.full):
on a GPU the device is made the default one, which puts them there.
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ref"))
import dit_ref  # noqa: E402

PRESETS = {"S": (12, 384, 6), "B": (12, 768, 12), "L": (24, 1024, 16), "XL": (28, 1152, 16)}
HAS_SDPA = hasattr(F, "scaled_dot_product_attention")


def config(model, input_size, dynamic=False):
    """'DiT-XL/2' (or 'XL/2') at a latent size -> dit_ref.DitConfig with DiT's defaults."""
    size, patch = model.removeprefix("DiT-").split("/")
    depth, hidden, heads = PRESETS[size]
    return dit_ref.DitConfig(depth=depth, hidden=hidden, heads=heads, patch=int(patch), in_channels=4,
                             input_size=input_size, num_classes=1000, learn_sigma=True, dynamic=dynamic).validate()


def use_device(device):
    """Makes `device` the default one (see the module's note) and returns it as a torch.device."""
    device = torch.device(device)
    if device.type == "cuda":
        if not hasattr(torch, "set_default_device"):
            sys.exit(f"error: PyTorch {torch.__version__} on a GPU: these benchmarks need 2.0 or newer")
        torch.set_default_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True  # the fp32 products autocast leaves, as dydit's bf16 mode
    return device


class SdpaAttention:
    """The attention core through F.scaled_dot_product_attention (flash / memory-efficient kernels on
    a GPU); the reference's explicit softmax where this PyTorch has no SDPA (CPU checks only)."""

    def attention_heads(self, h, prefix):
        if not HAS_SDPA:
            return super().attention_heads(h, prefix)
        B, N, D = h.shape
        H, hd = self.cfg.heads, self.cfg.head_dim
        qkv = self.linear(h, prefix + "attn.qkv").reshape(B, N, 3, H, hd).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])  # (B, H, N, hd)
        return out.transpose(1, 2).reshape(B, N, D)


class FastDiT(SdpaAttention, dit_ref.DiT):
    pass


class FastDyDiT(SdpaAttention, dit_ref.DyDiT):
    pass


class DeviceDiffusion(dit_ref.Diffusion):
    """The reference schedule with its per-sample gathers from float32 copies of the tables on the
    device (the reference indexes numpy tables with host timesteps)."""

    def __init__(self, device):
        super().__init__()
        self.device = device
        self.tables = {}

    def gather(self, table, t, dtype):
        key = table.tobytes()
        if key not in self.tables:
            self.tables[key] = torch.from_numpy(table).to(torch.float32).to(self.device)
        return self.tables[key][t].to(dtype)[:, None, None, None]


def build_model(cfg, device, seed=0):
    """FastDiT / FastDyDiT with float32 parameters on `device`: N(0, 0.02) weights and biases (none
    zero, so every block matters), the fixed sin-cos pos_embed."""
    cls = FastDyDiT if cfg.dynamic else FastDiT
    zeros = {name: np.zeros(shape, np.float32) for name, shape in dit_ref.param_shapes(cfg).items()
             if name != "pos_embed"}
    model = cls(cfg, zeros, dtype=torch.float32)
    generator = torch.Generator(device=device).manual_seed(seed)
    params = {}
    for name, p in model.params.items():
        p = p.detach().to(device)
        if name != "pos_embed":
            p.normal_(0.0, 0.02, generator=generator)
        params[name] = p.requires_grad_(name != "pos_embed")
    model.params = params
    return model


@torch.no_grad()
def set_keep_pattern(model, heads, groups, tokens, seed=99):
    """A DyDiT's routers reproduce a keep pattern: the first round(heads * H) heads and round(groups
    * H) channel groups in every block, and each block's token-router bias at the quantile of its
    logits that keeps a `tokens` share of a calibration batch (4 random latents at 4 timesteps)."""
    cfg, p = model.cfg, model.params
    H = cfg.heads
    keep_heads, keep_groups = round(heads * H), round(groups * H)
    for i in range(cfg.depth):
        for kind, keep in (("attn_rate", keep_heads), ("mlp_rate", keep_groups)):
            p[f"blocks.{i}.{kind}.router.weight"].zero_()
            bias = p[f"blocks.{i}.{kind}.router.bias"]
            bias.copy_(torch.where(torch.arange(1, H, device=bias.device) < keep, 8.0, -8.0))
    device = p["pos_embed"].device
    generator = torch.Generator(device=device).manual_seed(seed)
    x = torch.randn(4, cfg.in_channels, cfg.input_size, cfg.input_size, generator=generator, device=device)
    t = torch.tensor([100, 400, 700, 950], device=device)
    y = torch.tensor([0, 1, 2, 3], device=device)
    shifts = {}

    def calibrate(kind, block, z, noise):
        # Decisions are z + noise > 0: a shift by the block's quantile is what the bias change will do,
        # so one pass calibrates every block with the earlier ones already calibrated.
        if kind != "token":
            return noise
        ordered = z.flatten().sort().values
        shifts[block] = ordered[round((1.0 - tokens) * (ordered.numel() - 1))]
        return torch.full_like(z, -float(shifts[block]))

    model.run(x, t, y, hook=calibrate)
    for i in range(cfg.depth):
        p[f"blocks.{i}.token_selection.mlp_head.2.bias"] -= shifts[i]


def block_macs(cfg):
    """(attention, mlp, adaLN) MACs of one block and sample, as model/flops.c counts them."""
    N, D, M = cfg.tokens, cfg.hidden, cfg.mlp_hidden
    return 4 * N * D * D + 2 * N * N * D, 2 * N * D * M, 6 * D * D


def forward_macs(cfg):
    """MACs of one forward of one sample (model/flops.c's dit_forward_macs)."""
    N, D, F_ = cfg.tokens, cfg.hidden, cfg.frequency_size
    patch_in, patch_out = cfg.in_channels * cfg.patch ** 2, cfg.out_channels * cfg.patch ** 2
    outside = N * patch_in * D + F_ * D + D * D + 2 * D * D + N * D * patch_out
    return cfg.depth * sum(block_macs(cfg)) + outside


def router_macs(cfg):
    """A DyDiT's routers per forward of one sample (model/flops.c's dydit_router_macs)."""
    N, D, R, H = cfg.tokens, cfg.hidden, cfg.token_router_hidden, cfg.heads
    return cfg.depth * (N * (D * R + R) + 2 * (H - 1) * D)


def realised_macs(cfg, ratio):
    """Forward MACs left when the blocks' attention and MLP run at FLOPs ratio `ratio`."""
    attn, mlp, _ = block_macs(cfg)
    return forward_macs(cfg) - cfg.depth * (attn + mlp) * (1.0 - ratio)


def mfu(images_per_s, flops_per_image, peak_tflops):
    return round(images_per_s * flops_per_image / (peak_tflops * 1e12), 4) if peak_tflops > 0 else None


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)
