"""What a container's processes may do once they are in (lesson 20: capabilities and
no_new_privs; lesson 21: seccomp).

The namespaces decide what a process sees; this layer decides which of root's powers it keeps.
It sits above `syscalls` and below `init` and `runtime`: `init` applies it last before the exec
(DESIGN, "Security defaults"), `spec` and `cli` check and choose what to apply.
"""
