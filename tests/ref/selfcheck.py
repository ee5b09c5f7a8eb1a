"""Checks of the Python reference itself; needs no C code.

Each check compares the reference with something it does not share code with: SPEC numbers,
closed forms, element-by-element formulas or PyTorch's own modules. Prints PASS/FAIL lines and
exits non-zero on any failure.
"""
import json
import math
import os
import struct
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dit_ref  # noqa: E402
import make_case  # noqa: E402
import safetensors_np  # noqa: E402

failures = 0


def check(ok, name, detail=""):
    global failures
    if ok:
        print(f"PASS parity.ref.{name}" + (f" ({detail})" if detail else ""))
    else:
        print(f"FAIL parity.ref.{name}: {detail}")
        failures += 1


def max_abs(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def check_safetensors(tmp):
    tensors = {
        "f32": np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2],
        "scalar": np.float32(-2.5),
        "f64": np.array([1.0 / 3.0]),
        "i64": np.array([-(2 ** 40), 7], dtype=np.int64),
        "i32": np.array([[1, -2]], dtype=np.int32),
        "u8": np.array([0, 255, 3], dtype=np.uint8),
        "empty": np.zeros((0, 5), dtype=np.float32),
    }
    path = os.path.join(tmp, "roundtrip.safetensors")
    safetensors_np.save(path, tensors, {"format": "x", "depth": 3})
    back, meta = safetensors_np.load(path)
    same = all(back[k].dtype == np.asarray(v).dtype and back[k].shape == np.shape(v) and np.array_equal(back[k], v)
               for k, v in tensors.items())
    check(same and meta == {"format": "x", "depth": "3"}, "safetensors_roundtrip", "values, dtypes, shapes, metadata")

    blob = open(path, "rb").read()
    (n,) = struct.unpack("<Q", blob[:8])
    header_ok = (8 + n) % 8 == 0 and blob[8:9] == b"{"
    itemsize = {"F64": 8, "I64": 8, "F32": 4, "I32": 4, "U8": 1}
    aligned = all((8 + n + e["data_offsets"][0]) % itemsize[e["dtype"]] == 0
                  for k, e in json.loads(blob[8:8 + n]).items() if k != "__metadata__")
    check(header_ok and aligned, "safetensors_layout", "8+N multiple of 8, tensors aligned")

    half = torch.tensor([1.0, -2.5, 3.140625, 65504.0])
    raw = half.to(torch.bfloat16).view(torch.int16).numpy().tobytes() + half.to(torch.float16).numpy().tobytes()
    header = (b'{"b":{"dtype":"BF16","shape":[4],"data_offsets":[0,8]},'
              b'"h":{"dtype":"F16","shape":[2,2],"data_offsets":[8,16]}}')
    path = os.path.join(tmp, "half.safetensors")
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header + raw)
    back, _ = safetensors_np.load(path)
    check(back["b"].dtype == np.float32 and np.array_equal(back["b"], half.to(torch.bfloat16).float().numpy())
          and np.array_equal(back["h"].ravel(), half.numpy()), "safetensors_half", "BF16 and F16 widen to F32")

    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header + raw + b"\0\0")
    try:
        safetensors_np.load(path)
        check(False, "safetensors_rejects_trailing", "a buffer with unowned bytes was accepted")
    except safetensors_np.SafetensorsError:
        check(True, "safetensors_rejects_trailing")


def check_schedule():
    abar = dit_ref.Diffusion().alphas_cumprod
    spec = {0: 0.99990, 249: 0.524085, 499: 0.078587, 749: 0.0033506, 999: 4.0358e-5}
    worst = max(abs(abar[t] - v) / v for t, v in spec.items())
    check(worst < 5e-5, "schedule_alphas_cumprod", f"worst rel {worst:.1g} vs SPEC 2.1")


