#!/usr/bin/env bash
# Tests tools/convert_checkpoint.py on tiny .pt files made here with torch.save: plain state dicts
# (zip and legacy format, DDP-prefixed), training checkpoints {model, ema, opt, args}, files that
# are no checkpoint, and pickles whose globals would run a shell command. Converted tensors must
# match the originals byte for byte, with unchanged names; hostile files must be refused without
# their command ever running.
# Usage, from the repository root: bash tests/convert_checkpoint.sh WORKDIR [PYTHON]
set -u
work=${1:?usage: bash tests/convert_checkpoint.sh WORKDIR [PYTHON]}/convert_checkpoint
prefix=convert
source tests/lib.sh
python=${2:-/usr/bin/python3}
tool=tools/convert_checkpoint.py
rm -rf "$work"
mkdir -p "$work"

# ---- fixtures -----------------------------------------------------------------------------------
if ! "$python" - "$work" >"$work/fixtures.log" 2>&1 <<'EOF'; then
import argparse, collections, os, pickle, sys
import torch

work = sys.argv[1]


def state(seed):
    torch.manual_seed(seed)
    return collections.OrderedDict([
        ("pos_embed", torch.randn(1, 4, 8)),
        ("x_embedder.proj.weight", torch.randn(8, 4, 2, 2)),
        ("blocks.0.attn.qkv.weight", torch.randn(24, 8).half()),
        ("blocks.0.attn.qkv.bias", torch.randn(24).bfloat16()),
        ("y_embedder.embedding_table.weight", torch.randn(11, 8).double()),
        ("blocks.0.attn_rate.router.bias", torch.full((3,), 15.0)),
        ("blocks.0.mlp.fc1.weight", torch.randn(6, 4).t()),  # not contiguous
        ("final_layer.linear.bias", torch.nn.Parameter(torch.randn(5))),
        ("steps", torch.tensor(7, dtype=torch.int64)),  # 0-dim
        ("mask", torch.tensor([True, False, True])),
    ])


def optimizer_state():
    return {"state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.randn(4), "exp_avg_sq": torch.rand(4)}},
            "param_groups": [{"lr": 1e-4, "betas": (0.9, 0.999), "weight_decay": 0, "params": [0]}]}


def path(name):
    return os.path.join(work, name)


args = argparse.Namespace(model="DiT-XL/2", image_size=256, num_classes=1000, results_dir="results",
                          global_batch_size=256, token_ratio=0.5, tags={"a"})
torch.save(state(1), path("plain.pt"))
torch.save(state(2), path("legacy.pt"), _use_new_zipfile_serialization=False)
torch.save(collections.OrderedDict(("module." + k, v) for k, v in state(3).items()), path("ddp.pt"))
torch.save({"model": state(4), "ema": state(5), "opt": optimizer_state(), "args": args}, path("train.pt"))
torch.save({"model": state(6), "opt": optimizer_state()}, path("train_noema.pt"))
torch.save([1, 2, 3], path("list.pt"))
torch.save({"a": torch.zeros(2), "b": "text"}, path("mixed.pt"))
with open(path("garbage.pt"), "wb") as f:
    f.write(b"not a checkpoint at all")
torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), path("torchscript.pt"))


class Shell:
    """Unpickling this runs a shell command: the hostile payload."""
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.system, ("touch " + self.target,))


class Eval:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (eval, ("__import__('os').system('touch %s')" % self.target,))


marker = path("pwned")
torch.save({"w": Shell(marker)}, path("evil.pt"))
torch.save({"w": Shell(marker)}, path("evil_legacy.pt"), _use_new_zipfile_serialization=False)
torch.save({"model": {"w": torch.zeros(1)}, "args": Eval(marker)}, path("evil_eval.pt"))
with open(path("evil.pkl"), "wb") as f:
    pickle.dump({"w": Shell(marker)}, f, protocol=2)
class Overreach:
    """A tensor description that reaches past its 4-element storage."""
    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, (torch.zeros(4).storage(), 0, (1000,), (1,), False, collections.OrderedDict()))


torch.save({"w": Overreach()}, path("overreach.pt"))
with open(path("truncated.pt"), "wb") as f:
    f.write(open(path("plain.pt"), "rb").read()[:300])
# The same payload aimed elsewhere, to show that an unrestricted torch.load does run it.
torch.save({"w": Shell(path("control"))}, path("control.pt"))


