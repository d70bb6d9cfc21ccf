#!/usr/bin/env bash
# hack/tools.sh builds Berth's toolchain from the Go module proxy, once, into a cache
# outside the repository, and links the binaries into ./bin.
#
# Every tool is pinned by its own module under hack/tools/<tool>/ (go.mod + go.sum):
# that directory is the one place where tool versions live. A tool is rebuilt only when
# its go.mod/go.sum, its build flags or the Go version change, so a second run is a
# no-op that takes well under a second per tool.
#
# Environment:
#   BERTH_CACHE   cache root (default $HOME/.cache/berth); binaries go to $BERTH_CACHE/tools
#   BERTH_TOOLS   space-separated subset of tools to build (default: all); "up" is
#                 what `berth up` runs (make up)
# With --list it builds nothing and prints the binaries the selection provides.
#   BERTH_SKIP_APT=1  do not apt-get install what the tests need from Debian (runc, CNI
#                     plugins, iptables, tini, iproute2, systemd-analyze) when missing
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
tools_dir=$root/hack/tools
cache=${BERTH_CACHE:-$HOME/.cache/berth}/tools
bin=$root/bin
mkdir -p "$cache" "$bin"

log() { printf '[tools] %s\n' "$*" >&2; }

# mod_version prints the version that tool module $1 requires of module $2.
mod_version() { (cd "$tools_dir/$1" && go list -m -f '{{.Version}}' "$2"); }

