"""Seccomp: a filter every system call of the container passes through (lesson 21).

A seccomp filter is a small classic-BPF program the kernel runs on each system call, before the
call itself, with the call's number, the architecture (ABI) and its six arguments as input
(`struct seccomp_data`, <linux/seccomp.h>). Its answer is an action: allow, fail with an errno,
log, trap, or kill. A filter can never be removed, only stacked with more, and it is inherited
by every child and kept across execve(2). Installing one needs no_new_privs, or CAP_SYS_ADMIN.

Profiles are data in the OCI / Docker seccomp JSON format (`defaultAction`, `syscalls` with
`names`, `action`, `errnoRet`, `args`, `includes`/`excludes`), so Docker's and podman's
published profiles load as they are; `compile` turns one into instructions, and
`Instruction.__str__` shows each as a disassembler would. The program:

1. loads the architecture, and kills the process when it is not the native one: the 32-bit x86
   ABI (int 0x80) numbers calls differently, so a filter that checks numbers without the
   architecture is bypassed by switching ABI; on x86_64 the x32 ABI (numbers with bit 30 set)
   is refused the same way;
2. loads the call's number and compares it with each rule's, in the profile's order; a rule
   with `args` loads each argument's two 32-bit halves and compares them; the first rule that
   matches gives its action;
3. gives `defaultAction` when no rule matched.

`DEFAULT` is pycontain's profile: everything allowed but what Docker's default profile denies a
container without extra capabilities (the namespace and mount calls, module and kexec loading,
the keyring, bpf, perf_event_open, open_by_handle_at, reboot, swap, setting the clocks, ...),
each failing with EPERM; clone3(2), whose flags sit in memory a filter cannot read, fails with
ENOSYS, so that the C library falls back to clone(2), whose namespace flags the filter can see.
Docker's own profile is an allow-list instead (an unknown call fails): `load` it from its file.

`init` installs the filter last, after no_new_privs (or, without no_new_privs, before the
capabilities are dropped, while CAP_SYS_ADMIN is held, as runc does).

    >>> program = compile({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
    ...     {"names": ["unshare"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}, machine="x86_64")
    >>> print(listing(program))
      0  ld [4]                          ; arch
      1  jeq #0xc000003e, +1, +0         ; x86_64?
      2  ret KILL_PROCESS
      3  ld [0]                          ; nr
      4  jge #0x40000000, +0, +1         ; x32?
      5  ret KILL_PROCESS
      6  jeq #272, +0, +1                ; unshare
      7  ret ERRNO(1)
      8  ret ALLOW

See also: seccomp(2), seccomp_unotify(2), the kernel's
Documentation/userspace-api/seccomp_filter.rst,
the OCI runtime spec (config-linux.md, "Seccomp"), moby's profiles/seccomp/default.json.
Left out: SCMP_ACT_NOTIFY (a supervisor answering calls), the flags of seccomp(2), filtering the
32-bit ABIs (refused instead), and libseccomp's binary search over the numbers (a linear scan).
"""

from __future__ import annotations

import os
from collections import namedtuple

from pycontain import syscalls
from pycontain.errors import SpecError

TYPE_CHECKING = False
if TYPE_CHECKING:  # `pycontain run` imports this module: typing costs it ~5 ms
    from typing import Any


def __getattr__(name: str) -> Any:
    """`NUMBERS` and `OTHER_ABI_NAMES`, the system call tables, imported on first use: init
    imports this module only to install the filter the command compiled (or its cache kept)."""
    if name in ("NUMBERS", "OTHER_ABI_NAMES"):
        from pycontain.security import syscall_numbers

        return getattr(syscall_numbers, name)
    raise AttributeError(f"module 'pycontain.security.seccomp' has no attribute {name!r}")

