#!/usr/bin/env bash
# Installs meterlink as a hardened systemd service. Idempotent: run it again after every update.
# See systemd/README.md for what goes where.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: sudo systemd/install.sh [options]

Installs the meterlink agent as the systemd service meterlink.service:
  - system user "meterlink" (no login, home /var/lib/meterlink, member of dialout for serial ports)
  - /etc/meterlink (0750 root:meterlink; *.key files 0600 meterlink, other files 0640 root:meterlink)
  - /var/lib/meterlink (0750 meterlink: the buffer)
  - the program in /opt/meterlink (built dist/ + production node_modules) and the /usr/bin/meterlink wrapper
  - /etc/systemd/system/meterlink.service, enabled; started (restarted) only if /etc/meterlink/config.yaml exists
  - /etc/modules-load.d/meterlink.conf (serial drivers loaded at boot, see the unit's DeviceAllow=)

Build first, in the source tree:  npm ci && npm run build

Options:
  --source DIR   meterlink source tree with dist/ built (default: the tree this script is in)
  --prefix DIR   where the program goes (default /opt/meterlink)
  --node PATH    node (>= 20) the wrapper runs (default: node on PATH)
  --skip-deps    do not run "npm ci --omit=dev" in the prefix (node_modules provided otherwise)
  --no-start     enable the service but do not start it
  --root DIR     install into DIR as a root file system (image building, tests): nothing outside DIR is
                 touched, systemctl only enables (--root), nothing is started
  --dry-run      print what would be done, change nothing
  -h, --help     this text

Example:
  sudo systemd/install.sh && sudo meterlink provision --help
EOF
}

die() {
  printf 'install.sh: %s\n' "$*" >&2
  exit 1
}

ROOT=""
DRY=0
PREFIX=/opt/meterlink
SOURCE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NODE=""
DEPS=1
START=1
while [ $# -gt 0 ]; do
  case "$1" in
    --root) ROOT="${2:?--root needs a directory}"; shift 2 ;;
    --prefix) PREFIX="${2:?--prefix needs a directory}"; shift 2 ;;
    --source) SOURCE="${2:?--source needs a directory}"; shift 2 ;;
    --node) NODE="${2:?--node needs a path}"; shift 2 ;;
    --skip-deps) DEPS=0; shift ;;
    --no-start) START=0; shift ;;
    --dry-run) DRY=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done

if [ -n "$ROOT" ]; then
  [ -d "$ROOT" ] || die "--root $ROOT: no such directory"
  ROOT="$(cd "$ROOT" && pwd)"
  [ "$ROOT" = / ] && ROOT=""
