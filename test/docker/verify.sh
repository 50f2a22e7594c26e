#!/bin/bash
# Builds the Dockerfile without a Docker engine and checks the image's first-run flow.
#
#   sudo test/docker/verify.sh [WORKDIR]
#
# How: no registry is needed. The two base images the Dockerfile names are made locally and tagged
# with the names it uses, then buildah builds the Dockerfile unchanged:
#   debian:<release>-slim      debootstrap --variant=minbase <release> from the Debian mirror apt uses;
#   golang:<go>-<release>      the same rootfs plus what the official golang image adds (gcc, g++,
#                              libc6-dev, make, pkg-config, git, ca-certificates) and the Go toolchain
#                              golang.org/toolchain@v0.0.1-go<go>.linux-<arch>, downloaded and
#                              checksum-verified by `go mod download` through the module proxy.
# Then podman runs the image against an empty, root-owned data directory: the first run must write
# config.yaml (0600, owned by the bridge user), the second must refuse until the homeserver is set,
# the third must write registration.yaml, the fourth must start the bridge, which then fails on the
# unreachable homeserver with a clear message. The runtime image must hold no compiler.
#
# Needs root, apt-get (installs buildah, podman, runc, debootstrap if missing) and the network reaching the
# Debian mirror and the Go module proxy. Everything it creates stays in WORKDIR (a temp dir by default):
# image storage included; nothing is left running.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${1:-$(mktemp -d /tmp/sealbridge-docker-verify.XXXXXX)}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
LOG="$WORK/verify.log"
step() { printf '\n=== %s\n' "$*" | tee -a "$LOG"; }
ok() { printf 'ok: %s\n' "$*" | tee -a "$LOG"; }
fail() {
	printf 'FAIL: %s\n' "$*" | tee -a "$LOG" >&2
	exit 1
}

[ "$(id -u)" = 0 ] || fail "run as root (debootstrap, chroot and image storage need it)"

# --- What the Dockerfile and go.mod say -------------------------------------------------------------
dockerfile_arg() { sed -n "s/^ARG $1=//p" "$REPO/Dockerfile" | head -n1; }
GO_VERSION=$(dockerfile_arg GO_VERSION)
RELEASE=$(dockerfile_arg DEBIAN_RELEASE)
GOMOD_GO=$(sed -n 's/^go //p' "$REPO/go.mod")
[ -n "$GO_VERSION" ] && [ -n "$RELEASE" ] || fail "GO_VERSION or DEBIAN_RELEASE not found in the Dockerfile"
[ "$GO_VERSION" = "$GOMOD_GO" ] || fail "Dockerfile GO_VERSION $GO_VERSION differs from go.mod's go $GOMOD_GO"
ok "Dockerfile builds with Go $GO_VERSION (go.mod: go $GOMOD_GO) on Debian $RELEASE"
GOLANG_IMAGE="docker.io/library/golang:$GO_VERSION-$RELEASE"
DEBIAN_IMAGE="docker.io/library/debian:$RELEASE-slim"
IMAGE="localhost/sealbridge:verify"
grep -q "^FROM golang:\${GO_VERSION}-\${DEBIAN_RELEASE} AS builder" "$REPO/Dockerfile" || fail "unexpected builder FROM line"
grep -q "^FROM debian:\${DEBIAN_RELEASE}-slim" "$REPO/Dockerfile" || fail "unexpected runtime FROM line"

MIRROR=$(grep -rhoE '(URIs:|^deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null |
	grep -oE 'https?://[^ ]+' | head -n1 || true)
