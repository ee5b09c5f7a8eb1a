"""The short table at the end of bench/gpu.sh: reads the JSON lines the GPU benchmarks printed
(other lines are ignored) and prints images/s, MFU and the ratios dydit / PyTorch and dynamic /
static measured in that run.

    python3 bench/gpu_summary.py RESULTS.txt
"""
import json
import sys


def records(path):
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    pass
    return out


def impl(r):
    return "dydit" if r["impl"] == "dydit" else "pytorch"


def pct(x):
    return "n/a" if x is None else f"{100 * x:.1f}%"


def ratio(a, b):
    return f"{a / b:.2f}x" if a and b else "n/a"


def main():
    rs = records(sys.argv[1])
    print("== summary ==")
    for r in rs:
        if r.get("bench") == "gemm_peak":
            print(f"bf16 GEMM peak (cuBLASLt, max over shapes): {r['peak_tflops']} TFLOP/s on {r['gpu']}")

    train = {}
    for r in rs:
        if r.get("bench") == "train":
            train[(r["model"], r["batch"], impl(r))] = r
    if train:
        print(f"\n{'training step':<22}{'batch':>6}{'dydit img/s':>13}{'torch img/s':>13}{'dydit/torch':>13}"
              f"{'MFU dydit':>11}{'MFU torch':>11}{'realised':>10}{'executed':>10}{'ratio':>8}")
        for model, batch in sorted({(k[0], k[1]) for k in train}):
            ours, theirs = train.get((model, batch, "dydit"), {}), train.get((model, batch, "pytorch"), {})
            a, b = ours.get("images_per_s"), theirs.get("images_per_s")
            note = ours.get("skipped") or theirs.get("skipped")
            print(f"{model:<22}{batch:>6}{a or '-':>13}{b or '-':>13}{ratio(a, b):>13}"
                  f"{pct(ours.get('mfu_static')):>11}{pct(theirs.get('mfu_static')):>11}"
                  f"{pct(ours.get('mfu_realised')) if 'mfu_realised' in ours else '':>10}"
                  f"{pct(ours.get('mfu_executed')) if 'mfu_executed' in ours else '':>10}"
                  f"{ours.get('flops_ratio', ''):>8}" + (f"  ({note})" if note else ""))
        print("MFU: images/s x 6 x forward MACs (static model) / peak; 'realised' scales the MACs by the realised "
              "FLOPs ratio; 'executed' counts what a stage-1 step computes (the masked dynamic path densely, "
              "routers included, plus the complete path); the last three columns are dydit's")

    sample = {}
    for r in rs:
        if r.get("bench") == "sample":
            sample[(impl(r), r["engine"])] = r
    if sample:
        st, dy, pt = sample.get(("dydit", "static")), sample.get(("dydit", "dynamic")), sample.get(("pytorch", "static"))
        print(f"\n{'sampling':<28}{'img/s':>10}{'MFU':>9}")
        for name, r in (("dydit static", st), ("dydit dynamic", dy), ("pytorch static", pt)):
            if r:
                print(f"{name:<28}{r['images_per_s']:>10}{pct(r.get('mfu')):>9}")
        if st and dy:
            print(f"dynamic / static: {ratio(dy['images_per_s'], st['images_per_s'])} at a realised FLOPs ratio of "
                  f"{dy['flops_ratio']} (ideal {1 / dy['flops_ratio']:.2f}x)")
        if st and pt:
            print(f"dydit static / pytorch static: {ratio(st['images_per_s'], pt['images_per_s'])}")
        if dy and pt:
            print(f"dydit dynamic / pytorch static: {ratio(dy['images_per_s'], pt['images_per_s'])}")

    vae = [r for r in rs if r.get("bench") == "vae_encode"]
    if vae:
        print(f"\n{'VAE encode':<28}{'img/s':>10}")
        for r in vae:
            print(f"{impl(r) + ' ' + r.get('precision', 'bf16'):<28}{r['images_per_s']:>10}")


if __name__ == "__main__":
    main()
