#!/usr/bin/env bash
# The run directory and the output files never lose or damage a file, through the real program:
#  - pruning keeps the checkpoint just written (the one checkpoints/latest names) and checkpoints
#    of later steps (a longer run into the same directory); it never follows a symbolic link, so an
#    archive outside the run that a link points to stays whole;
#  - a run refused because --out cannot be created has not truncated its --log; a log the disk
#    refuses (/dev/full, a file-size limit) ends the run with one line, and so does a stdout report;
#    a second training into a locked run directory (a running one) is refused with one line;
#  - the outputs of sample, decode, convert and evaluate are all or nothing: an output that is a
#    directory, or the file of an input (also through a link), is refused before any work, and a
#    failure or a fatal signal leaves neither the outputs nor a temporary behind; an encode without
#    one readable image leaves nothing;
#  - option values that are not UTF-8 (stored as JSON) are refused before any work.
# Usage, from the repository root: bash tests/rundir.sh WORKDIR [PYTHON]
set -u
work=${1:?usage: bash tests/rundir.sh WORKDIR [PYTHON]}/rundir
prefix=rundir
source tests/lib.sh
rm -rf "$work"
mkdir -p "$work"
export OMP_NUM_THREADS=1

# a pixel-space model of 3 channels, so `dydit sample` makes images without a VAE
shape="--depth 1 --hidden 16 --heads 2 --patch 2 --in-channels 3 --input-size 4 --num-classes 2"
tiny="--synthetic-size 16 --batch 4 --log-every 1 --quiet --seed 3"
train() { ./dydit train $tiny "$@"; } # a resumed run takes the shape from its checkpoint
new_run() { train $shape "$@"; }

checkpoints() { ls "$1/checkpoints" | grep -v '^latest$' | tr '\n' ' '; }

# --- pruning ---------------------------------------------------------------------------------------
run=$work/prune
new_run --steps 6 --checkpoint-every 2 --keep-checkpoints 2 --out "$run" --log "$run/log.jsonl" 2>"$work/err.txt"
new_run --steps 2 --keep-checkpoints 2 --out "$run" 2>>"$work/err.txt" >/dev/null
latest=$(cat "$run/checkpoints/latest")
if [ "$latest" = step-0000002 ] && [ -f "$run/checkpoints/$latest/state.json" ] &&
    [ "$(checkpoints "$run")" = "step-0000002 step-0000004 step-0000006 " ]; then
    pass shorter_run_keeps_its_checkpoint "latest $latest; $(checkpoints "$run")"
else
    fail shorter_run_keeps_its_checkpoint "latest '$latest'; $(checkpoints "$run"); $(tail -n 2 "$work/err.txt")"
fi
if train --steps 3 --resume latest --out "$run" >/dev/null 2>"$work/err.txt"; then
    pass resume_after_shorter_run
else
    fail resume_after_shorter_run "$(tail -n 2 "$work/err.txt")"
fi

run=$work/links
archive=$work/archive
mkdir -p "$archive/inner" "$run/checkpoints"
echo keep >"$archive/model.safetensors"
echo keep >"$archive/inner/state.json"
ln -s "$archive" "$run/checkpoints/step-0000001"         # a checkpoint that is a link
new_run --steps 2 --checkpoint-every 2 --keep-checkpoints 1 --out "$run" 2>"$work/err.txt" >/dev/null
ln -s "$archive" "$run/checkpoints/step-0000002/archive" # a link inside a checkpoint pruning removes
ln -s "$archive/model.safetensors" "$run/checkpoints/step-0000002/extra.safetensors"
train --steps 4 --checkpoint-every 2 --keep-checkpoints 1 --resume latest --out "$run" 2>>"$work/err.txt" >/dev/null
if [ "$(cat "$archive/model.safetensors" "$archive/inner/state.json" 2>/dev/null)" = "$(printf 'keep\nkeep')" ] &&
    [ -L "$run/checkpoints/step-0000001" ] && [ ! -e "$run/checkpoints/step-0000002" ] &&
    [ -f "$run/checkpoints/step-0000004/state.json" ]; then
    pass prune_never_follows_links "$(checkpoints "$run")"