def tiny_dit(seed, dtype):
    """Every tensor of a DiT with depth 2, hidden 32, patch 2, 4 channels, 8x8 latents, 10 classes."""
    torch.manual_seed(seed)
    D, p, C = 32, 2, 4
    shapes = [("pos_embed", (1, 16, D)), ("x_embedder.proj.weight", (D, C, p, p)), ("x_embedder.proj.bias", (D,)),
              ("t_embedder.mlp.0.weight", (D, 256)), ("t_embedder.mlp.0.bias", (D,)),
              ("t_embedder.mlp.2.weight", (D, D)), ("t_embedder.mlp.2.bias", (D,)),
              ("y_embedder.embedding_table.weight", (11, D))]
    for i in range(2):
        for kind, out, inp in (("attn.qkv", 3 * D, D), ("attn.proj", D, D), ("mlp.fc1", 4 * D, D), ("mlp.fc2", D, 4 * D),
                               ("adaLN_modulation.1", 6 * D, D)):
            shapes += [(f"blocks.{i}.{kind}.weight", (out, inp)), (f"blocks.{i}.{kind}.bias", (out,))]
    shapes += [("final_layer.adaLN_modulation.1.weight", (2 * D, D)), ("final_layer.adaLN_modulation.1.bias", (2 * D,)),
               ("final_layer.linear.weight", (p * p * 2 * C, D)), ("final_layer.linear.bias", (p * p * 2 * C,))]
    return collections.OrderedDict((name, torch.randn(*shape).to(dtype)) for name, shape in shapes)


torch.save({"model": tiny_dit(7, torch.float32), "ema": tiny_dit(8, torch.bfloat16), "opt": optimizer_state(),
            "args": argparse.Namespace(model="tiny", image_size=64, num_classes=10)}, path("tiny_dit.pt"))
# Shapes that give the head count: DyDiT head routers (H - 1, D), and a preset's depth and width
# (DiT-S/2: 12 blocks of width 384, 6 heads; only the tensors the shapes are read from).
torch.save(collections.OrderedDict([("x_embedder.proj.weight", torch.zeros(8, 4, 2, 2)),
                                    ("blocks.0.attn_rate.router.weight", torch.zeros(3, 8))]), path("routers.pt"))
torch.save(collections.OrderedDict([("x_embedder.proj.weight", torch.zeros(384, 4, 2, 2))] +
                                   [(f"blocks.{i}.attn.qkv.bias", torch.zeros(3)) for i in range(12)]), path("s2_shapes.pt"))
EOF
    fail fixtures "building the .pt files failed: $(tail -n 1 "$work/fixtures.log")"
    exit 1
fi

# ---- checks -------------------------------------------------------------------------------------
# Byte-exact comparison of a converted file with a part of a trusted fixture (read by plain
# torch.load, which is fine for files made above), plus expected metadata entries.
cat >"$work/verify.py" <<'EOF'
import json, struct, sys
import torch

name, pt, part, st = sys.argv[1:5]
want_meta = json.loads(sys.argv[5]) if len(sys.argv) > 5 else {}
DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
          torch.int64: "I64", torch.bool: "BOOL"}


def fail(why):
    print(f"FAIL convert.{name}: {why}")
    sys.exit(1)


obj = torch.load(pt, map_location="cpu")
state = obj if part == "state_dict" else obj[part]
state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
with open(st, "rb") as f:
    blob = f.read()
(n,) = struct.unpack("<Q", blob[:8])
if (8 + n) % 8:
    fail(f"data does not start at a multiple of 8 (header {n} bytes)")
header = json.loads(blob[8:8 + n])
meta = header.pop("__metadata__", {})
buffer = blob[8 + n:]
if list(header) != list(state):
    fail(f"names {list(header)} differ from {list(state)}")
for key, t in state.items():
    e = header[key]
    t = t.detach().contiguous()
    raw = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()
    begin, end = e["data_offsets"]
    if e["dtype"] != DTYPES[t.dtype] or e["shape"] != list(t.shape) or buffer[begin:end] != raw:
        fail(f"tensor '{key}' differs: {e} vs {t.dtype} {list(t.shape)}")
if header and max(e["data_offsets"][1] for e in header.values()) != len(buffer):
    fail("data buffer has trailing bytes")
for k, v in want_meta.items():
    got = meta.get(k)
    if v is None and k in meta:
        fail(f"metadata has unexpected '{k}' = {got!r}")
    if v is not None and (got is None or (got != v and not (v.startswith("~") and v[1:] in got))):
        fail(f"metadata '{k}' is {got!r}, want {v!r}")