fi
case "$PREFIX" in
  /*meterlink*) ;;
  *) die "--prefix $PREFIX: must be an absolute path containing \"meterlink\" (uninstall removes it whole)" ;;
esac
[ "$DRY" = 1 ] || [ "$(id -u)" = 0 ] || die "run as root (sudo), or try --dry-run"
# The program is the bundle `npm run build` writes (scripts/bundle.mjs: 3.6 MiB less resident memory
# than tsc's output, and ~150 files opened at start-up instead of ~700); dist/ holds tsc's output too.
BIN=dist/bundle/meterlink.js
[ -f "$SOURCE/$BIN" ] ||
  die "$SOURCE/$BIN not found: build first with \"npm ci && npm run build\" in $SOURCE"
if [ -z "$NODE" ]; then NODE="$(command -v node || true)"; fi
[ -n "$NODE" ] || die "node not found on PATH; install Node.js 20 or later, or pass --node PATH"
"$NODE" -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' ||
  die "$NODE is older than Node.js 20"

USER_NAME=meterlink
UNIT=meterlink.service
# With --root, user tools and systemctl work on the image instead of this machine.
ROOT_OPT=()
if [ -n "$ROOT" ]; then ROOT_OPT=(--root "$ROOT"); fi
SYSTEMD_RUNNING=0
if [ -z "$ROOT" ] && [ -d /run/systemd/system ]; then SYSTEMD_RUNNING=1; fi

# Runs a command, or only prints it with --dry-run.
run() {
  if [ "$DRY" = 1 ]; then
    printf 'would run:'
    printf ' %q' "$@"
    printf '\n'
  else
    "$@"
  fi
}

# write_file PATH MODE: stdin becomes the file (root-owned), replaced atomically only if it changed.
write_file() {
  local dest="$1" mode="$2" tmp
  tmp="$(mktemp)"
  cat >"$tmp"
  if [ -f "$dest" ] && cmp -s "$tmp" "$dest"; then
    rm -f "$tmp"
    run chmod "$mode" "$dest"
    return
  fi
  if [ "$DRY" = 1 ]; then
    printf 'would write: %s (mode %s)\n' "$dest" "$mode"
    rm -f "$tmp"
  else
    install -D -m "$mode" -o 0 -g 0 "$tmp" "$dest"
    rm -f "$tmp"
  fi
}

passwd_field() { awk -F: -v n="$1" -v f="$2" '$1 == n { print $f }' "$ROOT/etc/passwd" 2>/dev/null; }
group_members() { awk -F: -v n="$1" '$1 == n { print $4 }' "$ROOT/etc/group" 2>/dev/null; }
group_exists() { [ -n "$(awk -F: -v n="$1" '$1 == n { print $1 }' "$ROOT/etc/group" 2>/dev/null)" ]; }

echo "== user $USER_NAME"
if ! group_exists dialout; then run groupadd "${ROOT_OPT[@]}" --system dialout; fi
if [ -z "$(passwd_field "$USER_NAME" 1)" ]; then
  run useradd "${ROOT_OPT[@]}" --system --user-group --groups dialout --home-dir /var/lib/meterlink \
    --no-create-home --shell /usr/sbin/nologin --comment "meterlink agent" "$USER_NAME"
elif ! printf ',%s,' "$(group_members dialout)" | grep -q ",$USER_NAME,"; then
  run usermod "${ROOT_OPT[@]}" --append --groups dialout "$USER_NAME"
else
  echo "exists, in group dialout"
fi
# Numeric ids: with --root the user exists only in the image, not in this machine's user database.
UID_N="$(passwd_field "$USER_NAME" 3)"
GID_N="$(passwd_field "$USER_NAME" 4)"
if [ -z "$UID_N" ]; then UID_N="$USER_NAME" GID_N="$USER_NAME"; fi # dry run before the user exists

echo "== directories"
run install -d -m 0750 -o 0 -g "$GID_N" "$ROOT/etc/meterlink"
run install -d -m 0750 -o "$UID_N" -g "$GID_N" "$ROOT/var/lib/meterlink"
if [ -d "$ROOT/etc/meterlink" ]; then
  while IFS= read -r -d '' f; do
    case "$f" in
      # DESIGN §6: the private key is the service user's alone; the agent refuses a key others can read.
      *.key) run chown "$UID_N:$GID_N" "$f"; run chmod 0600 "$f" ;;
      *) run chown "0:$GID_N" "$f"; run chmod 0640 "$f" ;;
    esac
  done < <(find "$ROOT/etc/meterlink" -maxdepth 1 -type f -print0)
fi

echo "== program in $PREFIX"
DEST="$ROOT$PREFIX"
DEPS_CURRENT=0
if [ -f "$DEST/package-lock.json" ] && cmp -s "$SOURCE/package-lock.json" "$DEST/package-lock.json" &&
  [ -f "$DEST/node_modules/.package-lock.json" ]; then
  DEPS_CURRENT=1
fi
run install -d -m 0755 -o 0 -g 0 "$DEST" "$DEST/libexec"
run rm -rf "$DEST/dist"
run cp -R "$SOURCE/dist" "$DEST/dist"
run install -m 0644 -o 0 -g 0 "$SOURCE/package.json" "$SOURCE/package-lock.json" "$DEST/"
if [ -f "$SOURCE/README.md" ]; then run install -m 0644 -o 0 -g 0 "$SOURCE/README.md" "$DEST/"; fi
run install -m 0755 -o 0 -g 0 "$SOURCE/systemd/notify-exec" "$DEST/libexec/notify-exec"
if [ "$DEPS" = 0 ]; then
  echo "dependencies: skipped (--skip-deps)"
elif [ "$DEPS_CURRENT" = 1 ]; then
  echo "dependencies: up to date"
else
  run sh -c 'cd "$1" && npm ci --omit=dev --no-audit --no-fund' sh "$DEST"
fi

echo "== /usr/bin/meterlink"
# Under systemd (NOTIFY_SOCKET set) the agent starts through notify-exec, so its sd_notify messages come
# from the main PID (NotifyAccess=main); elsewhere node runs directly.
# Every command run by hand (buffer export of a week's backlog, read, scan) gets the unit's memory settings
# unless the caller set their own: without them V8 sizes its heap for the whole machine.
# METERLINK_NODE_FLAGS are V8 flags that NODE_OPTIONS refuses (--optimize-for-size): they go on node's command
# line, split into words (set -f: no globbing). METERLINK_RUN_NODE_FLAGS follow them for `run` (the daemon)
# only: --max-opt=1 saves the long-running agent TurboFan's resident pages but slows a `buffer export` by ~1/3.
UNIT_NODE_OPTIONS=$(sed -n 's/^Environment="NODE_OPTIONS=\(.*\)"$/\1/p' "$SOURCE/systemd/meterlink.service")
# glibc's malloc settings (MALLOC_ARENA_MAX, MALLOC_MMAP_THRESHOLD_): one export line each.
UNIT_MALLOC=$(sed -n 's/^Environment=\(MALLOC_[A-Z_]*\)=\([0-9]*\)$/export \1="${\1-\2}"/p' \
  "$SOURCE/systemd/meterlink.service")
UNIT_NODE_FLAGS=$(sed -n 's/^Environment="METERLINK_NODE_FLAGS=\(.*\)"$/\1/p' "$SOURCE/systemd/meterlink.service")
UNIT_RUN_NODE_FLAGS=$(sed -n 's/^Environment="METERLINK_RUN_NODE_FLAGS=\(.*\)"$/\1/p' \
  "$SOURCE/systemd/meterlink.service")
write_file "$ROOT/usr/bin/meterlink" 0755 <<EOF
#!/bin/sh
# meterlink: generated by systemd/install.sh; overwritten on every install.
set -f
export NODE_OPTIONS="\${NODE_OPTIONS-$UNIT_NODE_OPTIONS}"
$UNIT_MALLOC
flags="\${METERLINK_NODE_FLAGS-$UNIT_NODE_FLAGS}"
if [ "\${1:-}" = run ]; then
  flags="\$flags \${METERLINK_RUN_NODE_FLAGS-$UNIT_RUN_NODE_FLAGS}"
fi
if [ -n "\${NOTIFY_SOCKET:-}" ]; then
  exec $PREFIX/libexec/notify-exec $NODE \$flags $PREFIX/$BIN "\$@"
fi
exec $NODE \$flags $PREFIX/$BIN "\$@"
EOF

echo "== unit"
write_file "$ROOT/etc/systemd/system/$UNIT" 0644 <"$SOURCE/systemd/meterlink.service"
# DeviceAllow=char-ttyUSB/char-ttyACM are resolved from /proc/devices when the service starts: have the
# USB serial drivers loaded at boot even if the adapter is plugged in later. Missing modules are harmless.
write_file "$ROOT/etc/modules-load.d/meterlink.conf" 0644 <<'EOF'
# meterlink: serial drivers the service's device ACL needs at start-up (see meterlink.service).
usbserial
cdc_acm
EOF

echo "== systemd"
CONFIG="$ROOT/etc/meterlink/config.yaml"
if [ -n "$ROOT" ]; then
  run systemctl --root="$ROOT" enable "$UNIT"
  echo "start: skipped (--root)"
elif [ "$SYSTEMD_RUNNING" = 0 ]; then
  run systemctl enable "$UNIT"
  echo "start: skipped (systemd is not running here)"
else
  run systemctl daemon-reload
  run systemctl enable "$UNIT"
  if [ "$START" = 0 ]; then
    echo "start: skipped (--no-start)"
  elif [ -f "$CONFIG" ]; then
    # restart, not start: an update must replace the running program.
    run systemctl restart "$UNIT"
  fi
fi

if [ ! -f "$CONFIG" ]; then
  cat <<EOF

Installed, not started: $CONFIG does not exist yet. Next:
  1. sudo meterlink provision --help      create the device key and certificate, write the config
     (or write $CONFIG yourself; check it with: meterlink config check $CONFIG)
  2. sudo systemctl start $UNIT
  3. systemctl status $UNIT; journalctl -u $UNIT -f; sudo meterlink status
EOF
else
  echo "done."
fi