else
    fail prune_never_follows_links "archive: $(ls -R "$archive" | tr '\n' ' '); run: $(checkpoints "$run"); $(tail -n 2 "$work/err.txt")"
fi

# --- the log and the lock --------------------------------------------------------------------------
log=$work/kept.jsonl
echo '{"step":0}' >"$log"
touch "$work/a-file"
expect_error out_not_created "cannot create the run directory" new_run --steps 1 --out "$work/a-file/run" --log "$log"
if [ "$(cat "$log")" = '{"step":0}' ]; then pass log_kept_when_out_fails; else fail log_kept_when_out_fails "$(wc -c <"$log") bytes"; fi

expect_error log_full "/dev/full: cannot write the log" new_run --steps 2 --out "$work/full" --log /dev/full
expect_error stdout_log_full "stdout: cannot write the log" \
    sh -c "exec ./dydit train $shape $tiny --steps 2 --out $work/full2 >/dev/full"
# a limit of 1 block of 512 bytes: the log outgrows it within a few lines (writes fail with EFBIG)
expect_error log_file_size_limit "limit.jsonl: cannot write the log" \
    sh -c "trap '' XFSZ; ulimit -f 1; exec ./dydit train $shape $tiny --steps 40 --out $work/limit --log $work/limit.jsonl"

expect_error report_to_full_stdout "stdout: cannot write" \
    sh -c "exec ./dydit sample --weights $work/prune/ema.safetensors --num 2 --steps 2 --quiet --latents $work/l.st >/dev/full"

run=$work/locked
mkdir -p "$run"
exec 9>"$run/.lock" # this shell holds the lock, as a training into $run would
flock -n 9
expect_error second_writer_refused "another training is writing into this run directory" \
    new_run --steps 1 --out "$run" --log "$run/log.jsonl"
exec 9>&-
if [ ! -e "$run/log.jsonl" ] && [ ! -e "$run/checkpoints" ]; then pass second_writer_wrote_nothing; else
    fail second_writer_wrote_nothing "$(ls -A "$run" | tr '\n' ' ')"
fi
if new_run --steps 1 --out "$run" >/dev/null 2>"$work/err.txt"; then pass lock_released; else
    fail lock_released "$(tail -n 1 "$work/err.txt")"
fi

# two real trainings: the second is refused while the first runs, and the first ends as it would alone
run=$work/two
./dydit train $shape $tiny --steps 100000 --out "$run" --log "$run/log.jsonl" 2>"$work/first.err" &
first=$!
for _ in $(seq 100); do [ -s "$run/log.jsonl" ] && break; sleep 0.1; done
expect_error second_training_refused "another training is writing into this run directory" \
    new_run --steps 1 --out "$run" --log "$work/second.jsonl"
kill -TERM $first
wait $first
rc=$?
if [ $rc -eq 0 ] && [ ! -e "$work/second.jsonl" ] && [ -f "$run/checkpoints/$(cat "$run/checkpoints/latest")/state.json" ]; then
    pass first_training_unharmed "stopped at $(cat "$run/checkpoints/latest")"
else
    fail first_training_unharmed "status $rc; $(tail -n 2 "$work/first.err")"
fi

# --- outputs of one command: all or nothing, never over an input ---------------------------------
weights=$work/prune/ema.safetensors
cp "$weights" "$work/weights.safetensors"
weights=$work/weights.safetensors
out=$work/samples
mkdir -p "$out/dir"
no_temporaries() { # NAME DIR: nothing named *.tmp* is left in DIR
    local left
    left=$(find "$2" -name '*.tmp*' | tr '\n' ' ')
    if [ -z "$left" ]; then pass "$1"; else fail "$1" "left behind: $left"; fi
}
sample() { ./dydit sample --weights "$weights" --num 2 --steps 2 --quiet "$@"; }

expect_error grid_is_directory "--grid $out/dir is a directory" sample --npz "$out/a.npz" --grid "$out/dir"
if [ ! -e "$out/a.npz" ]; then pass npz_not_written_when_grid_fails; else fail npz_not_written_when_grid_fails "a.npz exists"; fi
no_temporaries no_temporaries_after_refusal "$out"

