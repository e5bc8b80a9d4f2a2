#!/usr/bin/env bash
# Runs the tests (all, or the files/folders given) once per clock setting, to prove that nothing in the suite,
# the simulators or the demo depends on the real date, time of day, time zone or locale:
#   TZ=Pacific/Kiritimati (UTC+14) with LANG=de_DE.UTF-8, TZ=America/St_Johns (UTC-3:30) with LANG=fr_CA.UTF-8,
#   and, with libfaketime (Debian: faketime), the wall clock started at a sunny noon, at midnight, and a few
#   seconds before the EU summer-time switch (the whole process tree sees the faked clock: Mosquitto, socat
#   and the agent too; the monotonic clock is left real).
#
#   scripts/test-clock.sh                       # the whole suite under each setting (about 5 min each)
#   scripts/test-clock.sh test/agent test/e2e   # some folders
#   CLOCKS="noon tz-east" scripts/test-clock.sh # some settings: tz-east tz-west noon midnight dst
#
# Coverage is not checked here (a subset of files cannot meet the suite's thresholds); `npm test` checks it.
set -uo pipefail
cd "$(dirname "$0")/.."
command -v faketime >/dev/null || { echo "test-clock.sh: faketime is missing: sudo apt-get install faketime" >&2; exit 2; }
clocks="${CLOCKS:-tz-east tz-west noon midnight dst}"
results=()
fail=0
for c in $clocks; do
  case "$c" in
    tz-east) run=(env TZ=Pacific/Kiritimati LANG=de_DE.UTF-8) ;;
    tz-west) run=(env TZ=America/St_Johns LANG=fr_CA.UTF-8) ;;
    noon) run=(env TZ=Europe/Amsterdam FAKETIME_DONT_FAKE_MONOTONIC=1 faketime -f '@2026-06-21 10:00:00') ;; # 12:00 CEST
    midnight) run=(env TZ=UTC FAKETIME_DONT_FAKE_MONOTONIC=1 faketime -f '@2026-12-31 23:59:30') ;;
    dst) run=(env TZ=UTC FAKETIME_DONT_FAKE_MONOTONIC=1 faketime -f '@2026-03-29 00:59:40') ;; # EU DST at 01:00 UTC
    *) echo "test-clock.sh: unknown clock '$c' (tz-east tz-west noon midnight dst)" >&2; exit 2 ;;
  esac
  echo "=== $c: ${run[*]}"
  log="$(mktemp /tmp/meterlink-clock-$c.XXXXXX.log)"
  start=$(date +%s)
  if "${run[@]}" npx tap --disable-coverage "$@" >"$log" 2>&1; then
    results+=("$c: pass ($(($(date +%s) - start)) s) $(grep -E '^# \{ total' "$log" | tail -1)")
  else
    fail=1
    results+=("$c: FAIL ($(($(date +%s) - start)) s) $(grep -E '^# \{ total' "$log" | tail -1), log $log")
    grep -E '^\s*not ok|^\s+(fileName|lineNumber):' "$log" | sed -E 's/^\s+/  /' | head -30
  fi
done
printf '%s\n' "${results[@]}"
exit $fail
