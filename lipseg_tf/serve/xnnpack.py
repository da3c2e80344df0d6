"""TensorFlow Lite's XNNPACK kept off Intel AMX, where AMX makes lipseg_tf's int8 U-Nets slower.

On an Intel Xeon with AMX (flags amx_tile, amx_int8; Sapphire Rapids and later) XNNPACK runs int8
convolutions through AMX tiles of 16 pixels x 64 output channels, and a transposed convolution through
its 1 x 64 AMX kernel one pixel row at a time. lipseg_tf's U-Nets have 16-64 channels a stage, so most of
each tile is wasted: the small U-Net's int8 copy took 2.0 ms a run on such a machine (2026-12-07, one
thread), 1.2 ms through the AVX-512 VNNI kernels XNNPACK uses where AMX is not allowed, with the same
outputs to the bit. XNNPACK asks Linux for AMX once per process (arch_prctl ARCH_REQ_XCOMP_PERM, when
its hardware configuration is first read, as the first interpreter with the XNNPACK delegate is made) and
uses it only if Linux says yes.

off_amx(make) therefore makes an interpreter on a short-lived thread of its own that may not ask for AMX:
a seccomp filter on that thread alone turns the request into EPERM (no other thread is filtered, and the
process may still get AMX for anything else: oneDNN in TensorFlow asks for itself). The filter goes with
the thread. Where the CPU has no AMX, off Linux or x86-64, where XNNPACK has already read its hardware
configuration in this process (an interpreter made before lipseg_tf made one), or with LIPSEG_TF_AMX=1 in
the environment, make runs as it is.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform
import struct
import sys
import threading
from typing import Callable, Sequence, TypeVar

log = logging.getLogger("lipseg_tf")

T = TypeVar("T")
ENV = "LIPSEG_TF_AMX"  # "1": let XNNPACK use AMX where the CPU has it

# Linux, x86-64 (linux/prctl.h, seccomp.h, filter.h, audit.h; asm/prctl.h; the syscall table)
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
EPERM = 1
AUDIT_ARCH_X86_64 = 0xC000003E
SYS_ARCH_PRCTL = 158
ARCH_REQ_XCOMP_PERM = 0x1023
XFEATURE_XTILEDATA = 18
BPF_LD_W_ABS, BPF_JEQ_K, BPF_RET_K = 0x20, 0x15, 0x06
# struct seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6]
NR_OFFSET, ARCH_OFFSET, ARG0_OFFSET = 0, 4, 16


def _instruction(code: int, k: int, jump_true: int = 0, jump_false: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jump_true, jump_false, k)


# arch_prctl(ARCH_REQ_XCOMP_PERM, ...) -> EPERM; every other system call allowed.
AMX_REQUEST_FILTER = b"".join([
    _instruction(BPF_LD_W_ABS, ARCH_OFFSET),
    _instruction(BPF_JEQ_K, AUDIT_ARCH_X86_64, 0, 5),
    _instruction(BPF_LD_W_ABS, NR_OFFSET),
    _instruction(BPF_JEQ_K, SYS_ARCH_PRCTL, 0, 3),
    _instruction(BPF_LD_W_ABS, ARG0_OFFSET),  # the low half of args[0] (little-endian)
    _instruction(BPF_JEQ_K, ARCH_REQ_XCOMP_PERM, 0, 1),
    _instruction(BPF_RET_K, SECCOMP_RET_ERRNO | EPERM),
    _instruction(BPF_RET_K, SECCOMP_RET_ALLOW),
])


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def cpuinfo_field(key: str, cpuinfo: str = "/proc/cpuinfo") -> str | None:
    """The value of the first `key` line of a Linux cpuinfo file ("flags", "model name"); None when the
    file cannot be read or has no such line."""
    try:
        with open(cpuinfo, errors="replace") as file:
            return next((line.partition(":")[2].strip() for line in file if line.startswith(key)), None)
    except OSError:
        return None


def cpu_has_amx(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether the CPU (Linux's /proc/cpuinfo flags) has AMX's int8 tiles."""
    return "amx_int8" in (cpuinfo_field("flags", cpuinfo) or "").split()


def applies() -> bool:
    """Whether off_amx filters: Linux on x86-64, a CPU with AMX, LIPSEG_TF_AMX not "1"."""
    return (os.environ.get(ENV, "") != "1" and sys.platform.startswith("linux")
            and platform.machine() in ("x86_64", "AMD64") and cpu_has_amx())


def deny_amx_request() -> None:
    """Filter the calling thread (and threads it starts) so that asking Linux for AMX fails with EPERM.
    For good on that thread: call it only on a thread that ends soon. Raises OSError where Linux refuses."""
    libc = ctypes.CDLL(None, use_errno=True)
    code = ctypes.create_string_buffer(AMX_REQUEST_FILTER, len(AMX_REQUEST_FILTER))
    program = _SockFprog(len(AMX_REQUEST_FILTER) // 8, ctypes.addressof(code))
    ulong = ctypes.c_ulong
    # no_new_privs (this thread only) lets an unprivileged thread install a filter
    if libc.prctl(PR_SET_NO_NEW_PRIVS, ulong(1), ulong(0), ulong(0), ulong(0)) != 0 or libc.prctl(
            PR_SET_SECCOMP, ulong(SECCOMP_MODE_FILTER), ctypes.byref(program), ulong(0), ulong(0)) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"seccomp filter refused: {os.strerror(error)}")


def request_amx() -> int:
    """What Linux answers this thread's request for AMX tiles: 0 granted, else the errno."""
    libc = ctypes.CDLL(None, use_errno=True)
    result = libc.syscall(ctypes.c_long(SYS_ARCH_PRCTL), ctypes.c_ulong(ARCH_REQ_XCOMP_PERM),
                          ctypes.c_ulong(XFEATURE_XTILEDATA))
    return 0 if result == 0 else ctypes.get_errno()


def off_amx(make: Callable[[], T]) -> T:
    """make(), which makes (and allocates) a TensorFlow Lite interpreter, where applies() on a thread that
    may not ask for AMX (the module's docstring); else as it is. make's exception is raised here."""
    if not applies():
        return make()
    result: dict = {}

    def run() -> None:
        try:
            deny_amx_request()
        except (OSError, AttributeError) as error:  # a sandbox without seccomp: XNNPACK may use AMX
            log.debug("XNNPACK may use AMX: %s", error)
        try:
            result["value"] = make()
        except BaseException as error:  # noqa: BLE001 (raised again on the caller's thread)
            result["error"] = error

    thread = threading.Thread(target=run, name="xnnpack-init")
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


def interpreter(interpreter_class, model_path, num_threads: int | None, input_shape: Sequence[int] | None = None):
    """interpreter_class (TensorFlow's or LiteRT's Interpreter) of a .tflite file, its tensors allocated
    (which makes its XNNPACK delegate), made through off_amx; input_shape: its first input resized to
    that shape first."""
    def make():
        made = interpreter_class(model_path=str(model_path), num_threads=num_threads)
        if input_shape is not None:
            made.resize_tensor_input(made.get_input_details()[0]["index"], list(input_shape))
        made.allocate_tensors()
        return made

    return off_amx(make)
