#!/usr/bin/env bash
# Removes what systemd/install.sh installed. Keeps the data (buffer, config, key) unless --purge.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: sudo systemd/uninstall.sh [options]

Stops and disables meterlink.service, removes the unit, /usr/bin/meterlink, the program in /opt/meterlink
and /etc/modules-load.d/meterlink.conf. Keeps /var/lib/meterlink (the buffer: readings not yet delivered),
/etc/meterlink (config, device key, certificates) and the user meterlink, unless --purge.

Options:
  --purge        also delete /var/lib/meterlink, /etc/meterlink and the user meterlink
  --prefix DIR   where the program was installed (default /opt/meterlink)
  --root DIR     act on DIR as a root file system (image building, tests): nothing outside DIR is touched
  --dry-run      print what would be done, change nothing
  -h, --help     this text

Example:
  sudo systemd/uninstall.sh            # keep data; a later install.sh carries on where it stopped
EOF
}

die() {
  printf 'uninstall.sh: %s\n' "$*" >&2
  exit 1
}

ROOT=""
DRY=0
PURGE=0
PREFIX=/opt/meterlink
while [ $# -gt 0 ]; do
  case "$1" in
    --root) ROOT="${2:?--root needs a directory}"; shift 2 ;;
    --prefix) PREFIX="${2:?--prefix needs a directory}"; shift 2 ;;
    --purge) PURGE=1; shift ;;
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
  *) die "--prefix $PREFIX: must be an absolute path containing \"meterlink\"" ;;
esac
[ "$DRY" = 1 ] || [ "$(id -u)" = 0 ] || die "run as root (sudo), or try --dry-run"

USER_NAME=meterlink
UNIT=meterlink.service
UNIT_FILE="$ROOT/etc/systemd/system/$UNIT"
ROOT_OPT=()
if [ -n "$ROOT" ]; then ROOT_OPT=(--root "$ROOT"); fi
SYSTEMD_RUNNING=0
if [ -z "$ROOT" ] && [ -d /run/systemd/system ]; then SYSTEMD_RUNNING=1; fi

run() {
  if [ "$DRY" = 1 ]; then
    printf 'would run:'
    printf ' %q' "$@"
    printf '\n'
  else
    "$@"
  fi
}

# remove PATH...: deletes what exists, says so; silent about what is already gone (idempotent).
remove() {
  local p
  for p in "$@"; do
    if [ -e "$p" ] || [ -L "$p" ]; then run rm -rf -- "$p"; fi
  done
}

echo "== service"
if [ -e "$UNIT_FILE" ]; then
  if [ -n "$ROOT" ]; then
    run systemctl --root="$ROOT" disable "$UNIT"
  elif [ "$SYSTEMD_RUNNING" = 1 ]; then
    run systemctl disable --now "$UNIT"
  else
    run systemctl disable "$UNIT"
  fi
else
  echo "not installed"
fi
remove "$UNIT_FILE" "$ROOT/etc/systemd/system/multi-user.target.wants/$UNIT"
if [ "$SYSTEMD_RUNNING" = 1 ]; then
  run systemctl daemon-reload
  run systemctl reset-failed "$UNIT" 2>/dev/null || true
fi

echo "== program"
remove "$ROOT/usr/bin/meterlink" "$ROOT$PREFIX" "$ROOT/etc/modules-load.d/meterlink.conf"

if [ "$PURGE" = 1 ]; then
  echo "== data (--purge)"
  remove "$ROOT/var/lib/meterlink" "$ROOT/etc/meterlink" "$ROOT/run/meterlink"
  if [ -n "$(awk -F: -v n="$USER_NAME" '$1 == n { print $1 }' "$ROOT/etc/passwd" 2>/dev/null)" ]; then
    run userdel "${ROOT_OPT[@]}" "$USER_NAME"
  fi
  # userdel drops the user's own group only where login.defs says USERGROUPS_ENAB yes.
  if [ "$DRY" = 0 ] && [ -n "$(awk -F: -v n="$USER_NAME" '$1 == n { print $1 }' "$ROOT/etc/group" 2>/dev/null)" ]; then
    run groupdel "${ROOT_OPT[@]}" "$USER_NAME"
  fi
  echo "done; nothing of meterlink is left."
else
  echo "done. Kept: $ROOT/var/lib/meterlink (buffer), $ROOT/etc/meterlink (config, key), user $USER_NAME."
  echo "Run with --purge to delete them too (undelivered readings in the buffer are then lost)."
fi
