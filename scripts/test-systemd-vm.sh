#!/usr/bin/env bash
# Boots a real systemd (PID 1) in a Debian 12 VM and checks meterlink.service against it:
# qemu-system-x86_64 (KVM when /dev/kvm works, else software emulation), a rootfs made by debootstrap with
# Debian's own kernel and systemd 252 (the Raspberry Pi OS 12 version), Mosquitto and socat inside; this
# repo (built dist/ + node_modules) as a read-only ext4 disk, the host's node binary baked into the image.
# In the VM, test/systemd-vm/guest.sh runs systemd/install.sh and the assertions, prints each with its
# timing, then powers the VM off. Two extra 16550 UARTs are wired to each other by qemu: the agent reads
# /dev/ttyS1 (group dialout, through DeviceAllow=char-ttyS) and the Modbus simulator answers on /dev/ttyS2.
#
#   sudo scripts/test-systemd-vm.sh              # build the image if needed (cached), boot, test
#   VM_CACHE=/tmp/vm scripts/test-systemd-vm.sh  # another cache dir (default /var/cache/meterlink-systemd-vm)
#   VM_REBUILD=1 scripts/test-systemd-vm.sh      # rebuild the image from scratch (CI starts clean anyway)
#   VM_TIMEOUT=3600 scripts/test-systemd-vm.sh   # qemu's guard against a hung guest (default 2700 s)
#
# Needs root (debootstrap, chroot) and Debian packages debootstrap, qemu-system-x86, qemu-utils (installed
# here if missing). The image is rebuilt when test/systemd-vm/build-image.sh or node changes.
set -uo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
die() {
  printf 'test-systemd-vm.sh: %s\n' "$*" >&2
  exit 2
}
case "${1:-}" in
  -h | --help)
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
esac
[ "$(id -u)" = 0 ] || die "run as root (debootstrap, chroot and the VM's image need it)"
t0=$(date +%s)
step() { printf '\n=== [%4ss] %s\n' "$(($(date +%s) - t0))" "$*"; }

pkgs=()
command -v debootstrap >/dev/null || pkgs+=(debootstrap)
command -v qemu-system-x86_64 >/dev/null || pkgs+=(qemu-system-x86)
command -v qemu-img >/dev/null || pkgs+=(qemu-utils)
command -v mkfs.ext4 >/dev/null || pkgs+=(e2fsprogs)
if [ ${#pkgs[@]} -gt 0 ]; then
  step "apt-get install ${pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Wait for another apt/dpkg on the machine (a parallel job, unattended upgrades) instead of failing at once.
  apt=(apt-get -o DPkg::Lock::Timeout=600)
  "${apt[@]}" update -qq && "${apt[@]}" install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null ||
    die "apt-get install ${pkgs[*]} failed"
fi

[ -f dist/bundle/meterlink.js ] || {
  step "npm run build"
  npm run build >/dev/null || die "npm run build failed"
}
[ -d node_modules/classic-level ] || die "node_modules missing: npm ci first"

# The guest's peers (broker, simulator, cloud subscriber) as one JS file: the software-emulated guest would
# take minutes to compile the TypeScript. Next to node_modules so its imports resolve there.
step "bundle test/systemd-vm/rig.ts"
npx esbuild test/systemd-vm/rig.ts --bundle --platform=node --format=esm --target=node20 --packages=external \
  --log-level=warning --outfile=node_modules/.cache/meterlink-systemd-vm/rig.mjs || die "esbuild failed"

cache="${VM_CACHE:-/var/cache/meterlink-systemd-vm}"
mkdir -p "$cache"
key="$(cat test/systemd-vm/build-image.sh "$(command -v node)" | sha256sum | cut -c1-16)"
image="$cache/base-$key.img"
if [ "${VM_REBUILD:-0}" = 1 ] || [ ! -f "$image" ]; then
  step "build the image (debootstrap bookworm + kernel + systemd + mosquitto + socat + node)"
  rm -f "$cache"/base-*.img
  bash test/systemd-vm/build-image.sh "$cache" "$image" || die "image build failed"
fi
ls -la "$image"

run="$(mktemp -d /tmp/meterlink-systemd-vm.XXXXXX)"
out="$run/out"
mkdir -p "$out"
qemu-img create -q -f qcow2 -b "$image" -F raw "$run/disk.qcow2" || die "qemu-img create failed"
# The repo as a read-only ext4 disk (/dev/vdb in the guest), not 9p: what the guest needs (the built dist/,
# node_modules, systemd/, test/, package files), hard-linked into a staging tree when it can be (no copy).
step "repo disk (dist, node_modules, systemd, test)"
stage="$run/repo"
mkdir -p "$stage"
chmod 0755 "$stage"
for p in dist node_modules systemd test package.json package-lock.json README.md; do
  cp -al "$p" "$stage/" 2>/dev/null || cp -a "$p" "$stage/" || die "cannot stage $p for the repo disk"
done
mb=$(($(du -sm "$stage" | cut -f1) * 13 / 10 + 64))
truncate -s "${mb}M" "$run/repo.img"
mkfs.ext4 -q -F -L meterlink-repo -d "$stage" "$run/repo.img" || die "mkfs.ext4 -d of the repo disk failed"
rm -rf "$stage"
accel=(-accel tcg,thread=multi)
cpu=(-cpu max)
if [ "${VM_ACCEL:-tcg}" = kvm ]; then
  accel=(-accel kvm -accel tcg) # qemu falls back to TCG when KVM cannot start
  cpu=(-cpu max)
fi
step "boot (${accel[*]})"
boot_start=$(date +%s%N)
# ttyS0: console (kernel, systemd, the guest's output) → $run/console.log; ttyS1 <-> ttyS2: a null modem.
timeout "${VM_TIMEOUT:-2700}" qemu-system-x86_64 "${accel[@]}" "${cpu[@]}" -m 2048 -smp 2 -nographic -no-reboot \
  -kernel "$cache/vmlinuz" -initrd "$cache/initrd.img" \
  -append "root=/dev/vda rw console=ttyS0 quiet systemd.show_status=1 panic=-1" \
  -drive "file=$run/disk.qcow2,if=virtio,format=qcow2" \
  -drive "file=$run/repo.img,if=virtio,format=raw,readonly=on" \
  -virtfs "local,path=$out,mount_tag=out,security_model=none" \
  -chardev "socket,id=null1,path=$run/serial.sock,server=on,wait=off" \
  -chardev "socket,id=null2,path=$run/serial.sock" \
  -serial mon:stdio -serial chardev:null1 -serial chardev:null2 \
  -netdev user,id=n0,restrict=on -device virtio-net-pci,netdev=n0 \
  >"$run/console.log" 2>&1
qrc=$?
elapsed=$((($(date +%s%N) - boot_start) / 1000000))
[ "$qrc" = 0 ] || { tail -40 "$run/console.log"; die "qemu exited with $qrc after ${elapsed} ms (console: $run/console.log)"; }
[ -f "$out/guest.log" ] || { tail -60 "$run/console.log"; die "the guest test never ran (console: $run/console.log)"; }
cat "$out/guest.log"
grc="$(cat "$out/rc" 2>/dev/null || echo missing)"
echo
echo "=== test-systemd-vm.sh summary: VM up+test+poweroff $((elapsed / 1000)) s, $(grep -E '^boot:' "$out/guest.log" | head -1), total $(($(date +%s) - t0)) s"
grep -E '^(PASS|FAIL) ' "$out/guest.log" | awk '{print $1}' | sort | uniq -c | tr '\n' ' '
echo "(guest exit $grc; logs in $run)"
[ "$grc" = 0 ]