#: classic BPF opcodes (<linux/bpf_common.h>)
LD_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS: A = the 32-bit word at offset k of seccomp_data
AND = 0x54  # BPF_ALU | BPF_AND | BPF_K: A &= k
JEQ, JGT, JGE = 0x15, 0x25, 0x35  # BPF_JMP | BPF_JEQ/JGT/JGE | BPF_K
RET = 0x06  # BPF_RET | BPF_K: return k
#: where struct seccomp_data keeps each word: nr, arch, then args[i] as two 32-bit halves
NR, ARCH = 0, 4
#: the audit architecture of each ABI pycontain filters (<linux/audit.h>)
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
#: what Docker's profiles call these architectures (`includes.arches`)
PROFILE_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}
X32_SYSCALL_BIT = 0x40000000
#: each action's return value (<linux/seccomp.h>); ERRNO and TRACE carry 16 bits of data
ACTIONS = {"SCMP_ACT_KILL_PROCESS": 0x80000000, "SCMP_ACT_KILL_THREAD": 0, "SCMP_ACT_KILL": 0,
           "SCMP_ACT_TRAP": 0x00030000, "SCMP_ACT_ERRNO": 0x00050000,
           "SCMP_ACT_TRACE": 0x7FF00000, "SCMP_ACT_LOG": 0x7FFC0000,
           "SCMP_ACT_ALLOW": 0x7FFF0000}
#: the comparisons an argument rule may make, as libseccomp names them
OPERATORS = ("SCMP_CMP_EQ", "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_GT",
             "SCMP_CMP_GE", "SCMP_CMP_MASKED_EQ")
#: seccomp(2)'s operation that installs a filter
SECCOMP_SET_MODE_FILTER = 1
#: the most instructions a filter may have (BPF_MAXINSNS)
MAX_INSTRUCTIONS = 4096
EPERM, ENOSYS = 1, 38
#: clone(2)'s flags that make namespaces (CLONE_NEWNS ... CLONE_NEWNET, CLONE_NEWCGROUP)
CLONE_NAMESPACE_FLAGS = 0x7E020000

#: pycontain's default: allow all but what Docker's default profile denies a container that
#: has no extra capability; a rule with `excludes.caps` is left out when the container keeps
#: that capability (`--cap-add SYS_ADMIN` gives back mount and the namespace calls, as Docker).
DEFAULT: dict[str, Any] = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [
        {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": CLONE_NAMESPACE_FLAGS, "valueTwo": 0,
                   "op": "SCMP_CMP_MASKED_EQ"}],
         "comment": "clone without a namespace flag; with one, the next rule"},
        {"names": ["clone", "unshare", "setns", "mount", "umount2", "pivot_root", "fsopen",
                   "fsconfig", "fsmount", "fspick", "open_tree", "move_mount", "mount_setattr",
                   "bpf", "fanotify_init", "lookup_dcookie", "perf_event_open", "quotactl",
                   "quotactl_fd", "syslog", "name_to_handle_at"],
         "action": "SCMP_ACT_ERRNO", "errnoRet": EPERM, "excludes": {"caps": ["CAP_SYS_ADMIN"]},
         "comment": "namespaces, mounts and the kernel's internals: CAP_SYS_ADMIN's calls"},
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS,
         "excludes": {"caps": ["CAP_SYS_ADMIN"]},
         "comment": "its flags are in memory the filter cannot read: the C library falls back "
                    "to clone"},
        {"names": ["open_by_handle_at"], "action": "SCMP_ACT_ERRNO", "errnoRet": EPERM,
         "excludes": {"caps": ["CAP_DAC_READ_SEARCH"]}, "comment": "the 'shocker' escape"},
        {"names": ["init_module", "finit_module", "delete_module", "kexec_load",
                   "kexec_file_load"], "action": "SCMP_ACT_ERRNO", "errnoRet": EPERM,
         "excludes": {"caps": ["CAP_SYS_MODULE"]}, "comment": "code into the host's kernel"},
        {"names": ["reboot"], "action": "SCMP_ACT_ERRNO", "errnoRet": EPERM,
         "excludes": {"caps": ["CAP_SYS_BOOT"]}},
        {"names": ["settimeofday", "clock_settime", "clock_adjtime", "adjtimex"],
         "action": "SCMP_ACT_ERRNO", "errnoRet": EPERM, "excludes": {"caps": ["CAP_SYS_TIME"]},
         "comment": "the clocks are the host's (lesson 11)"},
        *({"names": names, "action": "SCMP_ACT_ERRNO", "errnoRet": EPERM,
           "excludes": {"caps": [cap]}} for cap, names in (
            ("CAP_SYS_PTRACE", ["kcmp", "process_madvise"]), ("CAP_SYS_PACCT", ["acct"]),
            ("CAP_SYS_RAWIO", ["iopl", "ioperm"]), ("CAP_SYS_TTY_CONFIG", ["vhangup"]),
            ("CAP_SYS_NICE", ["get_mempolicy", "set_mempolicy", "mbind"]))),
        *({"names": ["personality"], "action": "SCMP_ACT_ALLOW",
           "args": [{"index": 0, "value": persona, "op": "SCMP_CMP_EQ"}],
           "comment": "Linux, with or without UNAME26, or asking"}
          for persona in (0, 8, 0x20000, 0x20008, 0xFFFFFFFF)),
        {"names": ["add_key", "request_key", "keyctl", "personality", "swapon", "swapoff",
                   "userfaultfd", "uselib", "nfsservctl", "_sysctl", "create_module",
                   "get_kernel_syms", "query_module", "sysfs", "ustat"],
         "action": "SCMP_ACT_ERRNO", "errnoRet": EPERM,
         "comment": "the keyring is not namespaced; an other personality turns off address "
                    "randomisation; the rest are old or the host's"},
    ],
}
_PROFILE_KEYS = {"defaultAction", "defaultErrnoRet", "defaultErrno", "architectures", "archMap",
                 "syscalls", "flags", "listenerPath", "listenerMetadata"}