cp "$weights" "$work/before.safetensors"
expect_error latents_over_weights "refusing to overwrite an input" sample --latents "$weights"
ln -s "$weights" "$out/link.safetensors"
expect_error latents_over_weights_link "refusing to overwrite an input" sample --latents "$out/link.safetensors"
expect_error npz_over_weights "refusing to overwrite an input" sample --npz "$weights"
if cmp -s "$weights" "$work/before.safetensors"; then pass weights_unchanged; else fail weights_unchanged "differ"; fi
expect_error same_output_twice "name the same file" sample --npz "$out/b.npz" --latents "$out/b.npz"

# a failure after the outputs were declared (a VAE that does not exist): none is written, no temporary
expect_error failure_leaves_nothing "missing.safetensors" \
    sample --npz "$out/c.npz" --grid "$out/c.png" --vae "$work/missing.safetensors"
if [ ! -e "$out/c.npz" ] && [ ! -e "$out/c.png" ]; then pass no_partial_outputs; else fail no_partial_outputs "$(ls "$out")"; fi
no_temporaries no_temporaries_after_failure "$out"

if sample --npz "$out/d.npz" --grid "$out/d.png" --latents "$out/d.safetensors" >/dev/null 2>"$work/err.txt" &&
    [ -s "$out/d.npz" ] && [ -s "$out/d.png" ] && [ -s "$out/d.safetensors" ]; then
    pass all_outputs_written
else
    fail all_outputs_written "$(tail -n 2 "$work/err.txt")"
fi
no_temporaries no_temporaries_after_success "$out"

# a DyDiT's mask pictures are outputs too: refused before the work when their folder cannot be made
# (after the npz was begun, that left its temporary behind), written with the others otherwise
new_run --dynamic --steps 1 --out "$work/dyn" >/dev/null 2>&1
dyn_sample() { ./dydit sample --weights "$work/dyn/ema.safetensors" --num 2 --steps 2 --quiet "$@"; }
expect_error masks_folder_refused "--save-masks $work/a-file/masks: cannot create" \
    dyn_sample --npz "$out/e.npz" --save-masks "$work/a-file/masks"
if [ ! -e "$out/e.npz" ]; then pass npz_not_written_when_masks_fail; else fail npz_not_written_when_masks_fail "e.npz exists"; fi
no_temporaries no_temporaries_after_masks_refused "$out"
if dyn_sample --npz "$out/f.npz" --save-masks "$out/masks" >/dev/null 2>"$work/err.txt" && [ -s "$out/f.npz" ] &&
    [ "$(ls "$out/masks" | tr '\n' ' ')" = "flops.csv flops.png token_masks.png token_masks.txt " ]; then
    pass masks_written_with_npz
else
    fail masks_written_with_npz "$(ls "$out/masks" 2>&1 | tr '\n' ' '); $(tail -n 2 "$work/err.txt")"
fi
no_temporaries no_temporaries_after_masks "$out"

# a sampling run ended by SIGTERM or SIGHUP leaves no output and no temporary (SIGINT: this shell starts
# background commands with it ignored)
for sig in TERM HUP; do
    mkdir -p "$out/$sig"
    ./dydit sample --weights "$weights" --num 32 --batch 1 --steps 1000 --quiet --npz "$out/$sig/g.npz" \
        --grid "$out/$sig/g.png" 2>/dev/null &
    sampler=$!
    sleep 1
    kill -s $sig $sampler
    wait $sampler 2>/dev/null
    rc=$?
    if [ -z "$(ls -A "$out/$sig")" ] && [ $rc -ge 128 ]; then pass "killed_by_sig${sig}_leaves_nothing" "status $rc"; else
        fail "killed_by_sig${sig}_leaves_nothing" "status $rc; left: $(ls -A "$out/$sig" | tr '\n' ' ')"
    fi
done

expect_error decode_npz_over_latents "refusing to overwrite an input" \
    ./dydit decode --vae "$weights" --latents "$out/d.safetensors" --npz "$out/d.safetensors"
expect_error decode_out_is_directory "is a directory" \
    ./dydit decode --vae "$weights" --latents "$out/d.safetensors" --out "$out/dir"
