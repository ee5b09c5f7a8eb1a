"""Loads an exported .pt the way the official code does and runs the reference forward on it.

    python3 official_load.py PT WEIGHTS INPUTS OUT

The modules below have the layout of the official DiT (facebookresearch/DiT, models.py) and of
DyDiT's blocks, written from docs/algorithm.md 7.1-7.2: torch layers nested as there, so that
their state_dict() names and shapes arise from the module tree (pos_embed a frozen Parameter, the
LayerNorms without parameters), not from a list of names. They have no forward of their own.
`load_state_dict(torch.load(PT), strict=True)` must accept the file: any missing, extra or
misshapen tensor fails it. The loaded state dict then goes through dit_ref's forward (float64),
written to OUT like `dydit forward`'s output. WEIGHTS (the dydit file PT was exported from) gives
the configuration, which a state dict does not hold.
"""
import dataclasses
import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dit_ref  # noqa: E402
import safetensors_np  # noqa: E402


class PatchEmbed(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.proj = nn.Conv2d(cfg.in_channels, cfg.hidden, cfg.patch, stride=cfg.patch)


class TimestepEmbedder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(cfg.frequency_size, cfg.hidden), nn.SiLU(),
                                 nn.Linear(cfg.hidden, cfg.hidden))


class LabelEmbedder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embedding_table = nn.Embedding(cfg.label_rows, cfg.hidden)


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.qkv = nn.Linear(cfg.hidden, 3 * cfg.hidden)
        self.proj = nn.Linear(cfg.hidden, cfg.hidden)


class Mlp(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.fc1 = nn.Linear(cfg.hidden, cfg.mlp_hidden)
        self.act = nn.GELU(approximate="tanh")
        self.fc2 = nn.Linear(cfg.mlp_hidden, cfg.hidden)


class WidthRouter(nn.Module):
    """DyDiT's attn_rate / mlp_rate: one logit per routed head or channel group."""

    def __init__(self, cfg):
        super().__init__()
        self.router = nn.Linear(cfg.hidden, cfg.heads - 1)


class TokenSelection(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        R = cfg.token_router_hidden
        self.mlp_head = nn.Sequential(nn.Linear(cfg.hidden, R), nn.GELU(), nn.Linear(R, 1))


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.hidden, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(cfg)
        self.norm2 = nn.LayerNorm(cfg.hidden, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(cfg)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(cfg.hidden, 6 * cfg.hidden))
        if cfg.dynamic:
            self.attn_rate = WidthRouter(cfg)
            self.mlp_rate = WidthRouter(cfg)
            self.token_selection = TokenSelection(cfg)


class FinalLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.norm_final = nn.LayerNorm(cfg.hidden, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(cfg.hidden, cfg.patch * cfg.patch * cfg.out_channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(cfg.hidden, 2 * cfg.hidden))


class OfficialLayout(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.x_embedder = PatchEmbed(cfg)
        self.t_embedder = TimestepEmbedder(cfg)
        self.y_embedder = LabelEmbedder(cfg)
        self.pos_embed = nn.Parameter(torch.zeros(1, cfg.tokens, cfg.hidden), requires_grad=False)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.depth)])
        self.final_layer = FinalLayer(cfg)


def main(pt, weights, inputs_path, out):
    _, meta = safetensors_np.load(weights)
    state = torch.load(pt)
    cfg = dataclasses.replace(dit_ref.DitConfig.from_metadata(meta),
                              dynamic=dit_ref.ROUTER_PROBE in state).validate()
    module = OfficialLayout(cfg)
    module.load_state_dict(state, strict=True)
    loaded = {name: value.detach().numpy() for name, value in module.state_dict().items()}
    model = dit_ref.make_model(cfg, loaded)
    inputs, _ = safetensors_np.load(inputs_path)
    safetensors_np.save(out, dit_ref.run_forward(model, inputs))
    print(f"load_state_dict(strict=True): {len(state)} tensors into the official layout "
          f"({'DyDiT' if cfg.dynamic else 'DiT'}, depth {cfg.depth})")


if __name__ == "__main__":
    main(*sys.argv[1:])