_RULE_KEYS = {"names", "name", "action", "errnoRet", "errno", "args", "includes", "excludes",
              "comment"}


class Instruction(namedtuple("Instruction", "code jt jf k note", defaults=("",))):
    """One classic-BPF instruction (`struct sock_filter`: code, jt, jf, k); jumps count from the
    next instruction; `note` says what it means, for the listing only."""

    __slots__ = ()

    def __str__(self) -> str:
        if self.code == LD_ABS:
            text = f"ld [{self.k}]"
        elif self.code == AND:
            text = f"and #{self.k:#x}"
        elif self.code == RET:
            text = f"ret {action_name(self.k)}"
        else:
            op = {JEQ: "jeq", JGT: "jgt", JGE: "jge"}[self.code]
            value = f"{self.k:#x}" if self.k > 4095 else str(self.k)
            text = f"{op} #{value}, +{self.jt}, +{self.jf}"
        return f"{text:<31} ; {self.note}" if self.note else text


def action_name(value: int) -> str:
    """The action a return value stands for: `ERRNO(1)`, `ALLOW`, ...

    >>> action_name(0x00050001), action_name(0x7FFF0000), action_name(0x80000000)
    ('ERRNO(1)', 'ALLOW', 'KILL_PROCESS')
    """
    if value in (0x80000000, 0, 0x7FFF0000, 0x7FFC0000, 0x00030000):
        return {0x80000000: "KILL_PROCESS", 0: "KILL_THREAD", 0x7FFF0000: "ALLOW",
                0x7FFC0000: "LOG", 0x00030000: "TRAP"}[value]
    base = value & 0xFFFF0000
    name = {0x00050000: "ERRNO", 0x7FF00000: "TRACE"}.get(base, hex(base))
    return f"{name}({value & 0xFFFF})"


def listing(program: list[Instruction]) -> str:
    """The program, one numbered instruction per line."""
    return "\n".join(f"{i:>3}  {instruction}" for i, instruction in enumerate(program))


