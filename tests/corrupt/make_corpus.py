"""Writes the corpus of broken inputs that tests/corrupt.sh feeds to dydit.

usage: make_corpus.py --fixtures FIXTURES   writes the fixtures dydit does not make itself
       make_corpus.py FIXTURES OUT           writes the corpus and prints the number of cases

FIXTURES holds valid files made by dydit itself (see tests/corrupt.sh): model.safetensors (a tiny
DiT), shards/ (a latent shard directory), run/ (a training run with a checkpoint), latents.safetensors
(a single-file latent set), idx/ (Fashion-MNIST-style IDX files), images/ (an image folder tree).
Every case is derived from one of them by one defect and lives in its own directory OUT/NAME/, so
the one-line error must contain NAME to name the broken file. OUT/manifest.tsv lists
"NAME<TAB>KIND<TAB>PATH" per case; KIND says which dydit command reads PATH.
"""
import gzip
import json
import os
import shutil
import struct
import sys
import zlib

manifest = []


def case(name, kind, rel=""):
    """The directory of a new case; PATH in the manifest is that directory joined with rel."""
    d = os.path.join(OUT, name)
    os.makedirs(d)
    manifest.append((name, kind, os.path.join(d, rel) if rel else d))
    return d


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def read(path):
    with open(path, "rb") as f:
        return f.read()


# ---------------------------------------------------------------------------------------------
# safetensors, taken apart and put back together with one defect


def st_split(raw):
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n], object_pairs_hook=lambda pairs: pairs)
    return header, raw[8 + n:]


def st_join(header_text, data):
    if isinstance(header_text, str):
        header_text = header_text.encode()
    return struct.pack("<Q", len(header_text)) + header_text + data


def dump(pairs):
    """JSON text of the pair lists st_split made (keeps order and duplicates)."""
    if isinstance(pairs, list) and pairs and all(isinstance(p, tuple) for p in pairs):
        return "{" + ",".join(json.dumps(k) + ":" + dump(v) for k, v in pairs) + "}"
    if isinstance(pairs, list) and not pairs:
        return "[]"
    if isinstance(pairs, list):
        return "[" + ",".join(dump(v) for v in pairs) + "]"
    return json.dumps(pairs)


def get(pairs, key):
    return next(v for k, v in pairs if k == key)


def put(pairs, key, value):
    return [(k, value if k == key else v) for k, v in pairs]


def tensors(header):
    return [k for k, _ in header if k != "__metadata__"]


def largest_float(header):
    names = [k for k, v in header if k != "__metadata__" and get(v, "dtype") == "F32"]
    return max(names, key=lambda k: get(get(header, k), "data_offsets")[1] - get(get(header, k), "data_offsets")[0])


