#!/usr/bin/env bash
# Runs inside the VM of scripts/test-systemd-vm.sh, as root, under systemd as PID 1 (the repo is /mnt/repo,
# read-only; /mnt/out is the host's output directory). Installs meterlink with systemd/install.sh and checks
# the real service manager, printing "PASS|FAIL name (seconds) detail" per assertion. Exit status in
# /mnt/out/rc. Waits are polls on an observable condition with a generous bound, never a fixed sleep, except
# where the point is that something does NOT happen (no restart after exit 78: RestartSec=5s, watched 12 s).
set -uo pipefail
export PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin
repo=/mnt/repo
state=/run/vm-rig/state.json
failures=0
passes=0
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
pass() {
  passes=$((passes + 1))
  echo "PASS $1 ($2 s) $3"
}
fail() {
  failures=$((failures + 1))
  echo "FAIL $1 ($2 s) $3"
}
# wait_for SECONDS CMD...: true once CMD succeeds (polled every 0.2 s), false after SECONDS.
wait_for() {
  local limit="$1" end
  shift
  end=$(($(date +%s) + limit))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$end" ] || return 1
    sleep 0.2
  done
}
# A number from the rig's state file (flat JSON of integers, written atomically).
jq_state() { sed -n "s/.*\"$1\":\([0-9-]*\).*/\1/p" "$state" 2>/dev/null; }
prop() { systemctl show -p "$1" --value meterlink.service; }
ge() { [ "$(jq_state "$1")" -ge "$2" ] 2>/dev/null; }

echo "boot: kernel + systemd up to this test in $(cut -d' ' -f1 /proc/uptime) s (guest clock, software-emulated CPU)"
echo "PID 1: $(readlink /proc/1/exe), $(systemctl --version | head -1), kernel $(uname -r)"

snapshot() {
  find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /run -o -path /tmp -o -path /var/tmp \
    -o -path /var/log -o -path /var/cache -o -path /var/lib/systemd -o -path /mnt -o -path /root \
    -o -path /var/lib/dpkg \) -prune -o -print | grep -vE '^/etc/(passwd|group|shadow|gshadow|subuid|subgid)-$' | sort
  md5sum /etc/passwd /etc/group /etc/shadow /etc/gshadow
}
snapshot >/tmp/before.txt

# ---- the peers: broker (mTLS), Modbus simulator on ttyS2, cloud subscriber --------------------------------
t=$(now)
# rig.mjs: rig.ts bundled by the host (esbuild), so the software-emulated guest does not compile TypeScript.
(cd "$repo" && exec node "$repo/node_modules/.cache/meterlink-systemd-vm/rig.mjs" "$state") >/mnt/out/rig.log 2>&1 &
rig=$!
if wait_for 300 test -s "$state" && [ -f /etc/meterlink/config.yaml ]; then
  pass "rig: Mosquitto mTLS + simulator on /dev/ttyS2 up" "$(since "$t")" "$(head -1 /mnt/out/rig.log)"
else
  fail "rig: Mosquitto mTLS + simulator on /dev/ttyS2 up" "$(since "$t")" "$(tail -5 /mnt/out/rig.log)"
  echo "$failures" >/mnt/out/rc
  exit 1
fi

# ---- install.sh ---------------------------------------------------------------------------------------------
t=$(now)
# --skip-deps: the VM has no network for npm ci; the repo's node_modules (the same lock file) is linked in.
if "$repo/systemd/install.sh" --source "$repo" --node /usr/local/bin/node --skip-deps --no-start >/mnt/out/install.log 2>&1 &&
  ln -s "$repo/node_modules" /opt/meterlink/node_modules; then
  pass "install.sh" "$(since "$t")" "user $(id meterlink), unit $(systemctl is-enabled meterlink)"
else
  fail "install.sh" "$(since "$t")" "$(tail -5 /mnt/out/install.log)"
fi