print(f"PASS convert.{name} ({len(state)} tensors)")
EOF

# run NAME ARGS...: runs the converter; output in $work/NAME.log.
run() {
    local name=$1
    shift
    "$python" "$tool" "$@" >"$work/$name.log" 2>&1
}

# converts NAME PT PART [METADATA_JSON] [OPTIONS...]: converts and verifies byte equality.
converts() {
    local name=$1 pt=$2 part=$3 meta=${4:-"{}"}
    shift 4 2>/dev/null || shift $#
    if ! run "$name" "$work/$pt" "$work/$name.safetensors" "$@"; then
        fail "$name" "the converter failed: $(tail -n 1 "$work/$name.log")"
        return
    fi
    "$python" "$work/verify.py" "$name" "$work/$pt" "$part" "$work/$name.safetensors" "$meta" || status=1
}

# refuses NAME WORDS ARGS...: the converter must exit non-zero with one "error:" line containing WORDS.
refuses() {
    local name=$1 words=$2
    shift 2
    if run "$name" "$@"; then
        fail "$name" "exited 0"
    elif grep -q Traceback "$work/$name.log"; then
        fail "$name" "crashed with a traceback: $(tail -n 1 "$work/$name.log")"
    elif [ "$(grep -c '^error: ' "$work/$name.log")" -ne 1 ] || ! grep -q -- "$words" "$work/$name.log"; then
        fail "$name" "want one error line with '$words', got: $(head -c 300 "$work/$name.log")"
    else
        pass "$name" "$(grep '^error: ' "$work/$name.log" | head -c 200)"
    fi
}

if "$python" "$tool" --help >"$work/help.log" 2>&1 && grep -q -- "--which" "$work/help.log"; then
    pass help
else
    fail help "--help did not print the usage"
fi

converts plain plain.pt state_dict '{"source": "plain.pt", "source_part": "state_dict", "model": null}'
converts legacy_format legacy.pt state_dict
converts ddp_prefix_stripped ddp.pt state_dict
# train.pt's args name DiT-XL/2 but its tensors are tiny: the name is not kept as the model
converts train_default_ema train.pt ema \
    '{"source_part": "ema", "model": null, "input_size": "32", "num_classes": "1000", "train_args": "~\"token_ratio\": 0.5"}'
converts train_which_model train.pt model '{"source_part": "model"}' --which model
converts train_without_ema train_noema.pt model '{"source_part": "model", "train_args": null}'
converts hints plain.pt state_dict \
    '{"model": "DiT-B/4", "heads": "12", "input_size": "16", "num_classes": "10", "class_dropout": "0.0", "step": "100"}' \
    --model dit-b4 --heads 12 --input-size 16 --num-classes 10 --class-dropout 0 --meta step=100

# what the converter says about the head count (stderr of the conversions above and below)
says() { # says NAME LOGNAME WORDS
    if grep -qF -- "$3" "$work/$2.log"; then pass "$1" "$(grep -F -- "$3" "$work/$2.log" | head -c 160)"; else
        fail "$1" "no '$3' in: $(head -c 300 "$work/$2.log")"; fi
}
says args_model_contradicted_by_shapes train_default_ema "args name DiT-XL/2, but its shapes are depth 1, hidden 8"
says heads_unknown_warns plain "do not give the number of heads; pass --heads N"
converts heads_from_routers routers.pt state_dict '{"heads": "4", "model": null}'
says heads_from_routers_noted heads_from_routers "4 heads, from the shape of the head routers"
converts heads_from_preset_shapes s2_shapes.pt state_dict '{"model": "DiT-S/2", "heads": null}'
says heads_from_preset_shapes_noted heads_from_preset_shapes "the shapes are those of DiT-S/2 (6 heads)"

