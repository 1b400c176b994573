"""pycontain as an OCI runtime: `pycontain-oci`, which podman, conmon and other OCI tools call
the way they call runc (lesson 24).

The OCI runtime specification describes a container as a *bundle*: a directory with a
`config.json` (what to run and how to isolate it) and a root filesystem. A runtime offers a
handful of verbs on it (create, start, state, kill, delete) and keeps each container's state
between them. The modules, one concept each:

- `config`: config.json -> `Spec`, every field pycontain cannot honour refused by its JSON path;
- `lifecycle`: the verbs over the state directory under `--root`;
- `cli`: the command, with runc's grammar and its JSON log lines for conmon;
- `podman`: Debian's podman, jailed in a cgroup of our own, driving `pycontain-oci`;
- `conformance`: the lifecycle checks of lesson 24, against any runtime binary.

See also: the OCI runtime spec (runtime.md, config.md, config-linux.md), runc(8).
"""