# build TOOL "PKG[:BINARY] ..." [LDFLAGS] [TAGS]
# builds the packages of hack/tools/TOOL into a content-addressed cache directory.
# With --list, it only prints the binaries it would link into bin/.
build() {
	local tool=$1 pkgs=$2 ldflags=${3:-} tags=${4:-}
	if [ "$list" = 1 ]; then
		local p
		for p in $pkgs; do
			local pkg=${p%%:*} name=${p##*:}
			[ "$name" = "$p" ] && name=$(basename "$pkg")
			echo "$name"
		done
		return
	fi
	local key
	key=$( {
		cat "$tools_dir/$tool/go.mod" "$tools_dir/$tool/go.sum"
		echo "$pkgs|$ldflags|$tags|$(go env GOVERSION GOOS GOARCH)"
	} | sha256sum | cut -c1-16)
	local out=$cache/$tool-$key
	if [ ! -f "$out/.complete" ]; then
		local start=$SECONDS
		log "building $tool into $out (first build only; kube-apiserver and etcd take ~4 minutes each on 2 cores)"
		rm -rf "$out.tmp" && mkdir -p "$out.tmp"
		local p
		for p in $pkgs; do
			local pkg=${p%%:*} name=${p##*:}
			[ "$name" = "$p" ] && name=$(basename "$pkg")
			(cd "$tools_dir/$tool" && CGO_ENABLED=0 go build -trimpath -tags "$tags" \
				-ldflags "-s -w $ldflags" -o "$out.tmp/$name" "$pkg")
		done
		touch "$out.tmp/.complete"
		rm -rf "$out" && mv "$out.tmp" "$out"
		log "built $tool in $((SECONDS - start))s"
	fi
	local f
	for f in "$out"/*; do
		ln -sfn "$f" "$bin/$(basename "$f")"
	done
}

# BERTH_TOOLS=up is what `berth up` runs (`make up` builds only these): the
# apiserver, etcd, containerd, the registry, runc and the CNI plugins from apt, and
# the aws CLI (bin/pyclients) that the exports `berth up` prints are for.
# controller-gen, helm and golangci-lint are for development and `make test`.
up_tools="kube-apiserver etcd containerd registry apt pyclients"
if [ "${BERTH_TOOLS:-}" = up ]; then
	BERTH_TOOLS=$up_tools
fi
list=0
if [ "${1:-}" = --list ]; then
	list=1
fi

want() { [ -z "${BERTH_TOOLS:-}" ] || [[ " $BERTH_TOOLS " == *" $1 "* ]]; }

if want kube-apiserver; then
	# kubectl and client-go refuse an unparseable server version, so stamp the real one.
	kv=$(mod_version kube-apiserver k8s.io/kubernetes)
	minor=$(echo "$kv" | cut -d. -f2)
	vpkg=k8s.io/component-base/version
	build kube-apiserver "k8s.io/kubernetes/cmd/kube-apiserver" \
		"-X $vpkg.gitVersion=$kv -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=$minor -X $vpkg.gitTreeState=clean -X $vpkg.buildDate=1970-01-01T00:00:00Z"
fi
if want etcd; then
	build etcd "go.etcd.io/etcd/server/v3:etcd"
fi
if want controller-gen; then
	build controller-gen "sigs.k8s.io/controller-tools/cmd/controller-gen"
fi
if want containerd; then
	cv=$(mod_version containerd github.com/containerd/containerd/v2)
	build containerd "github.com/containerd/containerd/v2/cmd/containerd github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 github.com/containerd/containerd/v2/cmd/ctr" \
		"-X github.com/containerd/containerd/v2/version.Version=$cv" "no_btrfs no_devmapper no_zfs"
fi
if want registry; then
	build registry "github.com/distribution/distribution/v3/cmd/registry"
fi
if want golangci-lint; then
	gv=$(mod_version golangci-lint github.com/golangci/golangci-lint/v2)
	build golangci-lint "github.com/golangci/golangci-lint/v2/cmd/golangci-lint" "-X main.version=$gv"
fi
if want helm; then
	hv=$(mod_version helm helm.sh/helm/v3)
	build helm "helm.sh/helm/v3/cmd/helm" "-X helm.sh/helm/v3/internal/version.version=$hv"
fi

# The ECS API is tested with the clients ECS users have: the aws CLI and boto3, pinned
# in hack/tools/pyclients/requirements.txt, in a virtualenv of the cache linked as
# bin/pyclients. The virtualenv sees the system Python's packages, so a pinned version
# the machine already has is taken without a download.
if want pyclients && [ "$list" != 1 ]; then
	req=$tools_dir/pyclients/requirements.txt
	py=$(command -v python3 || true)
	if [ -z "$py" ]; then
		log "python3 is missing: the ECS API suites need it for the aws CLI and boto3"
	else
		key=$( { cat "$req"; "$py" --version; } | sha256sum | cut -c1-16)
		venv=$cache/pyclients-$key
		if [ ! -f "$venv/.complete" ]; then
			log "installing the aws CLI and boto3 ($(grep -v '^#' "$req" | tr '\n' ' ')) into $venv"
			rm -rf "$venv"
			"$py" -m venv --system-site-packages "$venv"
			"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
			# pip writes no entry point for a requirement the system already
			# satisfies: the CLI is then run as its module.
			if [ ! -x "$venv/bin/aws" ]; then
				printf '#!/bin/sh\nexec "%s/bin/python" -m awscli "$@"\n' "$venv" >"$venv/bin/aws"
				chmod +x "$venv/bin/aws"
			fi
			touch "$venv/.complete"
		fi
		ln -sfn "$venv" "$bin/pyclients"
	fi
elif [ "$list" = 1 ] && want pyclients; then
	echo pyclients
fi

# runc, the CNI plugins and tini come from Debian: containerd's shim execs runc, the
# agent's bridge networking uses the reference plugins, and tini is the task init.
# The tests also use ip (iproute2), systemd-analyze (the agent's unit file) and a
# static busybox (the ECS conformance suite's stand-in images); in CI they fail
# rather than skip when any of these is missing.

if [ "$list" = 1 ]; then
	want apt && echo runc
	want chromium && echo chromium
	exit 0
fi
if [ "${BERTH_SKIP_APT:-}" != 1 ] && want apt; then
	missing=()
	command -v runc >/dev/null 2>&1 || missing+=(runc)
	[ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
	command -v iptables >/dev/null 2>&1 || missing+=(iptables)
	# tini-static is the init process tasks with initProcessEnabled get.
	[ -x /usr/bin/tini-static ] || missing+=(tini)
	command -v ip >/dev/null 2>&1 || missing+=(iproute2)
	command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
	[ -x /bin/busybox ] || missing+=(busybox-static)
	# Debian's Chromium runs the console's browser tests headless (not needed by
	# `berth up`, so not in the "up" set).
	if want chromium; then
		command -v chromium >/dev/null 2>&1 || missing+=(chromium)
	fi
	if ((${#missing[@]})); then
		if [ "$(id -u)" = 0 ]; then
			log "installing ${missing[*]} with apt-get"
			apt-get update -qq >/dev/null
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
		else
			log "missing ${missing[*]}: install them (apt-get install ${missing[*]}) to run containers"
		fi
	fi
fi
log "tools ready in $bin"