# ---- start: Type=notify, READY=1 through notify-exec ------------------------------------------------------
# Software emulation on a busy host: loading the agent over 9p took 111 s of the unit's 120 s TimeoutStartSec.
# A runtime drop-in (/run, not the install) gives start-up 10 min; nothing else of the unit changes.
mkdir -p /run/systemd/system/meterlink.service.d
printf '[Service]\nTimeoutStartSec=600\n' >/run/systemd/system/meterlink.service.d/vm-slow-cpu.conf
systemctl daemon-reload
t=$(now)
if systemctl start meterlink; then
  pid=$(prop MainPID)
  detail="active after READY=1: $(systemctl is-active meterlink), MainPID $pid = $(readlink /proc/"$pid"/exe), status \"$(prop StatusText)\""
  if [ "$(systemctl is-active meterlink)" = active ] && [ "$(readlink /proc/"$pid"/exe)" = /usr/local/bin/node ]; then
    pass "systemctl start (Type=notify, NotifyAccess=main)" "$(since "$t")" "$detail"
  else
    fail "systemctl start (Type=notify, NotifyAccess=main)" "$(since "$t")" "$detail"
  fi
else
  fail "systemctl start (Type=notify, NotifyAccess=main)" "$(since "$t")" "$(journalctl -u meterlink -n 20 --no-pager)"
fi

t=$(now)
if wait_for 180 ge distinct 5; then
  pass "readings at the broker (verified batches)" "$(since "$t")" "$(cat "$state")"
else
  fail "readings at the broker (verified batches)" "$(since "$t")" "$(cat "$state"); $(journalctl -u meterlink -n 15 --no-pager)"
fi

# ---- hardening vs serial and LevelDB --------------------------------------------------------------------------
pid=$(prop MainPID)
dialout=$(getent group dialout | cut -d: -f3)
groups=$(awk '/^Groups:/ { $1 = ""; print }' /proc/"$pid"/status)
tty=$(stat -c '%A %U:%G' /dev/ttyS1)
if [[ " $groups " == *" $dialout "* ]] && [ "$(jq_state distinct)" -ge 5 ] && [[ "$tty" == *":dialout" ]]; then
  pass "serial under DevicePolicy=closed + DeviceAllow=char-ttyS, via dialout" 0 "/dev/ttyS1 $tty, agent groups$groups"
else
  fail "serial under DevicePolicy=closed + DeviceAllow=char-ttyS, via dialout" 0 "/dev/ttyS1 $tty, agent groups$groups"
fi
# The unit's device ACL in a sandbox of its own, as root: a serial port opens, a block device does not.
acl=(systemd-run --quiet --wait --pipe -p DevicePolicy=closed -p 'DeviceAllow=char-ttyS rw')
if "${acl[@]}" sh -c 'exec 3<>/dev/ttyS0' && ! "${acl[@]}" sh -c 'head -c1 /dev/vda >/dev/null' 2>/dev/null; then
  pass "DevicePolicy=closed + DeviceAllow=char-ttyS: ttyS0 opens, /dev/vda refused (even to root)" 0 ""
else
  fail "DevicePolicy=closed + DeviceAllow=char-ttyS: ttyS0 opens, /dev/vda refused (even to root)" 0 ""
fi
buf=/var/lib/meterlink/buffer
files=$(find "$buf" -type f | wc -l)
owners=$(find "$buf" -type f -printf '%u:%m\n' | sort -u | tr '\n' ' ')
if [ "$files" -gt 0 ] && [ "$(find "$buf" -type f ! -user meterlink | wc -l)" = 0 ] && [ -n "$(find "$buf" -name '*.log' -size +0)" ]; then
  pass "LevelDB writes under ProtectSystem=strict + StateDirectory" 0 "$files files in $buf, owner:mode $owners, $(du -sh "$buf" | cut -f1)"
else
  fail "LevelDB writes under ProtectSystem=strict + StateDirectory" 0 "$files files, $owners"
