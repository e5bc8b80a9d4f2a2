#!/usr/bin/env bash
# build-image.sh CACHE IMAGE: the VM image of scripts/test-systemd-vm.sh. debootstrap (Debian 12, cached in
# CACHE/rootfs), then: the host's node in /usr/local/bin, the 9p modules and the test runner unit that mounts
# the repo disk (/dev/vdb) and the output share (9p) and runs test/systemd-vm/guest.sh at boot; Mosquitto's own service off (the test starts its broker).
# The kernel and initrd are copied to CACHE for qemu -kernel/-initrd; IMAGE is a raw ext4 file system.
set -euo pipefail
cache="$1"
image="$2"
root="$cache/rootfs"
packages=systemd,systemd-sysv,udev,dbus,linux-image-amd64,initramfs-tools,mosquitto,socat,openssl,ca-certificates,procps,iproute2,kmod,e2fsprogs
if [ ! -f "$root/.debootstrap-$packages" ]; then
  # Two stages, so that dpkg runs with force-unsafe-io in the second (no fsync per unpacked file: the first
  # build took 21 min on a busy 2-core machine, most of it dpkg); the image is made from the tree afterwards,
  # so nothing depends on those writes having reached the disk early. A failed download is retried once.
  for attempt in 1 2; do
    rm -rf "$root" "$root.tmp"
    echo "debootstrap bookworm ($packages), attempt $attempt"
    if debootstrap --foreign --variant=minbase --include="$packages" bookworm "$root.tmp" \
      http://deb.debian.org/debian >"$cache/debootstrap.log" 2>&1 &&
      mkdir -p "$root.tmp/etc/dpkg/dpkg.cfg.d" &&
      echo force-unsafe-io >"$root.tmp/etc/dpkg/dpkg.cfg.d/zz-meterlink-vm-build" &&
      chroot "$root.tmp" /debootstrap/debootstrap --second-stage >>"$cache/debootstrap.log" 2>&1; then
      rm -f "$root.tmp/etc/dpkg/dpkg.cfg.d/zz-meterlink-vm-build"
      break
    fi
    tail -20 "$cache/debootstrap.log"
    [ "$attempt" = 2 ] && exit 1
  done
  touch "$root.tmp/.debootstrap-$packages"
  mv "$root.tmp" "$root"
fi

install -m 0755 "$(command -v node)" "$root/usr/local/bin/node"
echo meterlink-vm >"$root/etc/hostname"
printf '/dev/vda / ext4 defaults 0 1\n' >"$root/etc/fstab"
: >"$root/etc/machine-id"
chroot "$root" systemctl disable mosquitto.service >/dev/null 2>&1 || true
chroot "$root" systemctl mask systemd-timesyncd.service apt-daily.timer apt-daily-upgrade.timer >/dev/null 2>&1 || true
printf '9p\n9pnet_virtio\n' >"$root/etc/modules-load.d/9p.conf"

cat >"$root/usr/local/sbin/meterlink-vm-test" <<'RUNNER'
#!/bin/sh
# Mounts the repo (read-only) and the output share, runs the guest test, powers off.
mkdir -p /mnt/repo /mnt/out
# The repo (dist/, node_modules, systemd/, test/) is an ext4 disk made by the host, not a 9p share: node
# resolves and reads thousands of files at every agent start, and each 9p lookup is a round trip to the host
# (agent start-up took 100-200 s under TCG over 9p).
mount -t ext4 -o ro,noload /dev/vdb /mnt/repo
mount -t 9p -o trans=virtio,version=9p2000.L,msize=1048576 out /mnt/out
# guest.sh writes its exit status to /mnt/out/rc.
bash /mnt/repo/test/systemd-vm/guest.sh 2>&1 | tee /mnt/out/guest.log >/dev/ttyS0
sync
systemctl poweroff --no-block
RUNNER
chmod 0755 "$root/usr/local/sbin/meterlink-vm-test"
cat >"$root/etc/systemd/system/meterlink-vm-test.service" <<'UNIT'
[Unit]
Description=meterlink systemd VM test (test/systemd-vm/guest.sh)
After=multi-user.target
[Service]
Type=oneshot
ExecStart=/usr/local/sbin/meterlink-vm-test
StandardOutput=journal+console
[Install]
WantedBy=multi-user.target
UNIT
chroot "$root" systemctl enable meterlink-vm-test.service >/dev/null 2>&1

kver="$(ls "$root/lib/modules" | sort -V | tail -1)"
cp "$root/boot/vmlinuz-$kver" "$cache/vmlinuz"
cp "$root/boot/initrd.img-$kver" "$cache/initrd.img"
chmod 0644 "$cache/vmlinuz" "$cache/initrd.img"
rm -f "$image.tmp"
truncate -s 3G "$image.tmp"
mkfs.ext4 -q -F -L meterlink-vm -d "$root" "$image.tmp"
mv "$image.tmp" "$image"
echo "image $image (kernel $kver)"
