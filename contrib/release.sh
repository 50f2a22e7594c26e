#!/usr/bin/env bash
# `make release`: static sealbridge binaries for linux/amd64 and linux/arm64 in dist/, with
# SHA256SUMS. The version is the git tag (`git describe --tags --always`); tag the commit first
# (git tag vX.Y.Z) for a release build. cgo is needed (SQLite), so arm64 is cross-compiled with
# Debian's aarch64 toolchain (installed here when missing and run as root).
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
version=$(git describe --tags --always 2>/dev/null || echo dev)
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
built=$(date -u +%Y-%m-%dT%H:%M:%SZ)
out=dist
rm -rf "$out"
mkdir -p "$out"

if ! command -v aarch64-linux-gnu-gcc >/dev/null; then
	if [ "$(id -u)" != 0 ]; then
		echo "release: aarch64-linux-gnu-gcc missing; install gcc-aarch64-linux-gnu and libc6-dev-arm64-cross (or run as root)" >&2
		exit 1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends gcc-aarch64-linux-gnu libc6-dev-arm64-cross
fi

build() { # arch cc
	local arch=$1 cc=$2 bin="$out/sealbridge-$version-linux-$1"
	echo "release: building $bin"
	# Static: netgo and osusergo keep glibc's NSS out, so the binary needs no shared library.
	CGO_ENABLED=1 GOOS=linux GOARCH="$arch" CC="$cc" "$GO" build -trimpath \
		-tags goolm,netgo,osusergo,sqlite_omit_load_extension \
		-ldflags "-s -w -X main.Tag=$version -X main.Commit=$commit -X 'main.BuildTime=$built' -linkmode external -extldflags -static" \
		-o "$bin" ./cmd/sealbridge
	if ! file "$bin" | grep -q "statically linked"; then
		echo "release: $bin is not statically linked: $(file "$bin")" >&2
		exit 1
	fi
}
build amd64 gcc
build arm64 aarch64-linux-gnu-gcc
"$out/sealbridge-$version-linux-amd64" --version
if command -v qemu-aarch64-static >/dev/null; then
	qemu-aarch64-static "$out/sealbridge-$version-linux-arm64" --version
fi
(cd "$out" && sha256sum sealbridge-* > SHA256SUMS)
cat "$out/SHA256SUMS"