def load(profile: object, parameter: str = "seccomp") -> dict[str, Any]:
    """A profile checked: a dict, a JSON text or the path of a JSON file (Docker's format).

    Refused with a `SpecError` naming `parameter`, with where in the profile as its hint: a
    file that is not JSON (line and column), an unknown key, action or operator, a call no
    architecture knows (with the nearest names).

    >>> load({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["unshar"],
    ...       "action": "SCMP_ACT_ERRNO"}]})  # doctest: +NORMALIZE_WHITESPACE
    Traceback (most recent call last):
    ...
    pycontain.errors.SpecError: `seccomp` must be a profile whose rules name system calls,
      got 'unshar'
      hint: in syscalls[0]: did you mean unshare?
    """
    if isinstance(profile, (str, os.PathLike)):
        import json

        text, source = _read(profile, parameter)
        try:
            profile = json.loads(text)
        except json.JSONDecodeError as e:
            raise SpecError(parameter, "a seccomp profile in JSON (Docker's format)", source,
                            hint=f"line {e.lineno} column {e.colno}: {e.msg}") from None
    if not isinstance(profile, dict) or "defaultAction" not in profile:
        raise SpecError(parameter, "a profile with a defaultAction, in Docker's seccomp format",
                        profile if isinstance(profile, dict) else type(profile).__name__)

    def check(ok: bool, accepted: str, got: object, where: str, hint: str = "") -> None:
        if not ok:
            raise SpecError(parameter, accepted, got, hint=f"in {where}" + (
                f": {hint}" if hint else ""))

    unknown = sorted(set(profile) - _PROFILE_KEYS)
    check(not unknown, "a profile with the keys " + ", ".join(sorted(_PROFILE_KEYS)),
          ", ".join(unknown), "the profile")
    _action(profile["defaultAction"], profile.get("defaultErrnoRet"), parameter)
    rules = profile.get("syscalls") or []
    check(isinstance(rules, list), "a profile whose syscalls are a list of rules", rules,
          "syscalls")
    from pycontain.security.syscall_numbers import NUMBERS, OTHER_ABI_NAMES

    known = {n for table in NUMBERS.values() for n in table} | OTHER_ABI_NAMES
    for i, rule in enumerate(rules):
        where = f"syscalls[{i}]"
        check(isinstance(rule, dict), "a profile whose rules are {'names': [...], 'action': "
              "...}", rule, where)
        unknown = sorted(set(rule) - _RULE_KEYS)
        check(not unknown, "a profile whose rules have the keys " + ", ".join(
            sorted(_RULE_KEYS)), ", ".join(unknown), where)
        _action(rule.get("action"), rule.get("errnoRet"), parameter)
        for name in _names(rule):
            if name not in known:
                import difflib

                near = difflib.get_close_matches(name, sorted(known), n=3)
                check(False, "a profile whose rules name system calls", name, where,
                      f"did you mean {', '.join(near)}?" if near else
                      "no architecture pycontain knows has a call of that name")
        for argument in rule.get("args") or []:
            check(isinstance(argument, dict) and argument.get("op") in OPERATORS
                  and argument.get("index") in range(6),
                  "a profile whose argument tests are like {'index': 0, 'value': 8, 'op': "
                  "'SCMP_CMP_EQ'}, index 0-5, op " + ", ".join(OPERATORS), argument, where)
    return profile


def compile(profile: object, capabilities: frozenset[str] | None = None, *,
            machine: str | None = None, parameter: str = "seccomp") -> list[Instruction]:
    """The filter a profile describes, for the native architecture (`machine`, default this
    one) and a container that keeps `capabilities` (names with CAP_; None: all of them), which
    decide each rule's `includes`/`excludes`."""
    checked = load(profile, parameter)
    machine = machine or os.uname().machine
    if machine not in AUDIT_ARCH:
        raise SpecError(parameter, f"used on {' or '.join(AUDIT_ARCH)}", machine,
                        hint="pycontain knows those architectures' system call numbers")
    from pycontain.security.syscall_numbers import NUMBERS

    numbers = NUMBERS[machine]
    program = [Instruction(LD_ABS, 0, 0, ARCH, "arch"),
               Instruction(JEQ, 1, 0, AUDIT_ARCH[machine], f"{machine}?"),
               Instruction(RET, 0, 0, ACTIONS["SCMP_ACT_KILL_PROCESS"]),
               Instruction(LD_ABS, 0, 0, NR, "nr")]
    if machine == "x86_64":
        program += [Instruction(JGE, 0, 1, X32_SYSCALL_BIT, "x32?"),
                    Instruction(RET, 0, 0, ACTIONS["SCMP_ACT_KILL_PROCESS"])]
    for rule in checked.get("syscalls") or []:
        if not _applies(rule, machine, capabilities):
            continue
        result = _action(rule["action"], rule.get("errnoRet"), parameter)
        for name in _names(rule):
            if name in numbers:
                program += _rule(numbers[name], name, rule.get("args") or [], result)
    default = _action(checked["defaultAction"], checked.get("defaultErrnoRet"), parameter)
    program.append(Instruction(RET, 0, 0, default))
    if len(program) > MAX_INSTRUCTIONS:
        raise SpecError(parameter, f"a profile whose filter has at most {MAX_INSTRUCTIONS} "
                        "instructions", f"{len(program)} instructions")
    return program


