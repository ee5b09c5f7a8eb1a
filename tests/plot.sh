#!/usr/bin/env bash
# dydit plot: pictures read back by PIL and checked against the synthetic logs they were drawn from
# (sizes, where the curves lie relative to the axes, distinct colours for overlaid runs, legend
# swatches in the curves' colours, dark text pixels in the title, tick-value and label bands), and
# one-line errors. Usage, from the repository root: bash tests/plot.sh WORKDIR [PYTHON]
set -u
work=${1:?usage: bash tests/plot.sh WORKDIR [PYTHON]}/plot
python=${2:-/usr/bin/python3}
prefix=plot
mkdir -p "$work/runs/a" "$work/runs/b"
. tests/lib.sh
# Run a's loss falls linearly from 50.5 to 10.5 over steps 0-40, run b's rises from 10.5 to 50.5;
# the x axis then spans exactly 0-40 and the y axis starts at 0, so the curves' heights above the
# axis stand in the ratio of the values whatever the tick steps are.
a=$work/runs/a/log.jsonl
b=$work/runs/b/log.jsonl
for s in 0 10 20 30 40; do
    echo "{\"step\":$s,\"loss\":$((50 - s)).5,\"flops_ratio\":0.$((9 - s / 10))}"
done >"$a"
echo '{"step":50,"note":"a line without the key is skipped"}' >>"$a"
for s in 0 10 20 30 40; do echo "{\"step\":$s,\"loss\":$((10 + s)).5}"; done >"$b"

# check_png NAME PNG CHECK: runs the Python CHECK on the picture (helpers below); PASS or FAIL.
check_png() {
    local name=$1 png=$2 check=$3
    if "$python" - "$png" "$check" >"$work/check.txt" 2>&1 <<'PY'; then
import sys
from PIL import Image

im = Image.open(sys.argv[1]).convert("RGB")
W, H = im.size
px = im.load()
BLACK = (0, 0, 0)


def dark(p):
    return sum(p) < 200


def panel_frame(top):
    """The y axis column and x axis row of the panel starting at row `top`: the longest black runs."""
    rows = range(top, top + 300)
    axis_x = max(range(W), key=lambda x: sum(px[x, y] == BLACK for y in rows))
    axis_y = max(rows, key=lambda y: sum(px[x, y] == BLACK for x in range(W)))
    return axis_x, axis_y


def curve_colours(top, axis_x, axis_y):
    """Colours of the plot area that are neither grey nor white, with their pixel counts."""
    counts = {}
    for y in range(top, axis_y):
        for x in range(axis_x + 1, W):
            p = px[x, y]
            if max(p) - min(p) > 40:
                counts[p] = counts.get(p, 0) + 1
    return {c: n for c, n in counts.items() if n > 50}


def height_at(colour, x, axis_y, top):
    """Pixels between the x axis and the topmost pixel of `colour` in column x."""
    ys = [y for y in range(top, axis_y) if px[x, y] == colour]
    assert ys, f"no {colour} pixel in column {x}"
    return axis_y - min(ys)


def dark_in(x0, y0, x1, y1):
    return sum(dark(px[x, y]) for x in range(x0, x1) for y in range(y0, y1))


def text_bands(top, axis_x, axis_y):
    """Title above the plot, tick values left of the y axis and below the x axis."""
    assert dark_in(0, top, W, top + 24) > 40, "no title text"
    assert dark_in(0, top + 30, axis_x - 5, axis_y) > 40, "no y tick values"
    assert dark_in(axis_x, axis_y + 5, W, axis_y + 16) > 20, "no x tick values"
    assert dark_in(0, top + 30, 20, axis_y) > 15, "no y axis label"


def legend_swatches(axis_y, bottom):
    """Legend entries below the axis labels: the x position of each colour's swatch (a run of 15+)."""
    found = {}
    for y in range(axis_y + 25, bottom):
        x = 0
        while x < W:
            p, run = px[x, y], 0
            while x + run < W and px[x + run, y] == p:
                run += 1
            if run >= 15 and max(p) - min(p) > 40:
                found.setdefault(p, x)
            x += run
    return found


exec(sys.argv[2])
PY
        pass "$name" "$(tail -n 1 "$work/check.txt")"
    else
        fail "$name" "$(tail -n 3 "$work/check.txt" | tr '\n' ' ')"
    fi
}

