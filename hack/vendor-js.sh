#!/usr/bin/env bash
# hack/vendor-js.sh installs the console's browser packages (hack/web/package.json,
# exact versions, integrity-checked by hack/web/package-lock.json) with npm and copies
# the files the console serves into console/web/static/vendor, with their licences.
# The copies are committed: `go build` needs no npm and no network. Run it after
# changing a version (`make vendor-js`); `make verify` (VERIFY_VENDOR=1) checks that the
# committed copies are what the lock file gives.
#
#   hack/vendor-js.sh            write console/web/static/vendor
#   hack/vendor-js.sh --check    compare instead of writing; exit 1 when they differ
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dest=console/web/static/vendor
check=0
[ "${1:-}" = --check ] && check=1

command -v npm >/dev/null || { echo "vendor-js: npm not found (install Node.js and npm)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp hack/web/package.json hack/web/package-lock.json hack/web/.npmrc "$work/"
# npm ci installs exactly the lock file and fails if package.json disagrees with it.
(cd "$work" && npm ci --userconfig "$work/.npmrc" --no-audit --no-fund --loglevel=error >/dev/null)

out="$work/out"
mkdir -p "$out/xterm"
m="$work/node_modules/@xterm"
# UMD builds: they define the globals Terminal and FitAddon that console/web/static
# scripts use, with no module loader and no inline script (the console's CSP).
cp "$m/xterm/lib/xterm.js" "$m/xterm/css/xterm.css" "$m/xterm/LICENSE" "$out/xterm/"
cp "$m/addon-fit/lib/addon-fit.js" "$out/xterm/"
cp "$m/addon-fit/LICENSE" "$out/xterm/LICENSE.addon-fit"
# Source maps point at files that are not served; drop the comment so browsers do
# not ask for them.
sed -i '/^\/\/# sourceMappingURL=/d' "$out/xterm/xterm.js" "$out/xterm/addon-fit.js"
{
	echo "Vendored by hack/vendor-js.sh from hack/web/package-lock.json; do not edit."
	for p in xterm addon-fit; do
		node -e 'const p=require(process.argv[1]); console.log(p.name+" "+p.version+" "+p.license)' "$m/$p/package.json"
	done
} >"$out/VERSIONS"

if [ "$check" = 1 ]; then
	if ! diff -r -q "$out" "$root/$dest" >/dev/null; then
		diff -r -q "$out" "$root/$dest" >&2 || true
		echo "vendor-js: $dest differs from hack/web/package-lock.json: run 'make vendor-js' and commit" >&2
		exit 1
	fi
	echo "vendored JavaScript matches the lock file"
	exit 0
fi
rm -rf "${root:?}/$dest"
mkdir -p "$(dirname "$root/$dest")"
cp -r "$out" "$root/$dest"
echo "vendored into $dest:"
cat "$root/$dest/VERSIONS"
