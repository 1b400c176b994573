#!/usr/bin/env bash
# Build a Debian 13 Vagrant box for the libvirt provider, offline from the Debian registry
# (`make test-vagrant` uses it; docs/DESIGN.md, "The test machines").
#
# The box holds about what a stock Debian box (bento's) holds: a kernel, systemd, sshd, sudo,
# rsync, e2fsprogs, ca-certificates and python3 - but not python3-venv, busybox, nftables or anything from PyPI,
# which the provisioning that `make test-vagrant` proves must bring from the offline bundle.
# A bootable disk (MBR + one ext4 partition + extlinux) converted to qcow2, packed with the
# metadata vagrant-libvirt expects. The loop device and mount it needs are released on every exit.
#
# Usage: tools/lab-vm/build-box.sh [OUT.box]   (default /var/cache/pycontain/lab-vm/debian13.box)
# Environment: PYCONTAIN_VM_REBUILD=1 to rebuild even when the box is up to date.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
log_tag=build-box
# shellcheck source=tools/lab-vm/common.sh
. "$here/common.sh"

out=${1:-/var/cache/pycontain/lab-vm/debian13.box}
work=$(dirname "$out")/box.partial
# bump when the recipe below changes
recipe=5
debs=linux-image-amd64,initramfs-tools,systemd,systemd-sysv,udev,dbus,openssh-server,sudo,rsync,kmod,procps,e2fsprogs,python3,ca-certificates

if [[ ${PYCONTAIN_VM_REBUILD:-0} != 1 && -f $out && $(cat "$out.recipe" 2>/dev/null) == "$recipe" ]]; then
  log "up to date: $out"
  exit 0
fi
need debootstrap qemu-utils e2fsprogs extlinux syslinux-common fdisk vagrant

loop=
cleanup() {
  mountpoint -q "$work/mnt" && umount "$work/mnt"
  [[ -n $loop ]] && losetup -d "$loop"
  rm -rf "$work"
}
trap cleanup EXIT INT TERM
trap 'log "failed at line $LINENO: $BASH_COMMAND"' ERR
rm -rf "$work"
mkdir -p "$work/mnt"
root=$work/root

log "debootstrap Debian 13 (trixie) into $root (about 2 minutes)"
debootstrap --variant=minbase --include="$debs" trixie "$root" "$(mirror)" >"$work/debootstrap.log" 2>&1 \
  || { tail -n 20 "$work/debootstrap.log" >&2; exit 2; }

# The vagrant user: passwordless sudo, Vagrant's insecure key (Vagrant swaps it on first up).
key=$(find /usr/share/rubygems-integration /opt/vagrant -name vagrant.pub -path '*keys*' 2>/dev/null | head -n1 || true)
[[ -n $key ]] || die "Vagrant's insecure public key (keys/vagrant.pub) not found: is vagrant installed?"
chroot "$root" useradd -m -s /bin/bash vagrant
install -d -m 0700 -o 1000 -g 1000 "$root/home/vagrant/.ssh"
install -m 0600 -o 1000 -g 1000 "$key" "$root/home/vagrant/.ssh/authorized_keys"
echo 'vagrant ALL=(ALL) NOPASSWD: ALL' >"$root/etc/sudoers.d/vagrant"
chmod 0440 "$root/etc/sudoers.d/vagrant"
echo 'UseDNS no' >"$root/etc/ssh/sshd_config.d/vagrant.conf"
# DHCP on whatever NIC the provider gives (net.ifnames=0 below: eth0).
cat >"$root/etc/systemd/network/20-dhcp.network" <<'NET'
[Match]
Name=eth* en*

[Network]
DHCP=yes
NET
chroot "$root" systemctl enable systemd-networkd ssh >/dev/null 2>&1
# A test box only: package installs must not rebuild the initramfs (busybox triggers it), which
# takes minutes under emulation and changes nothing the lab needs.
conf=$root/etc/initramfs-tools/update-initramfs.conf
grep -q '^update_initramfs=' "$conf" || die "no update_initramfs= in $conf"
sed -i 's/^update_initramfs=.*/update_initramfs=no/' "$conf"
echo lab >"$root/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 lab\n' >"$root/etc/hosts"
echo "deb $(mirror) trixie main" >"$root/etc/apt/sources.list"
rm -f "$root"/var/cache/apt/archives/*.deb
kernel=$(compgen -G "$root/boot/vmlinuz-*" | sort | tail -n1 | xargs -r basename)
initrd=$(compgen -G "$root/boot/initrd.img-*" | sort | tail -n1 | xargs -r basename)
[[ -n $kernel && -n $initrd ]] || die "no kernel or initramfs in $root/boot (see $work/debootstrap.log)"

# The disk: MBR, one bootable partition from 1 MiB, ext4 without the features extlinux lacks.
log "making the bootable disk"
disk=$work/disk.raw
truncate -s 8G "$disk"
echo 'start=2048, type=83, bootable' | sfdisk -q "$disk"
uuid=$(cat /proc/sys/kernel/random/uuid)
mkfs.ext4 -q -F -U "$uuid" -L lab -O '^64bit,^metadata_csum,^orphan_file' -E offset=1048576 \
  -d "$root" "$disk" $((8 * 1024 - 1))M
rm -rf "$root"
dd if=/usr/lib/syslinux/mbr/mbr.bin of="$disk" bs=440 count=1 conv=notrunc status=none
# the partition through a loop device at its offset (no partition nodes needed in /dev)
loop=$(losetup --find --show --offset 1048576 "$disk")
mount "$loop" "$work/mnt"
echo "UUID=$uuid / ext4 errors=remount-ro 0 1" >"$work/mnt/etc/fstab"
mkdir -p "$work/mnt/boot/extlinux"
cat >"$work/mnt/boot/extlinux/extlinux.conf" <<CONF
DEFAULT debian
TIMEOUT 1
LABEL debian
  KERNEL /boot/$kernel
  INITRD /boot/$initrd
  APPEND root=UUID=$uuid ro net.ifnames=0 console=ttyS0 console=tty0
CONF
extlinux --install "$work/mnt/boot/extlinux" >/dev/null 2>&1
umount "$work/mnt"
losetup -d "$loop"
loop=

log "packing the box"
qemu-img convert -O qcow2 "$disk" "$work/box.img"
rm -f "$disk"
echo '{"provider": "libvirt", "format": "qcow2", "virtual_size": 8}' >"$work/metadata.json"
cat >"$work/Vagrantfile" <<'VF'
Vagrant.configure("2") do |config|
  config.vm.provider :libvirt do |libvirt|
    libvirt.disk_bus = "virtio"
  end
end
VF
tar -C "$work" -cf "$out.tmp" metadata.json Vagrantfile box.img
mv "$out.tmp" "$out"
echo "$recipe" >"$out.recipe"
log "built $out ($(du -h "$out" | cut -f1))"
