#!/usr/bin/env bash
# Prove the suite is reliable the way CI sees it: N fresh clones of this repository's HEAD (committed work only),
# each running `CI=true bash .ci/run` from scratch. Prints one line per run and, at the end, the pass count and
# every failing test file with its first failure lines.
#
#   scripts/soak-ci.sh 5            # five idle runs
#   scripts/soak-ci.sh 3 --busy     # three runs with one core kept busy by a spinning process
#   scripts/soak-ci.sh 1 --cold     # empty the platform checks' caches before each run (arm64 node, VM image),
#                                   # as on a fresh CI machine
#   SOAK_DIR=/tmp/soak scripts/soak-ci.sh 2   # keep the clones and logs there (default: a new temp dir)
#
# Needs root (as .ci/run does: it installs Debian packages). Exit status 0 only when every run passed.
set -uo pipefail

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; }
runs="${1:-}"
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || { usage >&2; echo "soak-ci.sh: give the number of runs, e.g. scripts/soak-ci.sh 5" >&2; exit 2; }
busy=0
cold=0
for opt in "${@:2}"; do
  case "$opt" in
    --busy) busy=1 ;;
    --cold) cold=1 ;;
    *) usage >&2; echo "soak-ci.sh: unknown option '$opt' (--busy, --cold)" >&2; exit 2 ;;
  esac
done

repo="$(cd "$(dirname "$0")/.." && pwd)"
dir="${SOAK_DIR:-$(mktemp -d /tmp/meterlink-soak.XXXXXX)}"
mkdir -p "$dir"
head="$(git -C "$repo" rev-parse --short HEAD)"
[[ -z "$(git -C "$repo" status --porcelain --untracked-files=no)" ]] ||
  echo "soak-ci.sh: note: uncommitted changes in $repo are NOT tested (clones take HEAD $head)" >&2

hog_pid=""
stop_hog() { [[ -n "$hog_pid" ]] && kill "$hog_pid" 2>/dev/null; hog_pid=""; }
trap stop_hog EXIT
if ((busy)); then
  # One core busy for the whole soak: a shell loop that never sleeps.
  ( while :; do :; done ) &
  hog_pid=$!
fi

echo "soak: $runs run(s) of .ci/run on fresh clones of $head$( ((busy)) && echo ', one core busy'), logs in $dir"
pass=0
failures=()
for ((i = 1; i <= runs; i++)); do
  clone="$dir/run-$i"
  rm -rf "$clone"
  git clone -q "$repo" "$clone"
  log="$dir/run-$i.log"
  # The caches scripts/test-arm64.sh and scripts/test-systemd-vm.sh keep by default (a CI machine has neither).
  ((cold)) && rm -rf "$HOME/.cache/meterlink-arm64" /var/cache/meterlink-systemd-vm
  start=$(date +%s)
  (cd "$clone" && CI=true bash .ci/run) >"$log" 2>&1
  rc=$?
  secs=$(($(date +%s) - start))
  summary="$(grep -E '^# \{ total:|^# (fail|pass) ' "$log" | tail -3 | tr '\n' ' ')"
  if ((rc == 0)); then
    pass=$((pass + 1))
    echo "run $i: pass  (${secs}s) $summary"
  else
    echo "run $i: FAIL  exit $rc (${secs}s) $summary"
    # tap marks failing files, subtests and assertions with "not ok", followed by where (fileName, lineNumber);
    # a failure before tap (apt, npm ci, typecheck, lint) shows in the log's last lines.
    while IFS= read -r line; do failures+=("run $i: $line"); done < <(
      if grep -qE '^\s*not ok' "$log"; then
        grep -E '^\s*not ok|^\s+(fileName|lineNumber):' "$log" | sed -E 's/^\s+/ /' | head -40
      else
        tail -15 "$log"
      fi
    )
    rm -rf "$clone/node_modules"
  fi
  ((rc == 0)) && rm -rf "$clone"
  # The ten slowest test files of this run.
  grep -E '^(not )?ok [0-9]+ - \S+\.test\.ts # time=' "$log" |
    sed -E 's/^(not )?ok [0-9]+ - (\S+) # time=([0-9.]+)ms.*/\3 \2/' | sort -rn | head -10 |
    awk '{ printf "    %6.1f s  %s\n", $1 / 1000, $2 }' >"$dir/run-$i.slowest"
  suite="$(grep -E '^# time=' "$log" | tail -1 | sed -E 's/# time=([0-9.]+)ms/\1/')"
  [[ -n "$suite" ]] && echo "  npm test: $(awk -v t="$suite" 'BEGIN { printf "%.0f", t / 1000 }') s; slowest files:" && cat "$dir/run-$i.slowest"
  # The platform checks: each script's summary block (the lines after its "=== ... summary" line).
  awk '/^\[(arm64|systemd-vm)\] === test-.*summary/ { p[$1] = 1 } p[$1] { print "  " $0 } /^platform checks/ { print "  " $0 }' "$log"
done
echo
echo "soak: $pass/$runs passed$( ((busy)) && echo ' (one core busy)')"
if ((${#failures[@]})); then
  echo "failures (full logs in $dir):"
  printf '  %s\n' "${failures[@]}"
fi
((pass == runs))