fi

# ---- stop < 10 s, nothing lost -------------------------------------------------------------------------------
before=$(jq_state maxSeq)
t=$(now)
systemctl stop meterlink
took=$(since "$t")
result="$(prop Result), exit status $(prop ExecMainStatus)"
if awk -v s="$took" 'BEGIN { exit !(s < 10) }' && [ "$(prop Result)" = success ]; then
  pass "systemctl stop < 10 s" "$took" "$result"
else
  fail "systemctl stop < 10 s" "$took" "$result"
fi
t=$(now)
systemctl start meterlink
target=$(($(jq_state maxSeq) + 5))
if wait_for 180 ge maxSeq "$target" && [ "$(jq_state missing)" = 0 ] && [ "$(jq_state rejected)" = 0 ]; then
  pass "nothing lost across stop/start (no seq gap)" "$(since "$t")" "max seq before stop $before, $(cat "$state")"
else
  fail "nothing lost across stop/start (no seq gap)" "$(since "$t")" "$(cat "$state")"
fi

# ---- watchdog: a frozen agent is restarted -------------------------------------------------------------------
# WatchdogSec=10s instead of 60 s for the test, as a runtime drop-in (/run: gone at reboot, not the install's).
mkdir -p /run/systemd/system/meterlink.service.d
printf '[Service]\nWatchdogSec=10s\n' >/run/systemd/system/meterlink.service.d/vm-test.conf
systemctl daemon-reload
systemctl restart meterlink
pid=$(prop MainPID)
restarts=$(prop NRestarts)
t=$(now)
kill -STOP "$pid"
restarted() { [ "$(prop NRestarts)" -gt "$restarts" ] && [ "$(prop MainPID)" != "$pid" ] && [ "$(prop MainPID)" != 0 ] && systemctl is-active -q meterlink; }
if wait_for 600 restarted; then
  pass "watchdog restarts a SIGSTOPped agent (WatchdogSec=10s)" "$(since "$t")" "NRestarts $restarts -> $(prop NRestarts), journal: $(journalctl -u meterlink --no-pager -o cat | grep -m1 -i 'watchdog timeout')"
else
  fail "watchdog restarts a SIGSTOPped agent (WatchdogSec=10s)" "$(since "$t")" "$(systemctl status meterlink --no-pager | head -12)"
fi
rm -f /run/systemd/system/meterlink.service.d/vm-test.conf
systemctl daemon-reload
systemctl restart meterlink
target=$(($(jq_state maxSeq) + 3))
t=$(now)
if wait_for 180 ge maxSeq "$target" && [ "$(jq_state missing)" = 0 ]; then
  pass "after the watchdog restart: readings again, no seq gap" "$(since "$t")" "$(cat "$state")"
else
  fail "after the watchdog restart: readings again, no seq gap" "$(since "$t")" "$(cat "$state")"
fi

# ---- exit 78 on a bad config, not restarted ------------------------------------------------------------------
cp /etc/meterlink/config.yaml /tmp/config.good
printf 'bogus: 1\n' >>/etc/meterlink/config.yaml
restarts=$(prop NRestarts)
t=$(now)
systemctl restart meterlink 2>/dev/null
code=$(prop ExecMainStatus)
failed_at=$(since "$t")
# The one negative wait: RestartSec=5s, so a restart would come within 5 s of the exit; watch for 12 s.
! wait_for 12 sh -c "[ \$(systemctl show -p NRestarts --value meterlink) -gt $restarts ] || systemctl is-active -q meterlink"
if [ "$code" = 78 ] && [ "$(systemctl is-active meterlink)" = failed ] && [ "$(prop NRestarts)" = "$restarts" ]; then
  pass "bad config: exit 78, not restarted (RestartPreventExitStatus=78)" "$failed_at" "state $(systemctl is-active meterlink), NRestarts $(prop NRestarts), $(journalctl -u meterlink --no-pager -o cat -n 30 | grep -m1 -iE 'bogus|config' | cut -c1-160)"
