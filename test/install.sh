#!/usr/bin/env bash
# Installs what sealbridge's end-to-end tests run against (see test/stack):
#   - Debian packages: InspIRCd 3, Anope 2.0, PostgreSQL 15, sqlite3 (to read
#     Dendrite's database), openssl;
#   - Dendrite v0.15.2 and its helper commands, built from test/tools into
#     test/tools/bin;
#   - soju v0.8.0 (sojuctl, sojudb) from the same module into test/tools/bin;
#   - the Matrix test client's npm packages (test/e2e/client), if present.
# Run as root on a fresh Debian 12 machine; idempotent, non-interactive, from
# any directory. The packages' own services are not left running or enabled:
# the tests start private instances with their own configs.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export DEBIAN_FRONTEND=noninteractive
export PATH="$PATH:/usr/local/go/bin"

packages=(inspircd anope postgresql sqlite3 openssl ca-certificates)
services=(inspircd anope postgresql)

log() { echo "install.sh [${SECONDS}s]: $*"; }

if [ "$(id -u)" != 0 ]; then
	echo "install.sh: run as root (apt-get install)" >&2
	exit 1
fi

# --- Debian packages -------------------------------------------------------
missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
		missing+=("$p")
	fi
done
if [ ${#missing[@]} -gt 0 ]; then
	log "installing ${missing[*]}"
	# Keep the packages' postinst scripts from starting their services
	# (invoke-rc.d asks policy-rc.d; 101 = action forbidden).
	policy=/usr/sbin/policy-rc.d
	added_policy=
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' > "$policy"
		chmod 755 "$policy"
		added_policy=1
	fi
	cleanup_policy() { if [ -n "$added_policy" ]; then rm -f "$policy"; fi; }
	trap cleanup_policy EXIT
	apt-get -o DPkg::Lock::Timeout=300 update -q
	apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${packages[@]}"
	cleanup_policy
	added_policy=
	trap - EXIT

	# Whatever started anyway (or will at boot) is stopped and disabled.
	for s in "${services[@]}"; do
		if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
			systemctl disable --now "$s" >/dev/null 2>&1 || true
		else
			if command -v systemctl >/dev/null 2>&1; then
				systemctl disable "$s" >/dev/null 2>&1 || true
			fi
			if [ -x "/etc/init.d/$s" ]; then
				"/etc/init.d/$s" stop >/dev/null 2>&1 || true
			fi
		fi
	done
else
	log "Debian packages already installed"
fi

# Check what test/stack relies on.
for f in /usr/sbin/inspircd /usr/sbin/anope /usr/lib/anope/modules/inspircd3.so \
	/usr/lib/anope/modules/m_sasl.so /usr/lib/postgresql/15/bin/initdb \
	/usr/lib/postgresql/15/bin/postgres /usr/bin/sqlite3; do
	[ -e "$f" ] || { echo "install.sh: $f missing after install" >&2; exit 1; }
done
for m in cap cgiirc ircv3 ircv3_accounttag ircv3_batch ircv3_capnotify ircv3_ctctags \
	ircv3_echomessage ircv3_msgid ircv3_servertime sasl services_account \
	spanningtree chanhistory ssl_gnutls; do
	[ -e "/usr/lib/inspircd/modules/m_$m.so" ] || { echo "install.sh: InspIRCd module m_$m.so missing" >&2; exit 1; }
done
id postgres >/dev/null 2>&1 || { echo "install.sh: no postgres OS user" >&2; exit 1; }

# --- Go tools: Dendrite and soju, from the tools module test/tools -------------
tools="$here/tools"

# build_tools NAME MODULE_CMD_PREFIX BIN...: builds the binaries into $tools/bin unless each is
# newer than the tools module's go.mod and go.sum.
build_tools() {
	local name=$1 prefix=$2
	shift 2
	local need_build= b
	for b in "$@"; do
		if [ ! -x "$tools/bin/$b" ] || [ "$tools/go.sum" -nt "$tools/bin/$b" ] || [ "$tools/go.mod" -nt "$tools/bin/$b" ]; then
			need_build=1
		fi
	done
	if [ -z "$need_build" ]; then
		log "$name binaries up to date"
		return
	fi
	log "building $name into $tools/bin (a few minutes the first time)"
	local pkgs=()
	for b in "$@"; do pkgs+=("$prefix/$b"); done
	(cd "$tools" && go build -o bin/ "${pkgs[@]}")
	for b in "$@"; do touch "$tools/bin/$b"; done
}

build_tools Dendrite github.com/element-hq/dendrite/cmd dendrite create-account generate-config generate-keys
# soju: the IRC bouncer with CHATHISTORY (test/stack/soju.go); its default build links SQLite
# through cgo (mattn/go-sqlite3).
build_tools soju git.sr.ht/~emersion/soju/cmd soju sojuctl sojudb

# --- Matrix test client (npm) -----------------------------------------------
client="$here/e2e/client"
if [ -f "$client/package.json" ]; then
	if ! command -v npm >/dev/null 2>&1; then
		log "npm not found: installing Debian's nodejs and npm"
		apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends nodejs npm
	fi
	if [ -d "$client/node_modules" ] && (cd "$client" && npm ls --all >/dev/null 2>&1); then
		# Not reinstalled: npm ci would delete node_modules under a running test.
		log "npm packages already installed in $client"
	elif [ -f "$client/package-lock.json" ]; then
		log "npm ci in $client"
		(cd "$client" && npm ci --no-audit --no-fund)
	else
		log "npm install in $client"
		(cd "$client" && npm install --no-audit --no-fund)
	fi
fi

# --- Synapse (Debian sid chroot) ---------------------------------------------
# BEGIN Synapse section (test/stack/synapse.go runs Synapse from this chroot).
# Synapse comes from Debian unstable's matrix-synapse package, installed into a
# minbase sid chroot that lives outside the work tree and survives between
# runs: $SEALBRIDGE_SYNAPSE_ROOT, default /var/lib/sealbridge-test/synapse-sid.
# It is built in a temp dir beside it and renamed into place only once
# `python3 -c 'import synapse'` works inside it, so an interrupted run never
# leaves a chroot that later runs trust. Set SEALBRIDGE_SKIP_SYNAPSE=1 to skip.
synapse_root="${SEALBRIDGE_SYNAPSE_ROOT:-/var/lib/sealbridge-test/synapse-sid}"

# synapse_mirror prints the Debian mirror apt on this machine uses (the first
# .../debian URI in sources.list or *.sources; not debian-security).
synapse_mirror() {
	if [ -n "${SEALBRIDGE_DEBIAN_MIRROR:-}" ]; then echo "$SEALBRIDGE_DEBIAN_MIRROR"; return; fi
	local m
	m="$( (cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
		awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }'
		cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
		awk 'tolower($1) == "uris:" { for (i = 2; i <= NF; i++) print $i }') |
		grep -E '^https?://[^ ]*/debian/?$' | head -n1)"
	echo "${m:-http://deb.debian.org/debian}"
}

