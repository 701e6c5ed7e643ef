#!/usr/bin/env bash
# The repository stands alone: no tracked file refers to the folder that
# used to sit beside it (its relative path, dot-dot-slash "shared"), nor
# cites the design and API briefs by their old upper-case file names. The
# architecture and the contract are docs/design.md and docs/api.md, the
# peers are in bench/peers. Fails listing every hit.
# .ci/ is left out: CI configuration may name the CI machine's own paths.
# Usage: selfcontained.sh BUILD_DIR SOURCE_DIR (SOURCE_DIR must be a git
# checkout; otherwise, as in a source tarball, the check is skipped: exit
# 77, which ctest reports as a skip).
set -u
src=${2:?usage: selfcontained.sh BUILD_DIR SOURCE_DIR}
if ! command -v git >/dev/null 2>&1; then
    echo "SKIP: git not installed"
    exit 77
fi
if ! git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    echo "SKIP: $src is not a git checkout (nothing tracked to check)"
    exit 77
fi
# Built from pieces so that this file does not match itself.
dots='\.\.'
pattern="$dots/shared|(DESIGN|API)\\.md"
hits=$(git -C "$src" grep -n -I -E "$pattern" -- . ':(exclude).ci' 2>&1)
rc=$?
if [ $rc -eq 1 ]; then
    echo "selfcontained: no tracked file refers outside the repository"
    exit 0
fi
if [ $rc -ne 0 ]; then
    echo "selfcontained: git grep failed (status $rc): $hits"
    exit 1
fi
echo "selfcontained: tracked files refer to files outside the repository:"
echo "$hits" | sed 's/^/  /'
echo "Cite the repository's own docs instead (docs/design.md, docs/api.md, bench/peers/README.md)."
exit 1
