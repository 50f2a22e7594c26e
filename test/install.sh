#!/usr/bin/env bash
# Installs what sealbridge's end-to-end tests run against (see test/stack):
#   - Debian packages: InspIRCd 3, Anope 2.0, PostgreSQL 15, sqlite3 (to read
#     Dendrite's database), openssl;
#   - Dendrite v0.15.2 and its helper commands, built from test/tools into
#     test/tools/bin;
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
for m in cap ircv3 ircv3_accounttag ircv3_batch ircv3_capnotify ircv3_ctctags \
	ircv3_echomessage ircv3_msgid ircv3_servertime sasl services_account \
	spanningtree chanhistory ssl_gnutls; do
	[ -e "/usr/lib/inspircd/modules/m_$m.so" ] || { echo "install.sh: InspIRCd module m_$m.so missing" >&2; exit 1; }
done
id postgres >/dev/null 2>&1 || { echo "install.sh: no postgres OS user" >&2; exit 1; }

# --- Dendrite ----------------------------------------------------------------
tools="$here/tools"
bins=(dendrite create-account generate-config generate-keys)
need_build=
for b in "${bins[@]}"; do
	if [ ! -x "$tools/bin/$b" ] || [ "$tools/go.sum" -nt "$tools/bin/$b" ] || [ "$tools/go.mod" -nt "$tools/bin/$b" ]; then
		need_build=1
	fi
done
if [ -n "$need_build" ]; then
	log "building Dendrite into $tools/bin (a few minutes the first time)"
	pkgs=()
	for b in "${bins[@]}"; do pkgs+=("github.com/element-hq/dendrite/cmd/$b"); done
	(cd "$tools" && go build -o bin/ "${pkgs[@]}")
	for b in "${bins[@]}"; do touch "$tools/bin/$b"; done
else
	log "Dendrite binaries up to date"
fi

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

log "done"