if ./dydit plot --panels "$a:loss,$a:flops_ratio:0.5" --out "$work/panels.png" 2>"$work/err.txt"; then
    check_png panels "$work/panels.png" '
assert (W, H) == (720, 600), (W, H)
for top in (0, 300):
    ax, ay = panel_frame(top)
    text_bands(top, ax, ay)
    colours = curve_colours(top, ax, ay)
    assert len(colours) == 1, colours
    (colour,) = colours
    # loss 50.5 -> 10.5; flops_ratio 0.9 -> 0.5
    want = 50.5 / 10.5 if top == 0 else 0.9 / 0.5
    got = height_at(colour, ax + 2, ay, top) / height_at(colour, W - 17, ay, top)
    assert abs(got / want - 1) < 0.05, (top, got, want)
    assert set(legend_swatches(ay, top + 300)) == {colour}
# the dashed target 0.5 at the curve end height in panel 2
ax, ay = panel_frame(300)
grey = [y for y in range(300, ay) if sum(px[x, y] == (130, 130, 130) for x in range(ax, W)) > 100]
assert grey and abs((ay - grey[0]) - height_at(colour, W - 17, ay, 300)) <= 2, grey
print("720x600; curve heights in the ratio of the values; title, tick values, axis label, legend")'
else
    fail panels "$(cat "$work/err.txt")"
fi

if ./dydit plot --logs "$a,$b" --field loss:20 --out "$work/overlay.png" 2>"$work/err.txt"; then
    check_png overlay "$work/overlay.png" '
assert (W, H) == (720, 300), (W, H)
ax, ay = panel_frame(0)
text_bands(0, ax, ay)
colours = sorted(curve_colours(0, ax, ay), key=lambda c: -height_at(c, ax + 2, ay, 0))
assert len(colours) == 2, colours
ca, cb = colours  # a starts high, b low
for c, first, last in ((ca, 50.5, 10.5), (cb, 10.5, 50.5)):
    got = height_at(c, ax + 2, ay, 0) / height_at(c, W - 17, ay, 0)
    assert abs(got / (first / last) - 1) < 0.05, (c, got)
swatches = legend_swatches(ay, H)
assert ca in swatches and cb in swatches and swatches[ca] < swatches[cb], swatches
assert (130, 130, 130) not in swatches  # the reference entry is dashed
grey = [y for y in range(0, ay) if sum(px[x, y] == (130, 130, 130) for x in range(ax, W)) > 100]
want = height_at(ca, ax + 2, ay, 0) * 20 / 50.5
assert grey and abs((ay - grey[0]) - want) <= 2, (grey, want)
print(f"two runs in {ca} and {cb}, legend in the same order, target line at 20")'
else
    fail overlay "$(cat "$work/err.txt")"
fi

printf '{"step":0,"loss":1}\nnot json\n' >"$work/broken.jsonl"
expect_error missing_key "fewer than 2 lines" ./dydit plot --panels "$a:nokey" --out "$work/q.png"
expect_error missing_field "fewer than 2 lines" ./dydit plot --logs "$a,$b" --field flops_ratio --out "$work/q.png"
expect_error not_json "line 2" ./dydit plot --logs "$work/broken.jsonl" --field loss --out "$work/q.png"
expect_error bad_spec "FILE:KEY" ./dydit plot --panels "$a" --out "$work/q.png"
expect_error bad_reference "not a number" ./dydit plot --panels "$a:loss:abc" --out "$work/q.png"
expect_error no_file "cannot open" ./dydit plot --panels "$work/none.jsonl:loss" --out "$work/q.png"
expect_error missing_log "cannot open" ./dydit plot --logs "$a,$work/none.jsonl" --field loss --out "$work/q.png"
expect_error logs_without_field "go together" ./dydit plot --logs "$a" --out "$work/q.png"
expect_error both_forms "either --panels or --logs" ./dydit plot --panels "$a:loss" --logs "$a" --field loss \
    --out "$work/q.png"
[ -e "$work/q.png" ] && fail no_output "a failed plot left $work/q.png"
exit $status
