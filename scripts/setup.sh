#!/usr/bin/env bash
# setup.sh: make this Debian machine ready to run berth and its tests.
#
#   scripts/setup.sh
#
# Run it as root, or as a user who may sudo: it then asks sudo for root
# itself (a machine where root has no sudo is fine, as root needs none).
#
# It installs Docker and the tools the tests use from Debian's packages,
# starts dockerd when no engine answers (also where there is no systemd),
# makes the base image debian:bookworm-slim offline when it cannot be pulled,
# and builds berth into /usr/local/bin. Running it again changes nothing that
# is already in place.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
	if ! command -v sudo >/dev/null 2>&1; then
		printf 'setup: needs root, and sudo is not installed: run it as root (su -c %s)\n' "$0" >&2
		exit 1
	fi
	exec sudo --preserve-env=PATH,GOPATH,GOCACHE,GOFLAGS,GOPROXY "$0" "$@"
fi

repo=$(cd "$(dirname "$0")/.." && pwd)
base_image=debian:bookworm-slim
packages=(docker.io docker-compose debootstrap iproute2 iptables ca-certificates curl git make)

say() { printf 'setup: %s\n' "$*"; }
die() {
	printf 'setup: %s\n' "$*" >&2
	exit 1
}

install_packages() {
	local missing=() p
	for p in "${packages[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
	done
	if [ ${#missing[@]} -eq 0 ]; then
		say "packages already installed: ${packages[*]}"
		return
	fi
	say "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

engine_answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

start_dockerd() {
	if engine_answers; then
		say "docker engine $(docker version --format '{{.Server.Version}}') is running"
		return
	fi
	say "starting dockerd (log: /var/log/dockerd.log)"
	# setsid detaches it from this script's session, so it outlives the
	# script and a CI step; there may be no init system to own it.
	setsid dockerd >/var/log/dockerd.log 2>&1 </dev/null &
	local deadline=$((SECONDS + 60))
	until engine_answers; do
		[ $SECONDS -lt $deadline ] || die "dockerd did not answer within 60s; see /var/log/dockerd.log"
		sleep 1
	done
	say "docker engine $(docker version --format '{{.Server.Version}}') is running"
}

# apt_mirror prints the Debian mirror this machine's apt uses, so debootstrap
# fetches from the same place apt can reach.
apt_mirror() {
	local uri
	uri=$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list |
		grep -v -e security -e '\[' | sed -E 's/^URIs:[[:space:]]*//; s/^deb[[:space:]]+//' |
		awk '{print $1}' | grep -E '/debian/?$' | head -n1)
	[ -n "$uri" ] || die "cannot find a Debian mirror in /etc/apt/sources.list*; add one and run again"
	printf '%s\n' "$uri"
}

make_base_image() {
	if docker image inspect "$base_image" >/dev/null 2>&1; then
		say "base image $base_image is present"
		return
	fi
	if timeout 120 docker pull -q "$base_image" >/dev/null 2>&1; then
		say "pulled $base_image"
		return
	fi
	local dir mirror
	mirror=$(apt_mirror)
	dir=$(mktemp -d /tmp/berth-rootfs.XXXXXX)
	say "no registry answers: building $base_image with debootstrap from $mirror (a few minutes)"
	debootstrap --variant=minbase bookworm "$dir" "$mirror" >/var/log/berth-debootstrap.log 2>&1 ||
		die "debootstrap failed; see /var/log/berth-debootstrap.log"
	# Trim what a slim image leaves out, then import it under the same tag a
	# pull would give, so Dockerfiles work here and anywhere else unchanged.
	rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/usr/share/doc/* \
		"$dir"/usr/share/man/* "$dir"/usr/share/info/*
	tar -C "$dir" -c . | docker import --change 'CMD ["bash"]' - "$base_image" >/dev/null
	rm -rf "$dir"
	say "imported $base_image"
}

find_go() {
	local g
	for g in "$(command -v go 2>/dev/null || true)" /usr/local/go/bin/go; do
		[ -n "$g" ] && [ -x "$g" ] && {
			printf '%s\n' "$g"
			return
		}
	done
	die "Go is not installed: install Go $(awk '/^go /{print $2}' "$repo/go.mod") or newer (https://go.dev/dl) and run again"
}

build_berth() {
	local gobin
	gobin=$(find_go)
	say "building berth with $("$gobin" env GOVERSION) into /usr/local/bin/berth"
	(cd "$repo" && "$gobin" build -o /usr/local/bin/berth ./cmd/berth)
}

install_packages
start_dockerd
make_base_image
build_berth
say "done: try 'berth up -f examples/hello/compose.yaml'"