def check_pos_embed_xl2():
    """Element by element: channel ch < D/2 encodes the column, sin in the first quarter of each half."""
    D, g = 1152, 16
    n, ch = np.meshgrid(np.arange(g * g), np.arange(D), indexing="ij")
    quarter = D // 4
    pos = np.where(ch < D // 2, n % g, n // g).astype(np.float64)
    k = ch % quarter
    angle = pos * np.power(10000.0, -k / quarter)
    expected = np.where(ch % (D // 2) < quarter, np.sin(angle), np.cos(angle))
    err = max_abs(dit_ref.sincos_pos_embed(D, g), expected)
    check(err < 1e-12, "pos_embed_xl2", f"max abs {err:.1g}")


def check_param_counts():
    spec = {  # SPEC 1.2: totals for patch 2 / 4 / 8 and trainable at patch 2
        (12, 384, 6): (32963360, 32945024, 33148160, 32865056),
        (12, 768, 12): (130512416, 130475648, 130881536, 130315808),
        (24, 1024, 16): (458102816, 458053760, 458594816, 457840672),
        (28, 1152, 16): (675129632, 675074432, 675683072, 674834720),
    }
    bad = []
    for (depth, hidden, heads), want in spec.items():
        for patch, total in zip((2, 4, 8), want[:3]):
            cfg = dit_ref.DitConfig(depth, hidden, heads, patch, in_channels=4, input_size=32, num_classes=1000)
            if dit_ref.parameter_count(cfg) != total:
                bad.append(f"D{hidden}/{patch}: {dit_ref.parameter_count(cfg)} != {total}")
        cfg = dit_ref.DitConfig(depth, hidden, heads, 2, in_channels=4, input_size=32, num_classes=1000)
        if dit_ref.parameter_count(cfg) - cfg.tokens * hidden != want[3]:
            bad.append(f"D{hidden}/2 trainable")
    xl2 = dit_ref.parameter_count(dit_ref.DitConfig(28, 1152, 16, 2, 4, 32, 1000))
    check(xl2 == 675129632, "param_count_xl2", f"{xl2:,}")
    check(not bad, "param_counts_spec_table", "; ".join(bad) if bad else "S/B/L/XL x p 2/4/8")


def check_timestep_frequencies():
    t = torch.tensor([0, 1, 999])
    got = dit_ref.timestep_frequencies(t, 256, torch.float64).numpy()
    k = np.arange(128)
    f = np.exp(-math.log(10000.0) * k / 128)
    want = np.concatenate([np.cos(t.numpy()[:, None] * f), np.sin(t.numpy()[:, None] * f)], axis=1)
    # float32 phases t * f (t <= 999) are off by up to ~1e-4; a sin/cos swap or /127 is off by O(1)
    check(max_abs(got, want) < 3e-4, "timestep_frequencies", "cos first, exp(-ln(1e4) k/128), float32 phases")


def small_model(learn_sigma=True, seed=0):
    cfg = dit_ref.DitConfig(depth=1, hidden=16, heads=4, patch=2, in_channels=2, input_size=4, num_classes=3,
                            learn_sigma=learn_sigma)
    return cfg, make_case.random_weights(cfg, np.random.default_rng(seed))


def check_modules_against_torch():
    """Attention/LayerNorm against torch.nn modules, which define the packed [q; k; v] layout independently."""
    cfg, weights = small_model()
    model = dit_ref.DiT(cfg, weights)
    x = torch.randn(2, cfg.tokens, cfg.hidden, dtype=torch.float64)
    mha = torch.nn.MultiheadAttention(cfg.hidden, cfg.heads, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        mha.in_proj_weight.copy_(model.params["blocks.0.attn.qkv.weight"])
        mha.in_proj_bias.copy_(model.params["blocks.0.attn.qkv.bias"])
        mha.out_proj.weight.copy_(model.params["blocks.0.attn.proj.weight"])
        mha.out_proj.bias.copy_(model.params["blocks.0.attn.proj.bias"])
        err = (model.attention(x, "blocks.0.") - mha(x, x, x, need_weights=False)[0]).abs().max().item()
        ln = torch.nn.LayerNorm(cfg.hidden, eps=1e-6, elementwise_affine=False, dtype=torch.float64)
        err_ln = (dit_ref.layer_norm(x) - ln(x)).abs().max().item()
    check(err < 1e-12, "attention_vs_torch_mha", f"max abs {err:.1g}")
    check(err_ln < 1e-12, "layernorm_vs_torch", f"max abs {err_ln:.1g}")


def check_patch_layout():
    """Patch embedding reads patches in (c, py, px) order; unpatchify writes tokens in (py, px, c) order."""
    cfg, weights = small_model()
    model = dit_ref.DiT(cfg, weights)
    p, g, C, D = cfg.patch, cfg.grid, cfg.in_channels, cfg.hidden
    x = torch.randn(1, C, cfg.input_size, cfg.input_size, dtype=torch.float64)
    w = model.params["x_embedder.proj.weight"].reshape(D, C * p * p)
    with torch.no_grad():
        emb = model.embed_patches(x)[0] - model.params["pos_embed"][0]
        tokens = torch.randn(1, cfg.tokens, p * p * cfg.out_channels, dtype=torch.float64)
        img = model.unpatchify(tokens)[0]
    err_in = err_out = 0.0
    for n in range(cfg.tokens):
        row, col = divmod(n, g)
        patch = x[0, :, row * p:(row + 1) * p, col * p:(col + 1) * p].reshape(-1)  # (c, py, px)
        err_in = max(err_in, (w @ patch + model.params["x_embedder.proj.bias"] - emb[n]).abs().max().item())
        for py in range(p):
            for px in range(p):
                for c in range(cfg.out_channels):
                    got = img[c, row * p + py, col * p + px]
                    err_out = max(err_out, abs(got.item() - tokens[0, n, (py * p + px) * cfg.out_channels + c].item()))
    check(err_in < 1e-12 and err_out == 0.0, "patch_layout",
          f"embed (c,py,px) max abs {err_in:.1g}, unpatchify (py,px,c) max abs {err_out:.1g}")


def check_loss_pieces():
    x = torch.linspace(-1, 1, 256, dtype=torch.float64)  # the 256 bin centres
    mean, log_scale = torch.tensor(0.1, dtype=torch.float64), torch.tensor(math.log(0.3), dtype=torch.float64)
    total = dit_ref.discretized_gaussian_log_likelihood(x, mean, log_scale).exp().sum().item()
    check(abs(total - 1.0) < 1e-12, "decoder_bins_sum_to_one", f"sum {total:.15f}")

    m1, m2 = torch.randn(50, dtype=torch.float64), torch.randn(50, dtype=torch.float64)
    v1, v2 = torch.randn(50, dtype=torch.float64), torch.randn(50, dtype=torch.float64)
    want = torch.distributions.kl_divergence(torch.distributions.Normal(m1, (0.5 * v1).exp()),
                                             torch.distributions.Normal(m2, (0.5 * v2).exp()))
    err = (dit_ref.gaussian_kl(m1, v1, m2, v2) - want).abs().max().item()
    check(err < 1e-12, "gaussian_kl", f"max abs {err:.1g}")


def check_frozen_mean():
    """Without learned sigma the loss is the MSE; with it, the VB term must not move eps_hat's gradient."""
    diffusion = dit_ref.Diffusion()
    cfg, weights = small_model(learn_sigma=True)
    rng = np.random.default_rng(1)
    _, grad_in = make_case.make_inputs(cfg, 4, rng)
    model = dit_ref.DiT(cfg, weights)
    full = dit_ref.run_grad(model, grad_in, diffusion)
    w = model.params["final_layer.linear.weight"]
    w_eps_rows = [r for r in range(w.shape[0]) if r % cfg.out_channels < cfg.in_channels]
    model_mse = dit_ref.DiT(cfg, weights)
    x0, noise = torch.from_numpy(grad_in["x0"]).double(), torch.from_numpy(grad_in["noise"]).double()
    t, y = torch.from_numpy(grad_in["t"]), torch.from_numpy(grad_in["y"])
    out = model_mse.forward(diffusion.q_sample(x0, noise, t), t, y)
    F.mse_loss(out[:, :cfg.in_channels], noise).backward()
    g_mse = model_mse.params["final_layer.linear.weight"].grad.numpy()[w_eps_rows]
    err = max_abs(full["grad.final_layer.linear.weight"][w_eps_rows], g_mse) / np.abs(g_mse).max()
    check(err < 1e-6, "vb_frozen_mean", f"eps rows of the final linear get only the MSE gradient (rel {err:.1g})")


def check_float32_agrees():
    """The float32 mode tracks float64 closely: the budget a float32 implementation is held to."""
    cfg = dit_ref.DitConfig(depth=2, hidden=32, heads=2, patch=2, in_channels=3, input_size=6, num_classes=4)
    rng = np.random.default_rng(5)
    weights = make_case.random_weights(cfg, rng)
    forward_in, grad_in = make_case.make_inputs(cfg, 4, rng)
    make_case.settle_decoder_noise(dit_ref.DiT(cfg, weights), grad_in, rng)
    results = {}
    for name, dtype in dit_ref.DTYPES.items():
        model = dit_ref.DiT(cfg, weights, dtype)
        results[name] = {**dit_ref.run_forward(model, forward_in), **dit_ref.run_grad(model, grad_in)}
    ref, low = results["float64"], results["float32"]
    worst = max((np.linalg.norm(low[k] - ref[k].astype(np.float64)) / max(np.linalg.norm(ref[k]), 1e-12), k)
                for k in ref)
    check(worst[0] < 3e-5, "float32_vs_float64", f"worst {worst[1]} rel {worst[0]:.1g}")


def main():
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        check_safetensors(tmp)
    check_schedule()
    check_pos_embed_xl2()
    check_param_counts()
    check_timestep_frequencies()
    check_modules_against_torch()
    check_patch_layout()
    check_loss_pieces()
    check_frozen_mean()
    check_float32_agrees()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