def safetensors_cases(prefix, kind, raw, rel, float_tensor=True, write_case=None):
    """The structural defects every safetensors reader must refuse. write_case(dir, bytes) places the
    broken bytes (default: dir/rel)."""
    write_case = write_case or (lambda d, b: write(os.path.join(d, rel), b))
    header, data = st_split(raw)
    n = struct.unpack("<Q", raw[:8])[0]
    names = tensors(header)
    first, last = names[0], names[-1]

    def add(name, blob):
        write_case(case(f"{prefix}_{name}", kind, rel), blob)

    def with_entry(name, entry, extra_data=b""):
        return st_join(dump(put(header, name, entry)), data + extra_data)

    add("empty", b"")
    add("truncated_length", raw[:5])
    add("truncated_header", raw[:8 + n // 2])
    add("truncated_data", raw[:8 + n + len(data) // 2])
    add("one_byte_short", raw[:-1])
    add("trailing_bytes", raw + b"\0" * 8)
    add("header_past_end", struct.pack("<Q", len(raw)) + raw[8:])
    add("header_length_huge", struct.pack("<Q", 2**64 - 1) + raw[8:])
    add("header_length_zero", struct.pack("<Q", 0) + raw[8:])
    add("wrong_magic", b"PK\x03\x04" + raw[4:])
    add("not_json", st_join("{" + "x" * (n - 1), data))
    add("json_unterminated", st_join(dump(header)[:-1] + " ", data))
    add("json_trailing_garbage", st_join(dump(header) + "}", data))
    add("json_not_object", st_join("[1, 2, 3]", data))
    add("json_deep_nesting", st_join('{"a":' + "[" * 5000 + "]" * 5000 + "}", data))
    add("json_bad_utf8", st_join(dump(header).replace(first, first + "\udcff", 1).encode("utf-8", "surrogateescape"), data))
    add("json_bad_escape", st_join(dump(header).replace('"' + first + '"', '"' + first + '\\q"', 1), data))
    add("json_huge_integer", with_entry(first, put(get(header, first), "data_offsets", [0, 10**30])))
    add("duplicate_name", st_join(dump(header + [(first, get(header, first))]), data))
    offsets = get(get(header, first), "data_offsets")
    add("negative_offset", with_entry(first, put(get(header, first), "data_offsets", [-8, offsets[1]])))
    add("offsets_reversed", with_entry(first, put(get(header, first), "data_offsets", [offsets[1], offsets[0]])))
    add("offset_past_end", with_entry(last, put(get(header, last), "data_offsets", [len(data), len(data) + 4])))
    add("offset_overflow", with_entry(first, put(get(header, first), "data_offsets", [2**63 - 1, 2**63 - 1])))
    add("offsets_not_pair", with_entry(first, put(get(header, first), "data_offsets", [0])))
    shape = get(get(header, first), "shape")
    add("shape_disagrees", with_entry(first, put(get(header, first), "shape", shape + [2])))
    add("shape_negative", with_entry(first, put(get(header, first), "shape", [-1] + shape[1:] if shape else [-1])))
    add("shape_overflow", with_entry(first, put(get(header, first), "shape", [2**31, 2**31, 2**31, 2**31])))
    add("shape_too_many_dims", with_entry(first, put(get(header, first), "shape", [1] * 9)))
    add("shape_not_list", with_entry(first, put(get(header, first), "shape", "4")))
    add("dtype_unknown", with_entry(first, put(get(header, first), "dtype", "F17")))
    add("dtype_not_string", with_entry(first, put(get(header, first), "dtype", 32)))
    add("tensor_unknown_field", with_entry(first, get(header, first) + [("quantized", True)]))
    add("tensor_not_object", with_entry(first, [1, 2]))
    add("metadata_not_strings", st_join(dump([("__metadata__", [("x", 1)])] + [p for p in header if p[0] != "__metadata__"]), data))
    # two tensors claiming the same bytes, and bytes no tensor owns
    if len(names) > 1:
        second = names[1]
        add("overlapping_tensors", with_entry(second, put(get(header, second), "data_offsets", get(get(header, first), "data_offsets"))))
    add("hole_in_data", st_join(dump(header), data + b"\0" * 4))
    if float_tensor:
        # a float tensor whose type says 2 bytes per element while 4 are stored
        big = largest_float(header)
        add("wrong_dtype_size", with_entry(big, put(get(header, big), "dtype", "F16")))
    return header, data


def float_poisoned(header, data, name, value):
    """data with element 0 of F32 tensor name set to value."""
    begin = get(get(header, name), "data_offsets")[0]
    return data[:begin] + struct.pack("<f", value) + data[begin + 4:]


# ---------------------------------------------------------------------------------------------
# weights: dydit sample / convert / checkpoints read the same model file


def weights_cases():
    raw = read(os.path.join(FIX, "model.safetensors"))
    header, data = safetensors_cases("weights", "weights", raw, "model.safetensors")
    big = largest_float(header)
    for value, label in ((float("nan"), "nan"), (float("inf"), "inf")):
        write(os.path.join(case(f"weights_{label}_value", "weights", "model.safetensors"), "model.safetensors"),
              st_join(dump(header), float_poisoned(header, data, big, value)))
    kept = [p for p in header if p[0] != big]
    write(os.path.join(case("weights_missing_tensor", "weights", "model.safetensors"), "model.safetensors"),
          st_rebuild(kept, header, data))
    extra = header + [("surplus.weight", [("dtype", "F32"), ("shape", [1]), ("data_offsets", [len(data), len(data) + 4])])]
    write(os.path.join(case("weights_unknown_tensor", "weights", "model.safetensors"), "model.safetensors"),
          st_join(dump(extra), data + b"\0" * 4))
    name = big
    wrong = put(header, name, put(get(header, name), "dtype", "I32"))
    write(os.path.join(case("weights_integer_dtype", "weights", "model.safetensors"), "model.safetensors"),
          st_join(dump(wrong), data))
    meta = get(header, "__metadata__") if "__metadata__" in [k for k, _ in header] else []
    for label, key, value in (("meta_depth", "depth", "3"), ("meta_heads_zero", "heads", "0"),
                              ("meta_depth_huge", "depth", "99999999999999999999"), ("meta_hidden_text", "hidden", "wide")):
        m = [(k, v) for k, v in meta if k != key] + [(key, value)]
        h = [("__metadata__", m)] + [p for p in header if p[0] != "__metadata__"]
        write(os.path.join(case(f"weights_{label}", "weights", "model.safetensors"), "model.safetensors"),
              st_join(dump(h), data))


def st_rebuild(kept, header, data):
    """A well-formed file holding only the kept entries (offsets recomputed)."""
    out, blob = [], b""
    for k, v in kept:
        if k == "__metadata__":
            out.append((k, v))
            continue
        b, e = get(v, "data_offsets")
        out.append((k, put(v, "data_offsets", [len(blob), len(blob) + e - b])))
        blob += data[b:e]
    return st_join(dump(out), blob)


# ---------------------------------------------------------------------------------------------
# latent shards and their index


def shard_cases():
    src = os.path.join(FIX, "shards")
    shard_names = sorted(f for f in os.listdir(src) if f.endswith(".safetensors"))
    shard0 = shard_names[0]
    raw = read(os.path.join(src, shard0))

    def shard_dir(d, blob):
        for f in os.listdir(src):
            shutil.copy(os.path.join(src, f), d)
        write(os.path.join(d, shard0), blob)

    header, data = safetensors_cases("shard", "shards", raw, "", float_tensor=True, write_case=shard_dir)
    meta = get(header, "__metadata__")
    body = [p for p in header if p[0] != "__metadata__"]
    bad_meta = [("format", "other"), ("format_version", "99"), ("format_version", "x"), ("channels", "0"),
                ("channels", "1000000000000"), ("height", "-4"), ("count", "7"), ("count", "99999999999999999999"),
                ("classes", "[1, 2]"), ("classes", "not json"), ("classes", "[]"), ("storage", "both"),
                ("scale_factor", "nan"), ("scale_factor", "-1"), ("image_size", "")]
    for i, (key, value) in enumerate(bad_meta):
        m = put(meta, key, value)
        shard_dir(case(f"shard_meta_{key}_{i}", "shards"), st_join(dump([("__metadata__", m)] + body), data))
    m = [(k, v) for k, v in meta if k != "classes"]
    shard_dir(case("shard_meta_missing_classes", "shards"), st_join(dump([("__metadata__", m)] + body), data))
    # a label outside the classes
    lb = get(get(header, "labels"), "data_offsets")[0]
    shard_dir(case("shard_label_out_of_range", "shards"), st_join(dump(header), data[:lb] + struct.pack("<q", 12345) + data[lb + 8:]))
    shard_dir(case("shard_label_negative", "shards"), st_join(dump(header), data[:lb] + struct.pack("<q", -1) + data[lb + 8:]))
    # labels stored with another dtype
    lab = get(header, "labels")
    b, e = get(lab, "data_offsets")
    h = put(header, "labels", put(put(lab, "dtype", "I32"), "data_offsets", [b, b + (e - b) // 2]))
    shard_dir(case("shard_labels_i32", "shards"), st_rebuild(h, h, data))
    h = [p for p in header if p[0] != "labels"]
    shard_dir(case("shard_missing_labels", "shards"), st_rebuild(h, h, data))
    value = "latents" if "latents" in tensors(header) else "mean"
    h = header + [("extra", [("dtype", "F32"), ("shape", [1]), ("data_offsets", [len(data), len(data) + 4])])]
    shard_dir(case("shard_unknown_tensor", "shards"), st_join(dump(h), data + b"\0" * 4))
    h = put(header, value, put(get(header, value), "dtype", "I32"))
    shard_dir(case("shard_value_dtype", "shards"), st_join(dump(h), data))

    index = json.loads(read(os.path.join(src, "index.json")))

    def index_case(name, text=None, drop=None):
        d = case(f"index_{name}", "shards")
        for f in os.listdir(src):
            if f != drop:
                shutil.copy(os.path.join(src, f), d)
        if text is not None:
            write(os.path.join(d, "index.json"), text.encode() if isinstance(text, str) else text)

    def edited(**changes):
        j = dict(index)
        j.update(changes)
        return json.dumps(j)

    index_case("missing", drop="index.json")
    index_case("empty", "")
    index_case("not_json", "{format: dydit}")
    index_case("truncated", json.dumps(index)[:40])
    index_case("not_object", "[]")
    index_case("wrong_format", edited(format="something-else"))
    index_case("count_mismatch", edited(count=index["count"] + 1))
    index_case("count_negative", edited(count=-5))
    index_case("count_huge", edited(count=2**62))
    index_case("no_shards", edited(shards=[]))
    index_case("shard_path_escape", edited(shards=[{"file": "../" + shard0, "count": index["count"]}]))
    index_case("shard_missing_file", edited(shards=[{"file": "shard-99999.safetensors", "count": index["count"]}]))
    index_case("shard_count_wrong", edited(shards=[dict(s, count=s["count"] + 1) for s in index["shards"]],
                                           count=index["count"] + len(index["shards"])))
    index_case("channels_mismatch", edited(channels=index["channels"] + 1))
    index_case("dtype_mismatch", edited(dtype="F32" if index["dtype"] == "F16" else "F16"))
    index_case("classes_not_list", edited(classes="shoes"))
    index_case("scale_nan", json.dumps(index).replace('"scale_factor": ' + json.dumps(index["scale_factor"]), '"scale_factor": NaN'))
    index_case("shard_file_deleted", drop=shard0)
    index_case("duplicate_key", json.dumps(index)[:-1] + ', "count": 1}')


def latents_file_cases():
    raw = read(os.path.join(FIX, "latents.safetensors"))
    safetensors_cases("latents", "latents", raw, "latents.safetensors")
    header, data = st_split(raw)
    name = "latents"
    write(os.path.join(case("latents_nan_value", "latents", "latents.safetensors"), "latents.safetensors"),
          st_join(dump(header), float_poisoned(header, data, name, float("nan"))))


# ---------------------------------------------------------------------------------------------
# checkpoints


def checkpoint_cases():
    run = os.path.join(FIX, "run")
    latest = read(os.path.join(run, "checkpoints", "latest")).decode().strip()
    ck = os.path.join(run, "checkpoints", latest)

    def ck_case(name, edit):
        d = case(f"checkpoint_{name}", "checkpoint")
        shutil.rmtree(d)
        shutil.copytree(ck, d)
        edit(d)

    def state(text):
        return lambda d: write(os.path.join(d, "state.json"), text.encode())

    st = json.loads(read(os.path.join(ck, "state.json")))

    def state_with(**changes):
        j = dict(st)
        j.update(changes)
        return state(json.dumps(j))

    ck_case("state_missing", lambda d: os.remove(os.path.join(d, "state.json")))
    ck_case("state_empty", state(""))
    ck_case("state_not_json", state("step: 3"))
    ck_case("state_wrong_format", state_with(format="nope"))
    ck_case("state_negative_step", state_with(step=-1))
    ck_case("state_step_text", state_with(step="3"))
    ck_case("state_step_huge", state(json.dumps(st).replace('"step": %d' % st["step"], '"step": 1e400')))
    ck_case("state_is_directory", lambda d: (os.remove(os.path.join(d, "state.json")), os.mkdir(os.path.join(d, "state.json"))))
    ck_case("model_missing", lambda d: os.remove(os.path.join(d, "model.safetensors")))
    ck_case("ema_missing", lambda d: os.remove(os.path.join(d, "ema.safetensors")))
    ck_case("optimizer_missing", lambda d: os.remove(os.path.join(d, "optimizer.safetensors")))
    ck_case("model_truncated", lambda d: write(os.path.join(d, "model.safetensors"), read(os.path.join(ck, "model.safetensors"))[:1000]))
    ck_case("optimizer_truncated",
            lambda d: write(os.path.join(d, "optimizer.safetensors"), read(os.path.join(ck, "optimizer.safetensors"))[:-4]))
    opt_header, opt_data = st_split(read(os.path.join(ck, "optimizer.safetensors")))
    h = [p for p in opt_header if p[0] != "adam.v"]
    ck_case("optimizer_missing_moment", lambda d: write(os.path.join(d, "optimizer.safetensors"), st_rebuild(h, h, opt_data)))
    opt_path = lambda d: os.path.join(d, "optimizer.safetensors")
    ck_case("optimizer_nan_moment",
            lambda d: write(opt_path(d), st_join(dump(opt_header), float_poisoned(opt_header, opt_data, "adam.v", float("nan")))))
    ck_case("optimizer_negative_v",
            lambda d: write(opt_path(d), st_join(dump(opt_header), float_poisoned(opt_header, opt_data, "adam.v", -1.0))))
    ck_case("ema_other_model", lambda d: write(os.path.join(d, "ema.safetensors"), read(os.path.join(FIX, "other_model.safetensors"))))

    def run_case(name, latest_text):
        d = case(f"run_{name}", "checkpoint")
        shutil.rmtree(d)
        shutil.copytree(run, d)
        write(os.path.join(d, "checkpoints", "latest"), latest_text.encode())

    run_case("latest_escapes", "../../elsewhere\n")
    run_case("latest_missing_dir", "step-9999999\n")
    run_case("latest_empty", "")
    case("run_empty_directory", "checkpoint")


# ---------------------------------------------------------------------------------------------
# IDX (Fashion-MNIST files read by dydit encode --source fashion-mnist --fashion-mnist-dir)


def idx_cases():
    src = os.path.join(FIX, "idx")
    images = gzip.decompress(read(os.path.join(src, "t10k-images-idx3-ubyte.gz")))
    labels = gzip.decompress(read(os.path.join(src, "t10k-labels-idx1-ubyte.gz")))
    count = struct.unpack(">I", images[4:8])[0]

    def idx_case(name, images_blob=None, labels_blob=None, raw=False):
        d = case(f"idx_{name}", "idx")
        pack = (lambda b: b) if raw else gzip.compress
        write(os.path.join(d, "t10k-images-idx3-ubyte.gz"), pack(images if images_blob is None else images_blob))
        write(os.path.join(d, "t10k-labels-idx1-ubyte.gz"), pack(labels if labels_blob is None else labels_blob))

    def dims(*ds):
        return b"".join(struct.pack(">I", x) for x in ds)

    idx_case("empty", b"")
    idx_case("magic_only", images[:4])
    idx_case("wrong_magic", b"\x00\x00\x0d\x03" + images[4:])
    idx_case("wrong_type", b"\x00\x00\x09\x03" + images[4:])
    idx_case("wrong_ndim", b"\x00\x00\x08\x02" + images[4:])
    idx_case("truncated_dims", images[:10])
    idx_case("truncated_data", images[:len(images) // 2])
    idx_case("trailing_bytes", images + b"\0")
    idx_case("dim_zero", images[:4] + dims(0, 28, 28) + images[16:])
    idx_case("dims_overflow", images[:4] + dims(0x7FFFFFFF, 0x7FFFFFFF, 0x7FFFFFFF) + images[16:])
    idx_case("dims_promise_gigabytes", images[:4] + dims(10000, 1000, 800) + images[16:])
    idx_case("dim_negative", images[:4] + dims(0xFFFFFFFF, 28, 28) + images[16:])
    idx_case("labels_count_mismatch", labels_blob=labels[:4] + dims(count - 1) + labels[8:-1])
    idx_case("label_out_of_range", labels_blob=labels[:8] + b"\x0a" + labels[9:])
    gz = gzip.compress(images)
    idx_case("gzip_truncated", gz[:len(gz) // 2], raw=True)
    idx_case("gzip_corrupt", gz[:20] + bytes(b ^ 0x5A for b in gz[20:200]) + gz[200:], raw=True)
    d = case("idx_missing_labels", "idx")
    write(os.path.join(d, "t10k-images-idx3-ubyte.gz"), gzip.compress(images))


# ---------------------------------------------------------------------------------------------
# images (dydit encode --source folder)


def png_chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png(width, height, rows=None, depth=8, color=2):
    rows = rows if rows is not None else b"".join(b"\0" + b"\x80" * (3 * width) for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0)) +
            png_chunk(b"IDAT", zlib.compress(rows)) + png_chunk(b"IEND", b""))


def image_cases():
    src = os.path.join(FIX, "images")
    good_png = png(8, 8)
    good_jpeg = read(os.path.join(FIX, "good.jpg"))

    def image_case(name, blob, file_name):
        d = case(f"image_{name}", "images")
        shutil.rmtree(d)
        shutil.copytree(src, d)
        write(os.path.join(d, "b", file_name), blob)

    image_case("empty_file", b"", "zero.png")
    image_case("not_an_image", b"hello, world\n" * 10, "text.png")
    image_case("png_truncated", good_png[:len(good_png) - 20], "cut.png")
    image_case("png_signature_only", good_png[:8], "sig.png")
    image_case("png_bad_crc", good_png[:30] + bytes([good_png[30] ^ 1]) + good_png[31:], "crc.png")
    image_case("png_zero_width", png(0, 8, rows=b""), "zero_width.png")
    image_case("png_huge", png(1000000, 1000000, rows=b"\0"), "huge.png")
    image_case("png_short_rows", png(8, 8, rows=b"\0" * 10), "short_rows.png")
    image_case("png_bad_zlib", good_png[:41] + b"\xff" * 8 + good_png[49:], "bad_zlib.png")
    image_case("png_bad_depth", png(8, 8, depth=3), "depth.png")
    image_case("jpeg_truncated", good_jpeg[:len(good_jpeg) // 2], "cut.jpg")
    image_case("jpeg_header_only", good_jpeg[:3], "head.jpg")
    image_case("jpeg_garbage_body", good_jpeg[:4] + b"\x13" * 200, "garbage.jpg")
    sof = good_jpeg.find(b"\xff\xc0")
    zero = good_jpeg[:sof + 5] + b"\0\0\0\0" + good_jpeg[sof + 9:]
    image_case("jpeg_zero_size", zero, "zero.jpg")


# ---------------------------------------------------------------------------------------------
# config files (dydit train --config) and unwritable outputs


def config_cases():
    lines = {
        "unknown_key": "steps = 3\nbogus_key = 1\n",
        "bad_integer": "steps = ten\n",
        "bad_float": "lr = 1e-4x\n",
        "missing_equals": "steps 3\n",
        "empty_key": "= 3\n",
        "int_overflow": "steps = 99999999999\n",
        "int_overflow_long": "batch = 999999999999999999999999\n",
        "float_nan": "lr = nan\n",
        "float_inf": "lr = inf\n",
        "float_overflow": "lr = 1e999\n",
        "bad_flag": "quiet = maybe\n",
        "include": "config = other.conf\n",
        "long_line": "steps = " + "1" * 10000 + "\n",
        "binary": "steps = 3\n\0\x01\x02 garbage\n",
        "huge": "# padding\n" * 120000,  # 1.2 MB: past the 1 MiB a config file may hold
    }
    for name, text in lines.items():
        write(os.path.join(case(f"config_{name}", "config", "train.conf"), "train.conf"), text.encode())
    d = case("config_is_directory", "config", "train.conf")
    os.mkdir(os.path.join(d, "train.conf"))
    case("config_missing", "config", "train.conf")
    # outputs: a path under a regular file can never be created
    d = case("output_npz_under_file", "npz", "blocker/out.npz")
    write(os.path.join(d, "blocker"), b"")
    d = case("output_grid_under_file", "grid", "blocker/grid.png")
    write(os.path.join(d, "blocker"), b"")
    d = case("output_npz_is_directory", "npz", "out.npz")
    os.mkdir(os.path.join(d, "out.npz"))
    d = case("output_run_under_file", "train_out", "blocker/run")
    write(os.path.join(d, "blocker"), b"")


# ---------------------------------------------------------------------------------------------
# valid fixtures


def st_write(path, arrays, meta):
    """arrays: name -> (dtype name, shape, raw little-endian bytes)."""
    header, blob = [("__metadata__", list(meta.items()))], b""
    for name, (dtype, shape, raw) in arrays.items():
        header.append((name, [("dtype", dtype), ("shape", shape), ("data_offsets", [len(blob), len(blob) + len(raw)])]))
        blob += raw
    write(path, st_join(dump(header), blob))


def make_fixtures(fix):
    os.makedirs(fix, exist_ok=True)
    n = 12
    values = [((i * 7919) % 201) / 100.0 - 1.0 for i in range(n * 3 * 8 * 8)]
    st_write(os.path.join(fix, "latents.safetensors"),
             {"latents": ("F32", [n, 3, 8, 8], struct.pack(f"<{len(values)}f", *values)),
              "labels": ("I64", [n], struct.pack(f"<{n}q", *[i % 2 for i in range(n)]))}, {"num_classes": "2"})
    for k, cls in enumerate(("a", "b")):
        os.makedirs(os.path.join(fix, "images", cls))
        for i in range(3):
            rows = b"".join(b"\0" + bytes((x * 20 + y * 3 + i + 50 * k) % 256 for x in range(12) for _ in range(3))
                            for y in range(10))
            write(os.path.join(fix, "images", cls, f"{i}.png"), png(12, 10, rows=rows))
    from PIL import Image
    Image.new("RGB", (16, 16), (200, 30, 90)).save(os.path.join(fix, "good.jpg"), quality=90)
    os.makedirs(os.path.join(fix, "idx"))
    count = 20
    images = struct.pack(">IIII", 0x803, count, 28, 28) + bytes((i * 31) % 256 for i in range(count * 28 * 28))
    labels = struct.pack(">II", 0x801, count) + bytes(i % 10 for i in range(count))
    write(os.path.join(fix, "idx", "t10k-images-idx3-ubyte.gz"), gzip.compress(images))
    write(os.path.join(fix, "idx", "t10k-labels-idx1-ubyte.gz"), gzip.compress(labels))


if sys.argv[1] == "--fixtures":
    make_fixtures(sys.argv[2])
    sys.exit(0)
FIX, OUT = sys.argv[1], sys.argv[2]
os.makedirs(OUT, exist_ok=True)
weights_cases()
shard_cases()
latents_file_cases()
checkpoint_cases()
idx_cases()
image_cases()
config_cases()
with open(os.path.join(OUT, "manifest.tsv"), "w") as f:
    for row in manifest:
        f.write("\t".join(row) + "\n")
print(len(manifest))
