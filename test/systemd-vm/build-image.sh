#!/usr/bin/env bash
# build-image.sh CACHE IMAGE: the VM image of scripts/test-systemd-vm.sh. debootstrap (Debian 12, cached in
# CACHE/rootfs), then: the host's node in /usr/local/bin, the 9p modules and the test runner unit that mounts
# the repo and runs test/systemd-vm/guest.sh at boot; Mosquitto's own service off (the test starts its broker).
# The kernel and initrd are copied to CACHE for qemu -kernel/-initrd; IMAGE is a raw ext4 file system.
set -euo pipefail
cache="$1"
image="$2"
root="$cache/rootfs"
packages=systemd,systemd-sysv,udev,dbus,linux-image-amd64,initramfs-tools,mosquitto,socat,openssl,ca-certificates,procps,iproute2,kmod,e2fsprogs
if [ ! -f "$root/.debootstrap-$packages" ]; then
  rm -rf "$root" "$root.tmp"
  echo "debootstrap bookworm ($packages)"
  debootstrap --variant=minbase --include="$packages" bookworm "$root.tmp" http://deb.debian.org/debian \
    >"$cache/debootstrap.log" 2>&1 || { tail -20 "$cache/debootstrap.log"; exit 1; }
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
mount -t 9p -o trans=virtio,version=9p2000.L,msize=1048576,ro repo /mnt/repo
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