def choose(given: object, capabilities: frozenset[str] | None) -> bytes | None:
    """Spec's `seccomp`: None or "unconfined" (no filter), "default" (`DEFAULT`), a profile
    (a dict, JSON text or a file's path), as the filter init installs, for a container that
    keeps `capabilities`."""
    if given is None or given == "unconfined":
        return None
    return assemble(compile(DEFAULT if given == "default" else given, capabilities))


def assemble(program: list[Instruction]) -> bytes:
    """The program as the kernel reads it: an array of `struct sock_filter` (u16 code, u8 jt,
    u8 jf, u32 k).

    >>> assemble([Instruction(RET, 0, 0, 0x7FFF0000)]).hex()
    '060000000000ff7f'
    """
    import struct

    return b"".join(struct.pack("=HBBI", i.code, i.jt, i.jf, i.k) for i in program)


def install(filter_bytes: bytes) -> None:
    """seccomp(2) SECCOMP_SET_MODE_FILTER on the calling thread: from now on, for good."""
    syscalls.seccomp(SECCOMP_SET_MODE_FILTER, 0, filter_bytes)


def mode(pid: int | str = "self") -> int:
    """/proc/<pid>/status's `Seccomp:` field: 0 none, 1 strict, 2 a filter."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("Seccomp:"):
                return int(line.split()[1])
    return 0


def _read(path: str | os.PathLike[str], parameter: str) -> tuple[str, str]:
    text = os.fspath(path)
    if text.lstrip().startswith("{"):
        return text, "the JSON given"
    try:
        with open(text) as f:
            return f.read(), text
    except OSError as e:
        raise SpecError(parameter, "default, unconfined, or the path of a seccomp profile "
                        "in JSON (Docker's format)", text, hint=e.strerror) from None


def _names(rule: dict[str, Any]) -> list[str]:
    names = rule.get("names") or ([rule["name"]] if rule.get("name") else [])
    return list(names)


def _action(name: object, errno: object, parameter: str) -> int:
    if name == "SCMP_ACT_NOTIFY":
        raise SpecError(parameter, "an action pycontain can give: " + ", ".join(ACTIONS), name,
                        hint="SCMP_ACT_NOTIFY needs a supervisor to answer each call (left out)")
    if name not in ACTIONS:
        raise SpecError(parameter, "an action: " + ", ".join(ACTIONS), name)
    value = ACTIONS[str(name)]
    if name in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"):
        data = EPERM if errno is None else errno
        if not isinstance(data, int) or not 0 <= data <= 0xFFFF:
            raise SpecError(parameter, "an errnoRet of 0-65535", errno)
        value |= data
    return value


def _applies(rule: dict[str, Any], machine: str, capabilities: frozenset[str] | None) -> bool:
    """Docker's reading of `includes` (every one must hold) and `excludes` (none may)."""
    includes, excludes = rule.get("includes") or {}, rule.get("excludes") or {}
    arch = PROFILE_ARCH[machine]
    if includes.get("arches") and arch not in includes["arches"]:
        return False
    if arch in (excludes.get("arches") or ()):
        return False

    def kept(cap: str) -> bool:
        return capabilities is None or cap in capabilities

    if not all(kept(cap) for cap in includes.get("caps") or ()):
        return False
    if any(kept(cap) for cap in excludes.get("caps") or ()):
        return False
    if includes.get("minKernel"):
        release = tuple(int(p) for p in os.uname().release.split("-")[0].split(".")[:2])
        wanted = tuple(int(p) for p in str(includes["minKernel"]).split(".")[:2])
        if release < wanted:
            return False
    return True


