"""Checks of the Python reference itself; needs no C code.

Each check compares the reference with something it does not share code with: the numbers of docs/algorithm.md,
closed forms, element-by-element formulas or PyTorch's own modules. Prints PASS/FAIL lines and
exits non-zero on any failure.
"""
import contextlib
import dataclasses
import io
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
    check(worst < 5e-5, "schedule_alphas_cumprod", f"worst rel {worst:.1g} vs docs/algorithm.md 2.1")


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
    spec = {  # docs/algorithm.md 1.2: totals for patch 2 / 4 / 8 and trainable at patch 2
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


# ----------------------------------------------------------------------------------------------
# DyDiT


def dydit_model(seed=0, router_input=None, depth=2, dtype=torch.float64):
    """A small DyDiT (H = 3, N = 16, M = 192, token-router hidden 3) with random weights."""
    cfg = dit_ref.DitConfig(depth=depth, hidden=48, heads=3, patch=2, in_channels=3, input_size=8, num_classes=5,
                            dynamic=True, router_input=router_input)
    weights = make_case.random_weights(cfg, np.random.default_rng(seed))
    return cfg, weights


def set_router_biases(cfg, weights, attn=None, mlp=None, token=None):
    """Overwrites router biases (in place): attn/mlp a list of H-1 values, token one value."""
    for i in range(cfg.depth):
        b = f"blocks.{i}."
        if attn is not None:
            weights[b + "attn_rate.router.bias"] = np.asarray(attn, np.float32)
        if mlp is not None:
            weights[b + "mlp_rate.router.bias"] = np.asarray(mlp, np.float32)
        if token is not None:
            weights[b + "token_selection.mlp_head.2.bias"] = np.asarray([token], np.float32)


def without_routers(weights):
    return {k: v for k, v in weights.items() if not any(r in k for r in ("_rate.", "token_selection."))}


def edited_dit(cfg, weights, head, chan, drop_mlp=False):
    """A plain DiT whose weights do what fixed masks do: head (L, H) / chan (L, H) 0/1 per block.

    A head switched off = its hd columns of proj.weight zeroed (its channels never reach proj); a
    channel group off = its M/H rows of fc1 (weight and bias) zeroed, so GELU(0) = 0 feeds fc2;
    drop_mlp = fc2 weight and bias zeroed (every token skips the MLP branch, bias included). This
    places the masks without any of the DyDiT code.
    """
    edited = {k: v.copy() for k, v in without_routers(weights).items()}
    hd, gs = cfg.head_dim, cfg.mlp_hidden // cfg.heads
    for i in range(cfg.depth):
        b = f"blocks.{i}."
        for h in range(cfg.heads):
            if not head[i][h]:
                edited[b + "attn.proj.weight"][:, h * hd:(h + 1) * hd] = 0
            if not chan[i][h]:
                edited[b + "mlp.fc1.weight"][h * gs:(h + 1) * gs] = 0
                edited[b + "mlp.fc1.bias"][h * gs:(h + 1) * gs] = 0
        if drop_mlp:
            edited[b + "mlp.fc2.weight"][:] = 0
            edited[b + "mlp.fc2.bias"][:] = 0
    return dit_ref.DiT(dataclasses.replace(cfg, dynamic=False), edited)


def dydit_inputs(cfg, seed=1, gumbel=False):
    rng = np.random.default_rng(seed)
    forward_in, grad_in = make_case.make_inputs(cfg, 4, rng)
    if gumbel:
        B, L, H, N = 4, cfg.depth, cfg.heads, cfg.tokens
        for kind, shape in (("attn", (B, L, H - 1)), ("mlp", (B, L, H - 1)), ("token", (B, L, N))):
            grad_in["gumbel_" + kind] = rng.logistic(size=shape).astype(np.float32)
    grad_in["y_complete"] = (grad_in["y"] + 1) % cfg.label_rows
    return forward_in, grad_in


def tensors(inputs):
    return (torch.from_numpy(inputs["x"]).double(), torch.from_numpy(inputs["t"]), torch.from_numpy(inputs["y"]))


def check_straight_through():
    """Value exactly 1[z + g > 0]; gradient exactly the closed form soft (1 - soft) / tau * dmask."""
    rng = np.random.default_rng(2)
    z = rng.normal(0, 3, (5, 7))
    z[0, :3] = [0.0, 1e-300, -1e-300]  # the strict threshold
    worst, values_ok = 0.0, True
    for g, tau in ((None, 5.0), (rng.logistic(size=z.shape), 3.0), (rng.logistic(size=z.shape), 0.7)):
        zt = torch.tensor(z, requires_grad=True)
        mask = dit_ref.straight_through_gate(zt, None if g is None else torch.tensor(g), tau)
        dmask = rng.standard_normal(z.shape)
        mask.backward(torch.tensor(dmask))
        zg = z if g is None else z + g
        soft = 1.0 / (1.0 + np.exp(-zg / tau))
        values_ok &= np.array_equal(mask.detach().numpy(), (zg > 0).astype(np.float64))
        worst = max(worst, max_abs(zt.grad.numpy(), soft * (1 - soft) / tau * dmask) / np.abs(dmask).max())
    check(values_ok, "st_gate_value", "exactly 1[z + g > 0], 1[0] = 0")
    check(worst < 1e-15, "st_gate_gradient", f"soft (1 - soft) / tau * dmask, max abs {worst:.1g}")


def check_saturated_routers():
    """Every router saturated on: the dynamic path is the complete path, F = 1, and the grad
    interface gives the plain DiT's loss and gradients (the ST gradients vanish)."""
    cfg, weights = dydit_model(seed=3)
    set_router_biases(cfg, weights, attn=[1e4, 1e4], mlp=[1e4, 1e4], token=1e4)
    forward_in, grad_in = dydit_inputs(cfg, seed=4, gumbel=True)
    model = dit_ref.DyDiT(cfg, weights)
    with torch.no_grad():
        res = model.run(*tensors(forward_in))
        full = model.forward(*tensors(forward_in))
    all_on = all(bool((m == 1).all()) for m in (res.head, res.chan, res.token))
    ratio = model.flops_ratio(res)
    check(all_on and torch.equal(res.out, full) and bool((ratio == 1).all()), "dydit_saturated_on",
          f"dynamic == complete bit for bit, F = {ratio.tolist()}")
    dy = dit_ref.run_grad(model, grad_in, stage=2, target=1.0)
    plain = dit_ref.run_grad(dit_ref.DiT(cfg, without_routers(weights)), grad_in)
    worst = max(max_abs(dy[k], v) / max(np.abs(v).max(), 1e-30) for k, v in plain.items())
    router_grads = max(np.abs(v).max() for k, v in dy.items() if "_rate." in k or "token_selection." in k)
    check(worst < 1e-6 and dy["flops_loss"] == 0 and router_grads < 1e-30, "dydit_saturated_grad",
          f"DiT loss and gradients (rel {worst:.1g}), flops_loss 0, router grads {router_grads:.1g}")


def check_forced_column():
    """Routed output 0 says off: head/group 1 is off, head/group 0 (no logit) stays on, and the
    output equals a DiT with head 1's proj columns and group 1's fc1 rows zeroed; all routed off
    leaves index 0; tokens off drop the whole MLP branch, fc2 bias included."""
    cfg, weights = dydit_model(seed=5)
    forward_in, _ = dydit_inputs(cfg, seed=6)
    x, t, y = tensors(forward_in)
    cases = {  # name: (attn bias, mlp bias, token bias) -> expected head and chan masks, MLP dropped
        "first_routed_off": ([-1e4, 1e4], [-1e4, 1e4], 1e4, [1, 0, 1], [1, 0, 1], False),
        "all_routed_off": ([-1e4, -1e4], [-1e4, -1e4], 1e4, [1, 0, 0], [1, 0, 0], False),
        "heads_off_tokens_off": ([-1e4, -1e4], [1e4, -1e4], -1e4, [1, 0, 0], [1, 1, 0], True),
    }
    for name, (attn, mlp, token, head, chan, drop) in cases.items():
        set_router_biases(cfg, weights, attn, mlp, token)
        with torch.no_grad():
            res = dit_ref.DyDiT(cfg, weights).run(x, t, y)
            want = edited_dit(cfg, weights, [head] * cfg.depth, [chan] * cfg.depth, drop).forward(x, t, y)
        masks_ok = (res.head.tolist() == [[head] * cfg.depth] * 4 and res.chan.tolist() == [[chan] * cfg.depth] * 4
                    and bool((res.token == (0 if drop else 1)).all()))
        err = (res.out - want).abs().max().item()
        check(masks_ok and err < 1e-12, f"dydit_column0_{name}", f"masks {head}/{chan}, out vs edited DiT {err:.1g}")


def check_mixed_masks_placement():
    """Random routers: every sample's output equals a DiT with that sample's head/group masks
    written into its weights (tokens all on), so heads and groups sit where docs/algorithm.md 3.5 puts them."""
    cfg, weights = dydit_model(seed=7)
    set_router_biases(cfg, weights, token=1e4)
    forward_in, _ = dydit_inputs(cfg, seed=8)
    x, t, y = tensors(forward_in)
    model = dit_ref.DyDiT(cfg, weights)
    worst, patterns = 0.0, set()
    with torch.no_grad():
        res = model.run(x, t, y)
        for b in range(x.shape[0]):
            head, chan = res.head[b].int().tolist(), res.chan[b].int().tolist()
            patterns.add(str((head, chan)))
            want = edited_dit(cfg, weights, head, chan).forward(x[b:b + 1], t[b:b + 1], y[b:b + 1])
            worst = max(worst, (res.out[b:b + 1] - want).abs().max().item())
    mixed = 0 < res.head[:, :, 1:].mean().item() < 1 and 0 < res.chan[:, :, 1:].mean().item() < 1
    check(worst < 1e-12 and mixed, "dydit_mask_placement",
          f"{len(patterns)} mask patterns over 4 samples, out vs per-sample edited DiT {worst:.1g}")


def check_flops_ratio():
    """F of hand-set masks against a direct count of the active multiply-adds; ATTN/MLP against
    docs/algorithm.md 1.2."""
    spec = {(1152, 256): (1.509949440e9, 2.717908992e9), (384, 256): (0.201326592e9, 0.301989888e9),
            (1024, 64): (0.276824064e9, 0.536870912e9)}
    table_ok = all(dit_ref.block_macs(dit_ref.DitConfig(1, D, 16, 32 // math.isqrt(N), 4, 32, 10)) == want
                   for (D, N), want in spec.items())
    cfg = dit_ref.DitConfig(depth=3, hidden=40, heads=5, patch=1, in_channels=2, input_size=5, num_classes=3,
                            mlp_ratio=2.5, dynamic=True)
    D, N, H, M, L, hd = cfg.hidden, cfg.tokens, cfg.heads, cfg.mlp_hidden, cfg.depth, cfg.head_dim
    rng = np.random.default_rng(9)
    head = rng.integers(0, 2, (2, L, H)).astype(np.float64)
    chan = rng.integers(0, 2, (2, L, H)).astype(np.float64)
    token = rng.integers(0, 2, (2, L, N)).astype(np.float64)
    head[..., 0] = chan[..., 0] = 1
    head[1, 2, :] = 1  # one block with every head, one with every token dropped
    token[1, 1, :] = 0
    full = L * (3 * N * D * D + N * N * D + N * N * D + N * D * D + N * D * M + N * M * D)
    direct = []
    for b in range(2):
        macs = 0
        for l in range(L):
            heads, groups, kept = head[b, l].sum(), chan[b, l].sum(), token[b, l].sum()
            macs += heads * (3 * N * D * hd + N * N * hd + N * N * hd + N * hd * D)  # qkv, q k^T, a v, proj
            macs += kept * groups * (D * (M // H) + (M // H) * D)  # fc1, fc2 of the kept tokens
        direct.append(macs / full)
    got = dit_ref.flops_ratio(cfg, *(torch.from_numpy(m) for m in (head, chan, token))).numpy()
    err = max_abs(got, direct)
    check(table_ok and err < 1e-15, "dydit_flops_ratio", f"F {np.round(got, 4).tolist()} vs direct count, {err:.1g}")


def check_complete_path():
    """The complete path is the plain DiT on the same weights minus the routers; stage 1 adds
    exactly its losses on the same x_t with y_complete."""
    cfg, weights = dydit_model(seed=10, router_input="condition")
    forward_in, grad_in = dydit_inputs(cfg, seed=11, gumbel=True)
    x, t, y = tensors(forward_in)
    model, plain = dit_ref.DyDiT(cfg, weights), dit_ref.DiT(cfg, without_routers(weights))
    with torch.no_grad():
        same = torch.equal(model.forward(x, t, y), plain.forward(x, t, y))
        same &= torch.equal(model.run(x, t, y, apply=False).out, plain.forward(x, t, y))
    check(same, "dydit_complete_is_dit", "forward and run(apply=False) equal the DiT bit for bit")
    s1 = dit_ref.run_grad(model, grad_in, stage=1, target=0.3)
    s2 = dit_ref.run_grad(model, grad_in, stage=2, target=0.3)
    ref = dit_ref.run_grad(plain, {**grad_in, "y": grad_in["y_complete"]})
    gap = max(abs(s1["complete_mse"] - ref["mse"]), abs(s1["complete_vb"] - ref["vb"]),
              abs(s1["loss"] - s2["loss"] - ref["loss"]))
    grads = max(max_abs(s1[k] - s2[k], v) / np.abs(v).max() for k, v in ref.items() if k.startswith("grad."))
    check(gap < 1e-6 and grads < 1e-5, "dydit_stage1_adds_complete",
          f"losses {gap:.1g}, gradients stage1 - stage2 vs DiT rel {grads:.1g}")


def check_router_inputs():
    """timestep routers read E_t alone (labels do not move the width masks); condition routers read E_t + E_y."""
    results = {}
    for router_input in ("timestep", "condition"):
        cfg, weights = dydit_model(seed=12, router_input=router_input)
        model = dit_ref.DyDiT(cfg, weights)
        t = torch.tensor([500, 500, 500, 500])
        y = torch.tensor([0, 1, 2, 3])
        r_in, c = model.router_input(t, y)
        e_t = model.embed_timesteps(t)
        results[router_input] = bool(torch.equal(r_in, e_t if router_input == "timestep" else c))
    check(all(results.values()), "dydit_router_input", str(results))


def check_dydit_loading(tmp):
    """Router tensors make a DyDiT; without metadata the head count comes from the routers;
    router_input round-trips through the metadata."""
    cfg, weights = dydit_model(seed=13, router_input="condition")
    path = os.path.join(tmp, "dydit.safetensors")
    safetensors_np.save(path, weights, cfg.metadata())
    with_meta = dit_ref.load_model(path)
    safetensors_np.save(path, weights)
    bare = dit_ref.load_model(path)
    ok = (isinstance(with_meta, dit_ref.DyDiT) and with_meta.cfg.width_router_input == "condition"
          and isinstance(bare, dit_ref.DyDiT) and bare.cfg.heads == 3 and bare.cfg.width_router_input == "timestep"
          and cfg.token_router_hidden == 3
          and dit_ref.DitConfig(1, 40, 5, 1, 2, 5, 3, dynamic=True).token_router_hidden == 2
          and dit_ref.DitConfig(1, 8, 2, 1, 2, 4, 3, dynamic=True).token_router_hidden == 1)
    check(ok, "dydit_loading", "DyDiT from router tensors, heads from routers, router_input metadata, R = max(1, D/16)")


def check_case_margins(tmp):
    """A generated noisy stage-1 case: every decision clears its margin in the files as written, and
    every mask kind is mixed."""
    out = os.path.join(tmp, "case")
    with contextlib.redirect_stdout(io.StringIO()):
        make_case.main(["--out", out, "--seed", "7", "--dydit", "--gumbel", "--y-complete",
                        "--grad-flags=--stage 1 --target 0.8"])
    weights, _ = safetensors_np.load(os.path.join(out, "weights.safetensors"))
    model = dit_ref.load_model(os.path.join(out, "weights.safetensors"))
    forward_in, _ = safetensors_np.load(os.path.join(out, "forward_in.safetensors"))
    grad_in, _ = safetensors_np.load(os.path.join(out, "grad_in.safetensors"))
    gumbel = {k: grad_in["gumbel_" + k] for k in dit_ref.DyDiT.KINDS}
    streams = make_case.decision_streams(forward_in, grad_in, make_case.command_args("forward", ""), gumbel)
    traces = make_case.trace_logits(model.cfg, weights, streams)
    worst = np.inf
    for key in traces[0]:
        margin = make_case.margin_of(traces, *key)
        for z, g in (tr[key] for tr in traces):
            worst = min(worst, np.abs(z if g is None else z + g).min() / margin)
    _, problems = make_case.mask_summary(model.cfg, weights, streams, 0.8)
    check(worst >= 1.0 and not problems, "dydit_case_margins",
          f"min |z + g| / margin = {worst:.3g} over all decisions and ReLU inputs; {problems or 'masks mixed'}")


def check_margin_tools():
    """make_case's margin repairs: a bias shift clears logits sitting on the threshold; noise that
    cancels its logit exactly (z + g = 0) is moved clear of it, keeping the decision."""
    values = np.array([0.0, 1e-5, -2e-5, 4e-4, 0.5, -0.7])
    d = make_case.clearing_shift(values, 1e-3)
    shift_ok = np.abs(values + d).min() >= 1e-3 and abs(d) < 3e-3

    cfg, weights = dydit_model(seed=14)
    forward_in, grad_in = dydit_inputs(cfg, seed=15, gumbel=True)
    gumbel = {k: grad_in["gumbel_" + k] for k in dit_ref.DyDiT.KINDS}
    streams = make_case.decision_streams(forward_in, grad_in, make_case.command_args("forward", ""), gumbel)
    for kind in dit_ref.DyDiT.KINDS:  # the first sample's block-0 decisions onto the threshold, in order
        z = make_case.trace_logits(cfg, weights, streams)[1][(kind, 0)][0]
        gumbel[kind][0, 0] = -z[0].astype(np.float32)
    before = make_case.trace_logits(cfg, weights, streams)[1]
    moved = make_case.clear_noise(cfg, weights, streams)
    traces = make_case.trace_logits(cfg, weights, streams)
    after = traces[1]
    worst, same_side = np.inf, True
    for key, (z, g) in after.items():
        if g is None:
            continue
        margin = make_case.margin_of(traces, *key)
        worst = min(worst, np.abs(z + g).min() / margin)
        same_side &= np.array_equal(z + g > 0, before[key][0] + before[key][1] >= 0)
    check(shift_ok and moved > 0 and worst >= 1.0 and same_side, "dydit_margin_repair",
          f"bias shift {d:.2g}; {moved} noise values moved, min |z + g| / margin {worst:.3g}, decisions kept")


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
    check_straight_through()
    check_saturated_routers()
    check_forced_column()
    check_mixed_masks_placement()
    check_flops_ratio()
    check_complete_path()
    check_router_inputs()
    check_margin_tools()
    with tempfile.TemporaryDirectory() as tmp:
        check_dydit_loading(tmp)
        check_case_margins(tmp)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