refuses which_missing_part "no 'ema' entry" "$work/train_noema.pt" "$work/x.safetensors" --which ema
refuses which_on_plain "plain state dict" "$work/plain.pt" "$work/x.safetensors" --which ema
refuses bad_model_hint "not a DiT preset" "$work/plain.pt" "$work/x.safetensors" --model DiT-Q/3
refuses missing_input "no such file" "$work/nothing.pt" "$work/x.safetensors"
refuses not_a_checkpoint "neither a state dict" "$work/list.pt" "$work/x.safetensors"
refuses non_tensor_entry "'b' is a str" "$work/mixed.pt" "$work/x.safetensors"
refuses garbage "not a PyTorch checkpoint" "$work/garbage.pt" "$work/x.safetensors"
refuses tensor_past_storage "reaches past the end of storage" "$work/overreach.pt" "$work/x.safetensors"
refuses truncated "not a PyTorch checkpoint" "$work/truncated.pt" "$work/x.safetensors"
refuses torchscript "TorchScript" "$work/torchscript.pt" "$work/x.safetensors"
refuses bad_output_dir "cannot create a temporary file" "$work/plain.pt" "$work/no/such/dir/x.safetensors"

for evil in evil.pt evil_legacy.pt evil_eval.pt evil.pkl; do
    name=hostile_${evil//./_}
    refuses "$name" "refusing to load global" "$work/$evil" "$work/$name.safetensors"
    if [ -e "$work/pwned" ]; then
        fail "$name.command_not_run" "the pickled command ran"
        rm -f "$work/pwned"
    else
        pass "$name.command_not_run"
    fi
    [ -e "$work/$name.safetensors" ] && fail "$name.no_output" "an output file was written"
done
# The payload is live: a plain torch.load runs it (this is what the converter prevents).
"$python" -c "import torch, sys; torch.load(sys.argv[1])" "$work/control.pt" >/dev/null 2>&1
if [ -e "$work/control" ]; then pass hostile_fixture_is_live; else fail hostile_fixture_is_live "plain torch.load did not run the payload"; fi

# The C side reads what the converter writes: `dydit convert` normalises it (only when built).
if [ -x ./dydit ]; then
    if ! run dit_for_dydit "$work/tiny_dit.pt" "$work/tiny_dit.safetensors" --heads 4; then
        fail dydit_reads_output "the converter failed: $(tail -n 1 "$work/dit_for_dydit.log")"
    elif ! ./dydit convert --in "$work/tiny_dit.safetensors" --out "$work/tiny_dit_f32.safetensors" >"$work/dydit.log" 2>&1; then
        fail dydit_reads_output "dydit convert failed: $(grep -v '^warning' "$work/dydit.log" | tail -n 1)"
    elif ! grep -q "heads 4 .*input 8x8x4 classes 10" "$work/dydit.log"; then
        fail dydit_reads_output "unexpected configuration: $(cat "$work/dydit.log")"
    elif "$python" - "$work/tiny_dit.pt" "$work/tiny_dit_f32.safetensors" <<'EOF'; then
import json, struct, sys
import numpy as np
import torch

ema = torch.load(sys.argv[1])["ema"]
blob = open(sys.argv[2], "rb").read()
(n,) = struct.unpack("<Q", blob[:8])
header = json.loads(blob[8:8 + n])
meta = header.pop("__metadata__")
for name, t in ema.items():
    if name == "pos_embed":
        continue
    begin, end = header[name]["data_offsets"]
    got = np.frombuffer(blob[8 + n + begin:8 + n + end], dtype="<f4")
    if header[name]["dtype"] != "F32" or not np.array_equal(got, t.float().numpy().ravel()):
        sys.exit(f"'{name}' differs after dydit convert")
if meta.get("format") != "dydit-weights" or "train_args" not in meta:
    sys.exit(f"unexpected metadata {meta}")
EOF
        pass dydit_reads_output
    else
        fail dydit_reads_output "the F32 file written by dydit convert does not hold the ema values"
    fi
    if run dit_wrong_model "$work/tiny_dit.pt" "$work/tiny_dit_wrong.safetensors" --model DiT-S/2 &&
        ! ./dydit convert --in "$work/tiny_dit_wrong.safetensors" --out "$work/x.safetensors" >"$work/dydit_wrong.log" 2>&1 &&
        grep -q "depth 12 from metadata model 'DiT-S/2' disagrees with 2 from the tensor shapes" "$work/dydit_wrong.log"; then
        pass dydit_checks_metadata_against_shapes
    else
        fail dydit_checks_metadata_against_shapes "$(tail -n 1 "$work/dydit_wrong.log" 2>/dev/null)"
    fi
else
    echo "SKIP convert.dydit_reads_output: ./dydit is not built"
fi

leftovers=$(find "$work" -name '*.tmp.*' | head -n 3)
if [ -z "$leftovers" ]; then pass no_temporary_files_left; else fail no_temporary_files_left "$leftovers"; fi

[ "$status" -eq 0 ]
