#!/usr/bin/env bash
# Prints the version of the git checkout (default: this one) in a form that
# sorts right with dpkg --compare-versions:
#   at a tag vX.Y.Z (or X.Y.Z)      X.Y.Z
#   N commits after it              X.Y.Z+gitN.HASH
#   no tag at all                   0.0.0+gitN.HASH, N counting every commit
#   uncommitted changes             ... with .dirty (+dirty at a tag)
# so every build sorts after the ones before it on the same branch.
set -euo pipefail
cd "${1:-$(dirname "$0")/..}"
if ! git rev-parse --verify -q HEAD >/dev/null 2>&1; then
	echo 0.0.0
	exit 0
fi
dirty=
git diff-index --quiet HEAD -- 2>/dev/null || dirty=1
if d=$(git describe --tags --long --abbrev=12 --match 'v[0-9]*' --match '[0-9]*' 2>/dev/null) &&
	[[ $d =~ ^v?([0-9][0-9A-Za-z.~]*)-([0-9]+)-g([0-9a-f]+)$ ]]; then
	base=${BASH_REMATCH[1]} n=${BASH_REMATCH[2]} hash=${BASH_REMATCH[3]}
	if [[ $n == 0 ]]; then
		echo "$base${dirty:++dirty}"
	else
		echo "$base+git$n.$hash${dirty:+.dirty}"
	fi
	exit 0
fi
echo "0.0.0+git$(git rev-list --count HEAD).$(git rev-parse --short=12 HEAD)${dirty:+.dirty}"