MIRROR=${MIRROR:-http://deb.debian.org/debian}

# --- Tools ------------------------------------------------------------------------------------------
need=()
for t in buildah podman runc debootstrap; do command -v "$t" >/dev/null || need+=("$t"); done
if [ ${#need[@]} -gt 0 ]; then
	step "Installing ${need[*]} from Debian"
	apt-get update -qq >>"$LOG" 2>&1
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" uidmap >>"$LOG" 2>&1
fi
command -v go >/dev/null || fail "a Go toolchain (any version >= 1.21) is needed to fetch the image's toolchain"
ok "$(buildah --version), $(podman --version)"

# Image storage private to WORKDIR (vfs: works on any filesystem, no fuse or overlay needed).
STORE=(--root "$WORK/storage" --runroot "$WORK/runroot" --storage-driver vfs)
bah() { buildah "${STORE[@]}" "$@"; }
# runc and explicit ulimits: they work where the host's limits or cgroup layout upset crun.
pod() { podman "${STORE[@]}" --runtime runc --cgroup-manager cgroupfs --events-backend file "$@"; }

MOUNTS=()
cleanup() {
	for m in "${MOUNTS[@]}"; do umount "$m" 2>/dev/null || true; done
	pod rm -af >/dev/null 2>&1 || true
}
trap cleanup EXIT

# --- Base images ------------------------------------------------------------------------------------
if [ ! -x "$WORK/rootfs/usr/bin/apt-get" ]; then
	step "debootstrap --variant=minbase $RELEASE from $MIRROR"
	rm -rf "$WORK/rootfs"
	debootstrap --variant=minbase "$RELEASE" "$WORK/rootfs" "$MIRROR" >>"$LOG" 2>&1 || fail "debootstrap (see $LOG)"
fi
# Trim it the way the official -slim images are: no .deb cache, apt lists, docs, man pages or locales,
# now or in later apt-get installs.
chroot "$WORK/rootfs" apt-get clean
rm -rf "$WORK/rootfs/var/lib/apt/lists/"* "$WORK/rootfs/usr/share/doc/"* "$WORK/rootfs/usr/share/man/"* \
	"$WORK/rootfs/usr/share/info/"* "$WORK/rootfs/usr/share/locale/"*
cat >"$WORK/rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
EOF
step "Importing $DEBIAN_IMAGE from the debootstrapped rootfs ($(du -sm "$WORK/rootfs" | cut -f1) MiB)"
tar -C "$WORK/rootfs" -c . | pod import --change 'CMD ["bash"]' - "$DEBIAN_IMAGE" >>"$LOG"
ok "$DEBIAN_IMAGE"

ARCH=$(dpkg --print-architecture)
TOOLCHAIN="golang.org/toolchain@v0.0.1-go$GO_VERSION.linux-$ARCH"
if [ ! -x "$WORK/golang-rootfs/usr/local/go/bin/go" ]; then
	step "Building $GOLANG_IMAGE: rootfs + gcc, libc6-dev, git + $TOOLCHAIN"
	rm -rf "$WORK/golang-rootfs"
	cp -a "$WORK/rootfs" "$WORK/golang-rootfs"
	mount -t proc proc "$WORK/golang-rootfs/proc" && MOUNTS+=("$WORK/golang-rootfs/proc")
	cp /etc/resolv.conf "$WORK/golang-rootfs/etc/resolv.conf"
	chroot "$WORK/golang-rootfs" apt-get update -qq >>"$LOG" 2>&1
	DEBIAN_FRONTEND=noninteractive chroot "$WORK/golang-rootfs" apt-get install -y -qq --no-install-recommends \
		ca-certificates git g++ gcc libc6-dev make pkg-config >>"$LOG" 2>&1 || fail "apt-get in the golang rootfs (see $LOG)"
	chroot "$WORK/golang-rootfs" apt-get clean
	rm -rf "$WORK/golang-rootfs/var/lib/apt/lists/"*
	umount "$WORK/golang-rootfs/proc"
	dir=$(cd "$WORK" && GOMODCACHE="$WORK/gomodcache" GOFLAGS=-modcacherw GOTOOLCHAIN=local \
		go mod download -json "$TOOLCHAIN" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[ -f "$dir/bin/go" ] || fail "could not download $TOOLCHAIN through the module proxy"
	cp -a "$dir" "$WORK/golang-rootfs/usr/local/go"
	# Module zips carry no file modes: restore them as the go command does when it switches toolchains.
	chmod -R u+w,a+rX "$WORK/golang-rootfs/usr/local/go"
	chmod a+x "$WORK/golang-rootfs/usr/local/go/bin/"* "$WORK/golang-rootfs/usr/local/go/pkg/tool/"*/*
	mkdir -p "$WORK/golang-rootfs/go/bin" "$WORK/golang-rootfs/go/src"
fi
# If this machine reaches the network through a TLS-intercepting proxy whose CA is installed locally
# (/usr/local/share/ca-certificates), the builder needs to trust it for the module proxy as well. The
# official golang image is not changed by this; a machine with direct access has nothing to copy.
if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
	cp /usr/local/share/ca-certificates/*.crt "$WORK/golang-rootfs/usr/local/share/ca-certificates/"
	chroot "$WORK/golang-rootfs" update-ca-certificates >>"$LOG" 2>&1
	ok "builder trusts this machine's local CAs: $(cd /usr/local/share/ca-certificates && echo *.crt)"
fi
# The same environment as the official golang image.
tar -C "$WORK/golang-rootfs" -c . | pod import \
	--change "ENV GOLANG_VERSION=$GO_VERSION" --change "ENV GOTOOLCHAIN=local" --change "ENV GOPATH=/go" \
	--change "ENV PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
	--change "WORKDIR /go" - "$GOLANG_IMAGE" >>"$LOG"
ok "$GOLANG_IMAGE (toolchain $(head -n1 "$WORK/golang-rootfs/usr/local/go/VERSION"))"

# --- Build the Dockerfile unchanged ------------------------------------------------------------------
step "Build context: tracked and untracked (not ignored) files of the working tree"
rm -rf "$WORK/context" && mkdir -p "$WORK/context"
(cd "$REPO" && git ls-files -z -co --exclude-standard | while IFS= read -r -d '' f; do
	[ -e "$f" ] && printf '%s\0' "$f"
done | tar --null -T - -cf - | tar -C "$WORK/context" -xf -)
VERSION=$(git -C "$REPO" describe --tags --always 2>/dev/null || echo "")
COMMIT=$(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo unknown)
GOPROXY_ARG=$(go env GOPROXY)

step "buildah bud (isolation chroot, host network, no pulls)"
start=$(date +%s)
if [ "${REUSE_IMAGE:-}" = 1 ] && bah inspect --type image "$IMAGE" >/dev/null 2>&1; then
	echo "REUSE_IMAGE=1: keeping the $IMAGE built by an earlier run" | tee -a "$LOG"
else bah bud --isolation chroot --network host --pull-never --layers=false \
	--build-arg VERSION="$VERSION" --build-arg COMMIT="$COMMIT" --build-arg GOPROXY="$GOPROXY_ARG" \
	-t "$IMAGE" -f "$WORK/context/Dockerfile" "$WORK/context" 2>&1 | tee -a "$LOG" | grep -E '^(STEP|COMMIT|sealbridge|Error|error)' || true
fi
bah inspect --type image "$IMAGE" >/dev/null 2>&1 || fail "the image did not build (see $LOG)"
ok "built $IMAGE in $(($(date +%s) - start)) s"

# --- Inspect the runtime image ----------------------------------------------------------------------
step "Runtime image contents"
bah inspect --type image "$IMAGE" >"$WORK/image.json"
python3 - "$WORK/image.json" <<'PY' | tee -a "$LOG" || fail "image config (see above)"
import json, sys
c = json.load(open(sys.argv[1]))["OCIv1"]["config"]
print("config:", json.dumps({k: c.get(k) for k in ("User", "Entrypoint", "Cmd", "WorkingDir", "Volumes", "ExposedPorts")}))
assert c["Entrypoint"] == ["/usr/local/bin/sealbridge-entrypoint"], "entrypoint"
assert "/data" in c.get("Volumes", {}), "no /data volume"
assert c["WorkingDir"] == "/data", "working directory"
assert "29355/tcp" in c.get("ExposedPorts", {}), "port 29355 not exposed"
PY
ok "entrypoint, VOLUME /data, WORKDIR /data, EXPOSE 29355"
size=$(pod image inspect --format '{{.Size}}' "$IMAGE")
ok "image size $((size / 1024 / 1024)) MiB"
ctr=$(bah from --pull-never "$IMAGE")
mnt=$(bah mount "$ctr")
for c in gcc cc g++ go as ld; do
	for d in usr/bin usr/local/bin bin usr/local/go/bin; do
		[ ! -e "$mnt/$d/$c" ] || fail "runtime image has a compiler/toolchain: /$d/$c"
	done
done
ok "no gcc, cc, g++, go, as or ld in the runtime image"
[ -x "$mnt/usr/bin/setpriv" ] || fail "setpriv missing"
[ -e "$mnt/etc/ssl/certs/ca-certificates.crt" ] || fail "CA certificates missing"
grep -q '^sealbridge:x:1337:1337:' "$mnt/etc/passwd" || fail "no sealbridge user with UID 1337"
ok "setpriv, CA bundle and the sealbridge user (1337) present"
chroot "$mnt" /usr/bin/ldd /usr/local/bin/sealbridge 2>&1 | tee -a "$LOG" | grep -q 'not found' && fail "unresolved shared library"
ok "the binary's shared libraries all resolve in the runtime image ($(chroot "$mnt" /usr/bin/ldd /usr/local/bin/sealbridge | wc -l) entries)"
chroot "$mnt" /usr/local/bin/sealbridge --version | tee -a "$LOG"
bah umount "$ctr" >/dev/null
bah rm "$ctr" >/dev/null

# --- First-run flow -----------------------------------------------------------------------------------
DATA="$WORK/data"
rm -rf "$DATA" && mkdir -m 0755 "$DATA" # root-owned, like a fresh bind mount
run() { pod run --rm --network host --ulimit nofile=4096:4096 --ulimit nproc=4096:4096 -v "$DATA:/data" "$@"; }

step "Run 1: empty, root-owned /data"
run "$IMAGE" >"$WORK/run1.log" 2>&1 || { cat "$WORK/run1.log"; fail "run 1 exited non-zero"; }
cat "$WORK/run1.log" | tee -a "$LOG"
[ "$(stat -c '%a %u:%g' "$DATA/config.yaml")" = "600 1337:1337" ] || fail "config.yaml: $(stat -c '%a %u:%g' "$DATA/config.yaml")"
[ "$(stat -c '%a %u:%g' "$DATA")" = "700 1337:1337" ] || fail "/data: $(stat -c '%a %u:%g' "$DATA")"
grep -qxF '    uri: file:/data/sealbridge.db?_txlock=immediate&_stmt_cache_size=64' "$DATA/config.yaml" || fail "database uri not rewritten"
grep -qxF '    hostname: 0.0.0.0' "$DATA/config.yaml" || fail "appservice.hostname not 0.0.0.0"
grep -qxF '    require: true' "$DATA/config.yaml" || fail "encryption.require not on"
grep -q 'homeserver.address' "$WORK/run1.log" || fail "run 1 did not explain the next step"
ok "config.yaml written (0600, 1337:1337), /data 0700, database file:/data/sealbridge.db, next step explained"

step "Run 2: config not edited yet"
if run "$IMAGE" >"$WORK/run2.log" 2>&1; then fail "run 2 should refuse an unedited config"; fi
cat "$WORK/run2.log" | tee -a "$LOG"
[ ! -e "$DATA/registration.yaml" ] || fail "registration written from an unedited config"
ok "refused with a message"

step "Run 3: after setting homeserver.address/domain and permissions"
sed -i 's#^    address: http://example.localhost:8008$#    address: http://127.0.0.1:9#;
	s#^    domain: example.com$#    domain: sealbridge.test#;
	s#^        "example.com": user$#        "sealbridge.test": user#' "$DATA/config.yaml"
run "$IMAGE" >"$WORK/run3.log" 2>&1 || { cat "$WORK/run3.log"; fail "run 3 exited non-zero"; }
cat "$WORK/run3.log" | tee -a "$LOG"
[ "$(stat -c '%a %u:%g' "$DATA/registration.yaml")" = "600 1337:1337" ] || fail "registration.yaml mode/owner"
grep -q '^as_token: ' "$DATA/registration.yaml" || fail "registration has no as_token"
! grep -q 'This value is generated when generating the registration' "$DATA/config.yaml" || fail "tokens not in config"
ok "registration.yaml written (0600, 1337:1337), tokens in config.yaml"

step "Run 4: the bridge starts (homeserver unreachable on purpose; stopped after 90 s)"
set +e
timeout 90 podman "${STORE[@]}" --runtime runc --cgroup-manager cgroupfs --events-backend file run --rm \
	--network host --ulimit nofile=4096:4096 --ulimit nproc=4096:4096 -v "$DATA:/data" "$IMAGE" >"$WORK/run4.log" 2>&1
rc=$?
set -e
plain=$(sed 's/\x1b\[[0-9;]*m//g' "$WORK/run4.log")
grep -E 'Initializing bridge|Starting HTTP listener|Failed to connect to homeserver' <<<"$plain" | head -n 4 | tee -a "$LOG"
# mautrix keeps retrying an unreachable homeserver every 10 s after the first minute; it does not exit.
[ "$rc" = 124 ] || fail "run 4: the bridge exited by itself (exit $rc)"
grep -q 'Starting HTTP listener address=0.0.0.0:29355' <<<"$plain" || fail "no appservice listener"
grep -q 'Failed to connect to homeserver, retrying in 10 seconds.*connection refused' <<<"$plain" ||
	fail "no clear homeserver error"
[ -s "$DATA/sealbridge.db" ] && [ "$(stat -c '%a %u' "$DATA/sealbridge.db")" = "600 1337" ] || fail "database file"
ok "bridge ran as UID 1337, created /data/sealbridge.db (0600), listened on 0.0.0.0:29355, and reported the unreachable homeserver"

step "Run 5: --user 1337:1337 (no root at all)"
run --user 1337:1337 "$IMAGE" --version >"$WORK/run5.log" 2>&1 || { cat "$WORK/run5.log"; fail "--user run"; }
grep -q '^sealbridge ' "$WORK/run5.log" || fail "--user run: $(cat "$WORK/run5.log")"
ok "runs with --user 1337:1337 too: $(cat "$WORK/run5.log")"

printf '\nALL CHECKS PASSED (log: %s)\n' "$LOG"