# synapse_umount_under DIR unmounts everything mounted at or below DIR,
# deepest first (debootstrap or an interrupted run may leave /proc etc.).
synapse_umount_under() {
	local d mp
	d="$(realpath -m "$1")"
	awk -v d="$d" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r |
		while read -r mp; do umount -l "$mp" 2>/dev/null || true; done
}

# synapse_rm DIR removes a (half-made) chroot without crossing into mounts.
synapse_rm() {
	synapse_umount_under "$1"
	rm -rf --one-file-system "$1"
}

synapse_ok() {
	[ -x "$1/usr/bin/python3" ] && chroot "$1" python3 -c 'import synapse' >/dev/null 2>&1
}

if [ -n "${SEALBRIDGE_SKIP_SYNAPSE:-}" ]; then
	log "Synapse: skipped (SEALBRIDGE_SKIP_SYNAPSE)"
else
	mkdir -p "$(dirname "$synapse_root")"
	# One install at a time (two concurrent install.sh runs would race).
	exec {synapse_lock}>"$(dirname "$synapse_root")/.synapse-install.lock"
	flock "$synapse_lock"
	synapse_t0=$SECONDS
	# Leftovers of interrupted builds.
	for old in "$synapse_root".tmp.*; do
		if [ -e "$old" ]; then log "Synapse: removing leftover $old"; synapse_rm "$old"; fi
	done
	if synapse_ok "$synapse_root"; then
		log "Synapse already installed in $synapse_root"
	else
		if ! command -v debootstrap >/dev/null 2>&1; then
			log "installing debootstrap"
			apt-get -o DPkg::Lock::Timeout=300 update -q
			apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends debootstrap debian-archive-keyring
		fi
		mirror="$(synapse_mirror)"
		tmp="$(mktemp -d "$synapse_root.tmp.XXXXXX")"
		chmod 755 "$tmp"
		trap 'synapse_rm "$tmp"' EXIT
		log "Synapse: debootstrap --variant=minbase sid $tmp $mirror (about 2 minutes with the install)"
		debootstrap --variant=minbase sid "$tmp" "$mirror" >"$tmp.debootstrap.log" 2>&1 || {
			echo "install.sh: debootstrap failed:" >&2; tail -n 30 "$tmp.debootstrap.log" >&2
			tail -n 30 "$tmp/debootstrap/debootstrap.log" >&2 2>/dev/null || true
			rm -f "$tmp.debootstrap.log"; exit 1; }
		rm -f "$tmp.debootstrap.log"
		# No services start inside the chroot; apt needs /proc for some postinsts.
		printf '#!/bin/sh\nexit 101\n' >"$tmp/usr/sbin/policy-rc.d"
		chmod 755 "$tmp/usr/sbin/policy-rc.d"
		cp -L /etc/resolv.conf "$tmp/etc/resolv.conf" 2>/dev/null || true
		mount --bind /proc "$tmp/proc"
		log "Synapse: apt-get install matrix-synapse in the chroot"
		chroot "$tmp" env DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 \
			apt-get -q -o Acquire::Check-Valid-Until=false update
		chroot "$tmp" env DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 \
			apt-get -q -y -o Acquire::Check-Valid-Until=false install --no-install-recommends matrix-synapse
		chroot "$tmp" apt-get clean
		umount "$tmp/proc"
		synapse_ok "$tmp" || { echo "install.sh: 'import synapse' fails in the new chroot" >&2; exit 1; }
		# Swap in atomically; an old broken chroot is moved aside first.
		if [ -e "$synapse_root" ]; then
			mv "$synapse_root" "$synapse_root.tmp.old$$"
		fi
		mv "$tmp" "$synapse_root"
		trap - EXIT
		if [ -e "$synapse_root.tmp.old$$" ]; then synapse_rm "$synapse_root.tmp.old$$"; fi
		log "Synapse: chroot built in $((SECONDS - synapse_t0))s"
	fi
	log "Synapse $(chroot "$synapse_root" python3 -c 'import synapse; print(synapse.__version__)') in $synapse_root ($((SECONDS - synapse_t0))s)"
	exec {synapse_lock}>&-
fi
# END Synapse section

log "done"
