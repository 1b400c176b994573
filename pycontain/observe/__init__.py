"""Watching containers: everything that measures, draws or shows, and nothing that isolates.

`probe` reports a process's namespaces and limits from the inside, `monitor` samples cgroup
files on a clock and waits for kernel events, `plot` and `widgets` draw for the notebooks,
`netdraw` the network, `cgroup_tree` the cgroup hierarchy, `display` the library's own code
(`pycontain.show`). The layers below never import from here.
"""
