#!/bin/sh
# sealbridge container entrypoint.
#
#   first run:  writes /data/config.yaml (the example, with paths set for the container), says what to
#               edit, and exits;
#   second run: writes /data/registration.yaml (and the tokens into config.yaml), says how to add it to
#               the homeserver, and exits;
#   later runs: starts the bridge.
#
# Started as root (the default), it makes /data belong to the bridge user and drops to that user
# with setpriv; started with `--user UID:GID`, it runs as that user and only needs /data writable.
# Arguments starting with `-` are passed to the bridge (e.g. --ignore-unsupported-server for Dendrite).
# Any other command is run as given (e.g. `sh` for a look around).
set -eu

DATA=${SEALBRIDGE_DATA:-/data}
CONFIG="$DATA/config.yaml"
REGISTRATION="$DATA/registration.yaml"
BIN=${SEALBRIDGE_BIN:-/usr/local/bin/sealbridge}
RUN_UID=${SEALBRIDGE_UID:-1337}
RUN_GID=${SEALBRIDGE_GID:-1337}

# Everything the bridge writes (config, registration, database, logs) is for its user only.
umask 077

if [ $# -gt 0 ]; then
	case "$1" in
	-*) ;;
	*) exec "$@" ;;
	esac
fi

if [ "$(id -u)" = 0 ]; then
	if [ "$RUN_UID" = 0 ]; then
		echo "Refusing to run the bridge as root: set SEALBRIDGE_UID to a non-zero user ID." >&2
		exit 1
	fi
	mkdir -p "$DATA"
	chown -R "$RUN_UID:$RUN_GID" "$DATA"
	chmod 0700 "$DATA"
	exec setpriv --reuid="$RUN_UID" --regid="$RUN_GID" --clear-groups --inh-caps=-all --no-new-privs -- "$0" "$@"
fi

if [ ! -w "$DATA" ]; then
	echo "$DATA is not writable by user $(id -u). Make the volume belong to this user" \
		"(chown $(id -u):$(id -g) on the host), or start the container as root and it will do so." >&2
	exit 1
fi
cd "$DATA"

# replace OLD NEW: replace one exact line of the example config, and say so if it is not there.
replace() {
	if [ "$(grep -cxF -- "$1" "$CONFIG" || true)" = 1 ]; then
		tmp=$(mktemp "$DATA/.config.XXXXXX")
		awk -v old="$1" -v new="$2" '$0 == old { print new; next } { print }' "$CONFIG" >"$tmp"
		mv "$tmp" "$CONFIG"
	else
		echo "Note: could not set '$2' in $CONFIG; set it yourself." >&2
	fi
}

if [ ! -f "$CONFIG" ]; then
	"$BIN" -e -c "$CONFIG"
	# Paths and the listen address that make sense in a container.
	replace "    uri: file:sealbridge.db?_txlock=immediate&_stmt_cache_size=64" "    uri: file:$DATA/sealbridge.db?_txlock=immediate&_stmt_cache_size=64"
	replace "    hostname: 127.0.0.1" "    hostname: 0.0.0.0"
	replace "          filename: ./logs/bridge.log" "          filename: $DATA/logs/bridge.log"
	cat <<EOF

sealbridge wrote an example config to $CONFIG (readable only by the bridge's user).
Edit it, then start the container again to generate the appservice registration:

  homeserver.address   the URL at which the bridge reaches your homeserver
  homeserver.domain    your homeserver's server name (the part after ':' in user IDs)
  appservice.address   the URL at which the homeserver reaches this container, port 29355
                       (e.g. http://sealbridge:29355 on a shared Docker network)
  database             SQLite in $DATA/sealbridge.db is set up; for PostgreSQL set
                       type: postgres and uri: postgres://user:password@host/dbname
  bridge.permissions   who may use the bridge ("user") and administrate it ("admin")
  network.networks     the IRC networks your users may log in to

Keep the encryption section as it is: portal rooms are encrypted and plaintext is refused.
EOF
	exit 0
fi

if [ ! -f "$REGISTRATION" ]; then
	if grep -qxF "    address: http://example.localhost:8008" "$CONFIG" || grep -qxF "    domain: example.com" "$CONFIG"; then
		echo "Edit homeserver.address and homeserver.domain in $CONFIG first (see the admin guide), then start the container again." >&2
		exit 1
	fi
	"$BIN" -g -c "$CONFIG" -r "$REGISTRATION"
	cat <<EOF

sealbridge wrote the appservice registration to $REGISTRATION and put its tokens in $CONFIG.
Next: give the registration to your homeserver and restart the homeserver:

  Synapse     app_service_config_files: [/path/to/registration.yaml] in homeserver.yaml
  Dendrite    app_service_api.config_files: [/path/to/registration.yaml] in dendrite.yaml
              (and start this container with --ignore-unsupported-server)
  conduwuit   send "!admin appservices register" with the file's YAML in a code block
              to the admin room

Then start this container again: it starts the bridge.
EOF
	exit 0
fi

exec "$BIN" -c "$CONFIG" -r "$REGISTRATION" "$@"