else
  fail "bad config: exit 78, not restarted (RestartPreventExitStatus=78)" "$failed_at" "exit $code, state $(systemctl is-active meterlink), NRestarts $restarts -> $(prop NRestarts)"
fi
install -m 0640 -o 0 -g meterlink /tmp/config.good /etc/meterlink/config.yaml
systemctl reset-failed meterlink
systemctl start meterlink

# ---- systemd-analyze security of the installed unit ------------------------------------------------------------
t=$(now)
exposure=$(systemd-analyze security meterlink.service --no-pager | sed -n 's/.*Overall exposure level for meterlink.service: \([0-9.]*\).*/\1/p')
if [ -n "$exposure" ] && awk -v e="$exposure" 'BEGIN { exit !(e <= 1.5) }'; then
  pass "systemd-analyze security (installed, running unit) <= 1.5" "$(since "$t")" "exposure $exposure"
else
  fail "systemd-analyze security (installed, running unit) <= 1.5" "$(since "$t")" "exposure '$exposure'"
fi

# ---- journald: the pino lines and their PRIORITY --------------------------------------------------------------
t=$(now)
jr=$(journalctl -u meterlink -o json --no-pager | node -e '
  const want = { 10: 7, 20: 7, 30: 6, 40: 4, 50: 3, 60: 2 };
  let n = 0, wrong = 0; const by = {}; const bad = [];
  for (const line of require("fs").readFileSync(0, "utf8").split("\n")) {
    if (!line) continue;
    const e = JSON.parse(line);
    let m; try { m = JSON.parse(Array.isArray(e.MESSAGE) ? Buffer.from(e.MESSAGE).toString() : e.MESSAGE); } catch { continue; }
    if (typeof m !== "object" || m === null || typeof m.level !== "number") continue;
    n++; const k = `level ${m.level} -> PRIORITY ${e.PRIORITY}`; by[k] = (by[k] || 0) + 1;
    if (String(want[m.level]) !== e.PRIORITY) { wrong++; if (bad.length < 2) bad.push(m.msg); }
  }
  console.log(`${n} ${wrong} ${JSON.stringify(by)} ${bad.length ? "e.g. " + JSON.stringify(bad) : ""}`);
')
read -r n wrong rest <<<"$jr"
if [ "${n:-0}" -gt 0 ] && [ "$wrong" = 0 ]; then
  pass "journalctl -u meterlink -o json: pino lines with the syslog PRIORITY of their level" "$(since "$t")" "$n lines: $rest"
else
  fail "journalctl -u meterlink -o json: pino lines with the syslog PRIORITY of their level" "$(since "$t")" "$n lines, $wrong with the wrong PRIORITY: $rest"
fi

# ---- uninstall.sh --purge leaves the system as it was ---------------------------------------------------------
t=$(now)
rm -rf /run/systemd/system/meterlink.service.d
"$repo/systemd/uninstall.sh" --purge >/mnt/out/uninstall.log 2>&1
urc=$?
kill "$rig" 2>/dev/null
wait "$rig" 2>/dev/null
snapshot >/tmp/after.txt
changes=$(diff /tmp/before.txt /tmp/after.txt)
if [ "$urc" = 0 ] && [ -z "$changes" ] && ! systemctl cat meterlink.service >/dev/null 2>&1 && ! id meterlink >/dev/null 2>&1; then
  pass "uninstall.sh --purge: file system, users and units as before install" "$(since "$t")" "no unit, no user, $(wc -l </tmp/before.txt) paths compared"
else
  fail "uninstall.sh --purge: file system, users and units as before install" "$(since "$t")" "rc $urc; $(head -20 <<<"$changes" | tr '\n' ' ')"
fi

echo "guest: $passes passed, $failures failed"
echo "$failures" >/mnt/out/rc
