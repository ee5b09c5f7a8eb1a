"""Independent PyTorch reference of the Stable Diffusion KL-f8 VAE, written from docs/algorithm.md 8.

It is the yardstick for model/vae.c: the parameters under the diffusers names (docs/algorithm.md 8.4) with
their shapes for any configuration, the renaming to the legacy diffusers attention names and to
the CompVis names, and the encoder and decoder as plain functional code. The parity cases run it
in float64, so its own rounding is negligible next to the C float32 result.

    import vae_ref
    cfg = vae_ref.VaeConfig(channels=[16, 32], layers=2, groups=8)
    shapes = vae_ref.param_shapes(cfg)                 # diffusers name -> shape
    mean, logvar = vae_ref.encode(params, cfg, images)
    images = vae_ref.decode(params, cfg, latents)
"""
import dataclasses
import math

import torch
import torch.nn.functional as F

NORM_EPS = 1e-6
LOGVAR_MIN, LOGVAR_MAX = -30.0, 20.0
SCALE_FACTOR = 0.18215


@dataclasses.dataclass
class VaeConfig:
    channels: list  # block_out_channels, one per level (SD: [128, 256, 512, 512])
    layers: int = 2  # layers_per_block: resnets per encoder level; decoder levels hold one more
    image_channels: int = 3
    latent_channels: int = 4
    groups: int = 32  # norm_num_groups

    @property
    def levels(self):
        return len(self.channels)

    @property
    def downsampling(self):
        return 2 ** (self.levels - 1)


SD_VAE = VaeConfig(channels=[128, 256, 512, 512])


# ----------------------------------------------------------------------------------------------
# Parameters (diffusers names)


def _conv(shapes, prefix, cin, cout, k):
    shapes[f"{prefix}.weight"] = (cout, cin, k, k)
    shapes[f"{prefix}.bias"] = (cout,)


def _norm(shapes, prefix, c):
    shapes[f"{prefix}.weight"] = (c,)
    shapes[f"{prefix}.bias"] = (c,)


def _resnet(shapes, prefix, cin, cout):
    _norm(shapes, f"{prefix}.norm1", cin)
    _conv(shapes, f"{prefix}.conv1", cin, cout, 3)
    _norm(shapes, f"{prefix}.norm2", cout)
    _conv(shapes, f"{prefix}.conv2", cout, cout, 3)
    if cin != cout:
        _conv(shapes, f"{prefix}.conv_shortcut", cin, cout, 1)


def _mid(shapes, prefix, c):
    _resnet(shapes, f"{prefix}.resnets.0", c, c)
    _norm(shapes, f"{prefix}.attentions.0.group_norm", c)
    for part in ("to_q", "to_k", "to_v", "to_out.0"):
        shapes[f"{prefix}.attentions.0.{part}.weight"] = (c, c)
        shapes[f"{prefix}.attentions.0.{part}.bias"] = (c,)
    _resnet(shapes, f"{prefix}.resnets.1", c, c)


def param_shapes(cfg):
    """diffusers name -> shape of every parameter (docs/algorithm.md 8.2-8.4), encoder first."""
    ch, n, z = cfg.channels, cfg.levels, cfg.latent_channels
    shapes = {}
    _conv(shapes, "encoder.conv_in", cfg.image_channels, ch[0], 3)
    cin = ch[0]
    for i in range(n):
        for j in range(cfg.layers):
            _resnet(shapes, f"encoder.down_blocks.{i}.resnets.{j}", cin if j == 0 else ch[i], ch[i])
        if i < n - 1:
            _conv(shapes, f"encoder.down_blocks.{i}.downsamplers.0.conv", ch[i], ch[i], 3)
        cin = ch[i]
    _mid(shapes, "encoder.mid_block", ch[-1])
    _norm(shapes, "encoder.conv_norm_out", ch[-1])
    _conv(shapes, "encoder.conv_out", ch[-1], 2 * z, 3)
    _conv(shapes, "quant_conv", 2 * z, 2 * z, 1)

    _conv(shapes, "post_quant_conv", z, z, 1)
    _conv(shapes, "decoder.conv_in", z, ch[-1], 3)
    _mid(shapes, "decoder.mid_block", ch[-1])
    up = list(reversed(ch))  # up block u works on level n - 1 - u
    cin = up[0]
    for u in range(n):
        for j in range(cfg.layers + 1):
            _resnet(shapes, f"decoder.up_blocks.{u}.resnets.{j}", cin if j == 0 else up[u], up[u])
        if u < n - 1:
            _conv(shapes, f"decoder.up_blocks.{u}.upsamplers.0.conv", up[u], up[u], 3)
        cin = up[u]
    _norm(shapes, "decoder.conv_norm_out", ch[0])
    _conv(shapes, "decoder.conv_out", ch[0], cfg.image_channels, 3)
    return shapes


# ----------------------------------------------------------------------------------------------
# Other namings (docs/algorithm.md 8.4)

_LEGACY_ATTENTION = {".to_q.": ".query.", ".to_k.": ".key.", ".to_v.": ".value.", ".to_out.0.": ".proj_attn."}
_COMPVIS_ATTENTION = {
    ".group_norm.": ".norm.",
    ".to_q.": ".q.",
    ".to_k.": ".k.",
    ".to_v.": ".v.",
    ".to_out.0.": ".proj_out.",
}


def legacy_name(name):
    """The 2022 sd-vae-ft-* attention names."""
    for new, old in _LEGACY_ATTENTION.items():
        name = name.replace(new, old)
    return name


