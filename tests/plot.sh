#!/usr/bin/env bash
# dydit plot: panels of a JSON-lines log read back by PIL (size, the curve's colour where the data
# put it), and one-line errors. Usage, from the repository root: bash tests/plot.sh WORKDIR [PYTHON]
set -u
work=${1:?usage: bash tests/plot.sh WORKDIR [PYTHON]}/plot
python=${2:-/usr/bin/python3}
prefix=plot
mkdir -p "$work"
. tests/lib.sh
log=$work/log.jsonl
for s in 0 10 20 30 40; do echo "{\"step\":$s,\"loss\":$((50 - s)).5,\"flops_ratio\":0.$((9 - s / 10))}"; done >"$log"
echo '{"step":50,"note":"a line without the key is skipped"}' >>"$log"
if ./dydit plot --panels "$log:loss,$log:flops_ratio:0.5" --out "$work/p.png" 2>"$work/err.txt" &&
    "$python" - "$work/p.png" <<'PY'; then
import sys
from PIL import Image
im = Image.open(sys.argv[1]).convert("RGB")
assert im.size == (640, 480), im.size
# panel 2 (y offset 240): its axes span x 60..620, y 20..200 of the panel; the dashed reference at
# 0.5 and the curve from 0.9 down to 0.5 (ymax = 0.9 * 1.05)
blue = sum(1 for x in range(640) for y in range(240, 480) if im.getpixel((x, y)) == (31, 90, 200))
grey = sum(1 for x in range(640) for y in range(240, 480) if im.getpixel((x, y)) == (150, 150, 150))
assert blue > 300 and grey > 100, (blue, grey)
PY
    pass two_panels "640x480, curve and reference drawn"
else
    fail two_panels "$(cat "$work/err.txt")"
fi
expect_error missing_key "fewer than 2 lines" ./dydit plot --panels "$log:nokey" --out "$work/q.png"
expect_error bad_spec "FILE:KEY" ./dydit plot --panels "$log" --out "$work/q.png"
expect_error bad_reference "not a number" ./dydit plot --panels "$log:loss:abc" --out "$work/q.png"
expect_error no_file "cannot open" ./dydit plot --panels "$work/none.jsonl:loss" --out "$work/q.png"
exit $status
