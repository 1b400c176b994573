#!/bin/sh
# PID 1 of the cgroup-v2 guest, baked into the image: mount the two 9p shares and hand over to
# the checkout's guest-init.sh, so changing what the guest runs needs no new image.
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
modprobe 9pnet_virtio && modprobe 9p
mkdir -p /mnt/project /mnt/results
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,ro project /mnt/project
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 results /mnt/results
exec /bin/sh /mnt/project/tools/cgroup2-guest/guest-init.sh