def compvis_name(name, levels):
    """The CompVis/LDM name of a diffusers name; decoder levels are numbered from the top."""
    parts = name.split(".")
    if parts[0] in ("encoder", "decoder") and parts[1] in ("down_blocks", "up_blocks"):
        level = int(parts[2]) if parts[1] == "down_blocks" else levels - 1 - int(parts[2])
        block = "down" if parts[1] == "down_blocks" else "up"
        if parts[3] == "resnets":  # .resnets.{j}.rest -> .block.{j}.rest
            rest = ".".join(parts[5:]).replace("conv_shortcut", "nin_shortcut")
            return f"{parts[0]}.{block}.{level}.block.{parts[4]}.{rest}"
        sampler = "downsample" if block == "down" else "upsample"  # .downsamplers.0.conv.rest
        return f"{parts[0]}.{block}.{level}.{sampler}.{'.'.join(parts[5:])}"
    if parts[0] in ("encoder", "decoder") and parts[1] == "mid_block":
        if parts[2] == "resnets":
            return f"{parts[0]}.mid.block_{int(parts[3]) + 1}.{'.'.join(parts[4:])}"
        rest = "." + ".".join(parts[4:])
        for new, old in _COMPVIS_ATTENTION.items():
            rest = rest.replace(new, old)
        return f"{parts[0]}.mid.attn_1{rest}"
    return name.replace("conv_norm_out", "norm_out")


def is_attention_linear_weight(name):
    return ".attentions.0.to_" in name and name.endswith(".weight")


def renamed(params, cfg, names):
    """params under `names` ("diffusers", "legacy" or "compvis"); CompVis keeps the attention
    Linear weights as 1x1 conv weights (C, C, 1, 1)."""
    out = {}
    for name, value in params.items():
        if names == "legacy":
            out[legacy_name(name)] = value
        elif names == "compvis":
            out[compvis_name(name, cfg.levels)] = value[:, :, None, None] if is_attention_linear_weight(name) else value
        else:
            out[name] = value
    return out


# ----------------------------------------------------------------------------------------------
# The network


def _group_norm(p, prefix, x, cfg):
    return F.group_norm(x, cfg.groups, p[f"{prefix}.weight"], p[f"{prefix}.bias"], NORM_EPS)


def _conv2d(p, prefix, x, stride=1, padding=0):
    return F.conv2d(x, p[f"{prefix}.weight"], p[f"{prefix}.bias"], stride=stride, padding=padding)


def _resnet_forward(p, prefix, x, cfg):
    h = _conv2d(p, f"{prefix}.conv1", F.silu(_group_norm(p, f"{prefix}.norm1", x, cfg)), padding=1)
    h = _conv2d(p, f"{prefix}.conv2", F.silu(_group_norm(p, f"{prefix}.norm2", h, cfg)), padding=1)
    if f"{prefix}.conv_shortcut.weight" in p:
        x = _conv2d(p, f"{prefix}.conv_shortcut", x)
    return x + h


def _attention_forward(p, prefix, x, cfg):
    """Single-head self-attention over the H*W pixels with C channels, plus the residual."""
    B, C, H, W = x.shape
    tokens = _group_norm(p, f"{prefix}.group_norm", x, cfg).reshape(B, C, H * W).transpose(1, 2)  # (B, T, C)

    def linear(part, t):
        return t @ p[f"{prefix}.{part}.weight"].T + p[f"{prefix}.{part}.bias"]

    q, k, v = linear("to_q", tokens), linear("to_k", tokens), linear("to_v", tokens)
    weights = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(C), dim=-1)
    out = linear("to_out.0", weights @ v)  # (B, T, C)
    return x + out.transpose(1, 2).reshape(B, C, H, W)


def _mid_forward(p, prefix, x, cfg):
    x = _resnet_forward(p, f"{prefix}.resnets.0", x, cfg)
    x = _attention_forward(p, f"{prefix}.attentions.0", x, cfg)
    return _resnet_forward(p, f"{prefix}.resnets.1", x, cfg)


def encode(p, cfg, images):
    """images (B, C, H, W) -> posterior mean and clamped logvar (B, latent, H/f, W/f)."""
    h = _conv2d(p, "encoder.conv_in", images, padding=1)
    for i in range(cfg.levels):
        for j in range(cfg.layers):
            h = _resnet_forward(p, f"encoder.down_blocks.{i}.resnets.{j}", h, cfg)
        if i < cfg.levels - 1:  # asymmetric padding: one column on the right, one row at the bottom
            h = _conv2d(p, f"encoder.down_blocks.{i}.downsamplers.0.conv", F.pad(h, (0, 1, 0, 1)), stride=2)
    h = _mid_forward(p, "encoder.mid_block", h, cfg)
    h = _conv2d(p, "encoder.conv_out", F.silu(_group_norm(p, "encoder.conv_norm_out", h, cfg)), padding=1)
    moments = _conv2d(p, "quant_conv", h)
    mean, logvar = moments.chunk(2, dim=1)
    return mean, logvar.clamp(LOGVAR_MIN, LOGVAR_MAX)


def decode(p, cfg, latents):
    """latents (B, latent, h, w), already divided by the scale factor -> images (B, C, f h, f w)."""
    h = _conv2d(p, "decoder.conv_in", _conv2d(p, "post_quant_conv", latents), padding=1)
    h = _mid_forward(p, "decoder.mid_block", h, cfg)
    for u in range(cfg.levels):
        for j in range(cfg.layers + 1):
            h = _resnet_forward(p, f"decoder.up_blocks.{u}.resnets.{j}", h, cfg)
        if u < cfg.levels - 1:
            h = _conv2d(p, f"decoder.up_blocks.{u}.upsamplers.0.conv", F.interpolate(h, scale_factor=2.0,
                                                                                     mode="nearest"), padding=1)
    return _conv2d(p, "decoder.conv_out", F.silu(_group_norm(p, "decoder.conv_norm_out", h, cfg)), padding=1)