def _rule(number: int, name: str, args: list[dict[str, Any]], result: int
          ) -> list[Instruction]:
    """`jeq number` then the argument tests, each jumping past the `ret` when it fails; a rule
    with arguments loads the number again for the next rule, since A then holds an argument."""
    tests: list[list[Instruction]] = [_compare(a) for a in args]
    body = [i for test in tests for i in test]
    if not body:
        return [Instruction(JEQ, 0, 1, number, name), Instruction(RET, 0, 0, result)]
    # Each test's jumps are written as "to its end" (pass) or "out" (fail): offsets resolved
    # here, "out" being the `ld [0]` after the `ret`.
    resolved: list[Instruction] = []
    position, total = 0, len(body) + 1  # body, then ret; "out" is at total
    for test in tests:
        end = position + len(test)
        for i in test:
            here = position + 1
            jt = _target(i.jt, here, end, total) - here if i.code in (JEQ, JGT, JGE) else 0
            jf = _target(i.jf, here, end, total) - here if i.code in (JEQ, JGT, JGE) else 0
            resolved.append(i._replace(jt=jt, jf=jf))
            position += 1
    head = Instruction(JEQ, 0, total, number, name)
    return [head, *resolved, Instruction(RET, 0, 0, result), Instruction(LD_ABS, 0, 0, NR, "nr")]


#: placeholders for a comparison's jumps: the next instruction, the test's end (it holds), out
_NEXT, _PASS, _FAIL = 0, 254, 255


def _target(mark: int, following: int, end: int, out: int) -> int:
    return {_PASS: end, _FAIL: out}.get(mark, following)


def _compare(argument: dict[str, Any]) -> list[Instruction]:
    """One 64-bit comparison of argument `index`, as 32-bit halves (high first), with jumps
    marked `_PASS`/`_FAIL`; `_NEXT` jumps become offsets in `_rule`."""
    index, op = argument["index"], argument["op"]
    value, two = int(argument.get("value", 0)), int(argument.get("valueTwo", 0))
    low, high = 16 + 8 * index, 20 + 8 * index
    note = f"args[{index}]"

    def ld(offset: int, half: str) -> Instruction:
        return Instruction(LD_ABS, 0, 0, offset, f"{note} {half}")

    def j(code: int, k: int, jt: int, jf: int) -> Instruction:
        return Instruction(code, jt, jf, k & 0xFFFFFFFF)

    hi, lo = value >> 32 & 0xFFFFFFFF, value & 0xFFFFFFFF
    if op == "SCMP_CMP_MASKED_EQ":
        return [ld(high, "high"), Instruction(AND, 0, 0, hi), j(JEQ, two >> 32, _NEXT, _FAIL),
                ld(low, "low"), Instruction(AND, 0, 0, lo), j(JEQ, two, _PASS, _FAIL)]
    if op == "SCMP_CMP_EQ":
        return [ld(high, "high"), j(JEQ, hi, _NEXT, _FAIL), ld(low, "low"),
                j(JEQ, lo, _PASS, _FAIL)]
    if op == "SCMP_CMP_NE":
        return [ld(high, "high"), j(JEQ, hi, _NEXT, _PASS), ld(low, "low"),
                j(JEQ, lo, _FAIL, _PASS)]
    # Ordered: decided by the high halves unless they are equal, then by the low ones.
    greater = op in ("SCMP_CMP_GT", "SCMP_CMP_GE")
    above, below = (_PASS, _FAIL) if greater else (_FAIL, _PASS)
    low_code = JGE if op in ("SCMP_CMP_GE", "SCMP_CMP_LT") else JGT
    return [ld(high, "high"), j(JGT, hi, above, _NEXT), j(JEQ, hi, _NEXT, below),
            ld(low, "low"), j(low_code, lo, above, below)]
