"""The container's filesystem: a root of its own and what it is made of.

`rootfs` switches the root (pivot_root, lesson 05) and finds or builds the shared root
filesystem, `embedded` builds it (busybox or host binaries, with a record of how), `layers`
stacks read-only layers under a writable one with overlayfs and `images` unpacks OCI image
layers into them (lesson 06), `escape` shows why chroot is no jail (lesson 05).
"""
