"""What `make test-vagrant` asserts inside the lab VM, as root, with the lab's venv Python.

Run by tools/lab-vm/test-vagrant.sh through `vagrant ssh` after `vagrant up`: JupyterLab answers
on port 8888 only with its token, the token is root's alone, the service runs in a delegated
cgroup (a real kernel started through the Jupyter server creates a child cgroup with memory.max
beneath the service's cgroup), `pycontain doctor` is green, the io lesson's extra disk is there,
and lesson 00 (solution build) executes. Prints one line per check; exits 1 if any failed.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path

SERVICE = "jupyterlab.service"
SERVICE_CGROUP = f"/system.slice/{SERVICE}"
BASE = "http://127.0.0.1:8888"
VENV = Path("/opt/pycontain/.venv/bin")
WORKSPACE = Path("/srv/lab/notebooks")
SOLUTIONS = Path("/opt/pycontain/notebooks/solutions")
TOKEN_FILE = Path("/etc/pycontain/jupyter-token")
failures: list[str] = []


def check(name: str, ok: bool, detail: object) -> None:
    print(f"{'ok  ' if ok else 'FAIL'}  {name}: {detail}", flush=True)
    if not ok:
        failures.append(name)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def http(path: str, token: str = "", method: str = "GET") -> tuple[int, str, str]:
    """(status, Location header, body) of one request, redirects not followed."""
    request = urllib.request.Request(BASE + path, method=method)
    if token:
        request.add_header("Authorization", f"token {token}")
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=60) as response:
            return response.status, response.headers.get("Location", ""), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Location", ""), ""


KERNEL_CODE = """
import os
from pycontain import cgroups, lab
cg = cgroups.create(("memory",), label="vagrant-check")
cg.set({"memory.max": str(64 << 20)})
print("CHECK", cg.path, cg.read("memory.max"), open("/proc/self/cgroup").read().strip())
cg.remove()
print("LEFT", lab.leftovers())
"""


async def run_in_kernel(kernel_id: str, token: str, code: str) -> tuple[str, str]:
    """Execute `code` in a kernel of the Jupyter server, over its websocket (messaging spec 5.3)."""
    from tornado.websocket import websocket_connect

    ws = await websocket_connect(f"ws://127.0.0.1:8888/api/kernels/{kernel_id}/channels"
                                 f"?token={token}")
    msg_id = uuid.uuid4().hex
    await ws.write_message(json.dumps({
        "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "check",
                   "session": uuid.uuid4().hex, "version": "5.3", "date": ""},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": False,
                    "user_expressions": {}, "allow_stdin": False, "stop_on_error": True}}))
    output, status = [], ""
    while not status:
        raw = await ws.read_message()
        if raw is None:
            return "closed", "".join(output)
        message = json.loads(raw)
        if message.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind = message["msg_type"]
        if kind == "stream":
            output.append(message["content"]["text"])
        elif kind == "error":
            output.append("\n".join(message["content"]["traceback"]))
        elif kind == "execute_reply":
            status = message["content"]["status"]
    ws.close()
    return status, "".join(output)


def main() -> int:
    token = TOKEN_FILE.read_text().strip()
    st = TOKEN_FILE.stat()
    check("token root-only", st.st_uid == 0 and st.st_mode & 0o777 == 0o600,
          f"{TOKEN_FILE} uid {st.st_uid} mode {st.st_mode & 0o777:o}")

    status, _, _ = http("/api/status")
    check("no token: refused", status == 403, f"GET /api/status -> {status}")
    status, location, _ = http("/lab")
    check("no token: sent to login", status == 302 and "/login" in location,
          f"GET /lab -> {status} {location}")
    status, _, _ = http("/api/status", "not-the-token")
    check("wrong token: refused", status == 403, f"GET /api/status (wrong token) -> {status}")
    status, _, _ = http("/api/status", token)
    check("token: accepted", status == 200, f"GET /api/status (token) -> {status}")

    show = subprocess.run(["systemctl", "show", "-p", "MainPID", "-p", "Delegate", SERVICE],
                          capture_output=True, text=True).stdout
    props = dict(line.split("=", 1) for line in show.split())
    main_cgroup = Path(f"/proc/{props.get('MainPID', '0')}/cgroup").read_text().strip()
    check("service delegated, Jupyter in a subgroup",
          props.get("Delegate") == "yes" and main_cgroup == f"0::{SERVICE_CGROUP}/supervisor",
          f"Delegate={props.get('Delegate')}, Jupyter in {main_cgroup}")

    # as the README writes it: a bare `pycontain` on a root login's PATH
    doctor = subprocess.run(["pycontain", "doctor"], capture_output=True, text=True,
                            env=dict(os.environ, PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:"
                                                      "/usr/bin:/sbin:/bin"))
    check("pycontain doctor green", doctor.returncode == 0,
          f"exit {doctor.returncode}" + ("" if doctor.returncode == 0 else "\n" + doctor.stdout))

    disks = subprocess.run(["lsblk", "-dn", "-o", "NAME,SIZE"], capture_output=True,
                           text=True).stdout.split("\n")
    check("extra disk for the io lesson", any(d.startswith("vdb") for d in disks), disks)

    # A real kernel started by the Jupyter server: it lives in the service's cgroup
    status, _, body = http("/api/kernels", token, method="POST")
    kernel_id = json.loads(body)["id"] if status == 201 else ""
    check("kernel started through Jupyter", bool(kernel_id), f"POST /api/kernels -> {status}")
    if kernel_id:
        try:
            result, output = asyncio.run(asyncio.wait_for(
                run_in_kernel(kernel_id, token, KERNEL_CODE), timeout=600))
        finally:
            http(f"/api/kernels/{kernel_id}", token, method="DELETE")
        words = next((line.split() for line in output.splitlines()
                      if line.startswith("CHECK")), [])
        ok = (result == "ok" and len(words) == 4
              and words[1].startswith(f"/sys/fs/cgroup{SERVICE_CGROUP}/pycontain-vagrant-check-")
              and words[2] == str(64 << 20) and words[3].startswith(f"0::{SERVICE_CGROUP}/"))
        check("kernel makes a child cgroup with memory.max", ok, output.strip())
        check("kernel leaves nothing behind", "LEFT []" in output, output.strip().splitlines()[-1:])

    # Lesson 00 (solution build), executed like Jupyter would: from the service's subgroup
    (Path(f"/sys/fs/cgroup{SERVICE_CGROUP}/supervisor") / "cgroup.procs").write_text(
        str(os.getpid()))
    work = Path("/tmp/lab-vm-check")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    notebook = work / "00-set-up-the-lab.ipynb"
    check("learners are not served the solutions", not (WORKSPACE / "solutions").exists(),
          sorted(p.name for p in WORKSPACE.iterdir()))
    shutil.copy(SOLUTIONS / notebook.name, notebook)
    env = dict(os.environ, PYCONTAIN_CGROUP_PARENT=SERVICE_CGROUP, HOME="/root")
    run = subprocess.run([VENV / "jupyter", "nbconvert", "--to", "notebook", "--execute",
                          "--inplace", "--ExecutePreprocessor.timeout=900", str(notebook)],
                         capture_output=True, text=True, env=env, cwd=work)
    check("lesson 00 executes", run.returncode == 0,
          f"exit {run.returncode}" + ("" if run.returncode == 0 else "\n" + run.stderr[-3000:]))
    shutil.rmtree(work, ignore_errors=True)
    print(f"guest checks: {len(failures)} failed" + (f" ({', '.join(failures)})" if failures
                                                     else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