expect_error convert_over_input "refusing to overwrite an input" ./dydit convert --in "$weights" --out "$weights"
expect_error convert_over_checkpoint "refusing to overwrite an input" \
    ./dydit convert --in "$work/prune" --out "$work/prune/checkpoints/step-0000003/ema.safetensors"
expect_error evaluate_out_is_directory "is a directory" ./dydit evaluate --train-classifier --out "$out/dir"
expect_error plot_over_log "refusing to overwrite an input" \
    ./dydit plot --panels "$work/prune/log.jsonl:loss" --out "$work/prune/log.jsonl"
expect_error forward_over_inputs "refusing to overwrite an input" \
    ./dydit forward --weights "$weights" --inputs "$out/d.safetensors" --out "$out/d.safetensors"
expect_error grad_over_weights "refusing to overwrite an input" \
    ./dydit grad --weights "$weights" --inputs "$out/d.safetensors" --out "$weights"
if cmp -s "$weights" "$work/before.safetensors"; then pass inputs_unchanged; else fail inputs_unchanged "differ"; fi

expect_error train_log_over_init "refusing to overwrite an input" \
    ./dydit train --init "$weights" --steps 1 --batch 4 --quiet --out "$work/t1" --log "$weights"
expect_error train_out_over_init "refusing to overwrite an input" \
    ./dydit train --init "$work/prune/model.safetensors" --steps 1 --batch 4 --quiet --out "$work/prune"
expect_error train_log_over_data "refusing to overwrite an input" \
    new_run --data "$out/d.safetensors" --steps 1 --out "$work/t2" --log "$out/d.safetensors"
expect_error train_log_over_resumed "refusing to overwrite an input" \
    train --steps 9 --resume latest --out "$work/prune" --log "$work/prune/checkpoints/step-0000003/state.json"
if cmp -s "$weights" "$work/before.safetensors" && [ ! -e "$work/t1" ] && [ ! -e "$work/t2" ]; then
    pass train_refused_before_work
else
    fail train_refused_before_work "weights changed or a run directory was made"
fi

# an encode of a folder whose every image is broken: one error line after the warnings, nothing left
mkdir -p "$work/broken/cat"
echo "not a jpeg" >"$work/broken/cat/a.jpg"
echo "not a png" >"$work/broken/cat/b.png"
./dydit encode --source folder --input "$work/broken" --out "$work/broken-shards" --encoder identity --image-size 8 \
    --quiet >/dev/null 2>"$work/err.txt"
rc=$?
if [ $rc -ne 0 ] && [ $rc -lt 128 ] && [ "$(grep -c '^error: ' "$work/err.txt")" = 1 ] &&
    grep -q 'no image could be read' "$work/err.txt" && [ ! -e "$work/broken-shards" ]; then
    pass encode_nothing_readable_leaves_nothing "$(grep '^error' "$work/err.txt")"
else
    fail encode_nothing_readable_leaves_nothing "status $rc; $(ls -A "$work/broken-shards" 2>&1 | tr '\n' ' '); $(tail -n 1 "$work/err.txt")"
fi

# --- values that are not UTF-8 --------------------------------------------------------------------
bad=$work/$'data-\xe9'
cp "$out/d.safetensors" "$bad"
expect_error train_data_not_utf8 "--data '$work/data-\\xe9' is not UTF-8" new_run --data "$bad" --steps 1 --out "$work/u1"
expect_error train_out_not_utf8 "is not UTF-8" new_run --steps 1 --out "$work/"$'run-\xff'
if [ ! -e "$work/u1" ] && [ -z "$(find "$work" -maxdepth 1 -name 'run-*')" ]; then pass not_utf8_refused_before_work; else
    fail not_utf8_refused_before_work "a run directory was made"
fi
expect_error encode_out_not_utf8 "is not UTF-8" \
    ./dydit encode --source folder --input "$work/broken" --out "$work/"$'shards-\xe9' --encoder identity
expect_error evaluate_out_not_utf8 "is not UTF-8" ./dydit evaluate --train-classifier --out "$work/"$'c-\xe9'

exit $status
