#!/usr/bin/env bash
# tests/doc_citations.sh: every citation "docs/algorithm.md N" or "docs/algorithm.md N.M" in the
# repository's files (lists such as "2.4-2.7, 5" or "8.2 and 2.8" included) must name a section
# heading of docs/algorithm.md ("## N. ..." or "### N.M ..."). Prints one PASS line per cited
# section, one FAIL line per citation of a missing one. Only grep and sed: it takes well under a second.
# Usage: tests/doc_citations.sh [WORK_DIR] (run from the repository root, as tests/run.sh does).
set -u
cd "$(dirname "$0")/.."
prefix=doc_citations
work=${1:-$(mktemp -d)}
mkdir -p "$work"
status=0
. tests/lib.sh

doc=docs/algorithm.md
if [ ! -f "$doc" ]; then
    fail missing_document "$doc does not exist"
    exit 1
fi

# Section numbers that have a heading: "## 4. DyDiT training" -> 4, "### 4.6 ..." -> 4.6.
sed -n -E 's/^#{2,3} ([0-9]+(\.[0-9]+)?)\.? .*/\1/p' "$doc" | sort -u >"$work/doc_sections.txt"
if [ ! -s "$work/doc_sections.txt" ]; then
    fail headings "no numbered section headings in $doc"
    exit 1
fi

# The files to search: the tracked ones when this is a git checkout, else every text file of the
# tree outside build outputs and run directories.
if git ls-files >"$work/doc_files.txt" 2>/dev/null && [ -s "$work/doc_files.txt" ]; then
    :
else
    find . \( -name .git -o -name 'build*' -o -name runs -o -name .offline-deps \) -prune -o -type f -print |
        sed 's|^\./||' >"$work/doc_files.txt"
fi

# FILE:LINE:citation, one per citation.
num='[0-9]+(\.[0-9]+)?'
cite="docs/algorithm\.md $num((, ?| and |-)$num)*"
tr '\n' '\0' <"$work/doc_files.txt" | xargs -0 grep -HnoIE "$cite" 2>/dev/null >"$work/doc_cites.txt"

count=0
missing=0
: >"$work/doc_cited.txt"
while IFS= read -r hit; do
    where=${hit%%:docs/algorithm.md *}
    list=${hit#"$where":docs/algorithm.md }
    for n in $(printf '%s\n' "$list" | sed -E 's/(, ?| and |-)/ /g'); do
        count=$((count + 1))
        echo "$n" >>"$work/doc_cited.txt"
        if ! grep -qxF "$n" "$work/doc_sections.txt"; then
            fail "$n" "$where cites section $n, which $doc does not have"
            missing=$((missing + 1))
        fi
    done
done <"$work/doc_cites.txt"

if [ "$count" -eq 0 ]; then
    fail citations "no citation of $doc found"
    exit 1
fi
for n in $(sort -u "$work/doc_cited.txt" | sort -t. -k1,1n -k2,2n); do
    grep -qxF "$n" "$work/doc_sections.txt" && pass "$n" "cited $(grep -cxF "$n" "$work/doc_cited.txt") times"
done

# The document is the only reference cited: no other form of section citation may remain.
if tr '\n' '\0' <"$work/doc_files.txt" | xargs -0 grep -HnIE '\bSPEC( [0-9]|:|'"'"'s )' 2>/dev/null >"$work/doc_old.txt"; then
    fail old_citations "$(head -n 3 "$work/doc_old.txt" | tr '\n' ' ')"
else
    pass old_citations "every section citation names $doc"
fi
[ "$missing" -eq 0 ] && pass all_cited_sections_exist "$count section references"
exit $status
