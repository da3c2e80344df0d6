"""serve/xnnpack.py: the thread that makes a TFLite interpreter may not ask Linux for AMX, no other thread
is held back, and the shipped int8 U-Net gives the same outputs either way."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import threading

import numpy as np
import pytest

from helpers import REPO
from lipseg_tf.serve import xnnpack

LINUX_X86_64 = sys.platform.startswith("linux") and platform.machine() == "x86_64"


def test_amx_is_read_from_the_cpu_flags(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx512f amx_bf16 amx_tile\n")
    assert not xnnpack.cpu_has_amx(str(cpuinfo))  # tiles without int8 tiles
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx512f amx_bf16 amx_int8 amx_tile\n")
    assert xnnpack.cpu_has_amx(str(cpuinfo))
    assert xnnpack.cpuinfo_field("processor", str(cpuinfo)) == "0"
    assert xnnpack.cpuinfo_field("model name", str(cpuinfo)) is None
    assert not xnnpack.cpu_has_amx(str(tmp_path / "missing"))


def test_off_amx_returns_what_make_returns_and_raises_what_it_raises():
    assert xnnpack.off_amx(lambda: 42) == 42

    def broken():
        raise ValueError("no model here")

    with pytest.raises(ValueError, match="no model here"):
        xnnpack.off_amx(broken)


def test_lipseg_tf_amx_1_lets_xnnpack_use_amx(monkeypatch):
    monkeypatch.setattr(xnnpack, "cpu_has_amx", lambda: True)
    monkeypatch.setenv(xnnpack.ENV, "1")
    assert not xnnpack.applies()
    monkeypatch.delenv(xnnpack.ENV)
    assert xnnpack.applies() == LINUX_X86_64


@pytest.mark.skipif(not LINUX_X86_64, reason="seccomp's arch_prctl filter is for Linux on x86-64")
def test_the_filtered_thread_may_not_ask_for_amx_and_the_others_still_may():
    answers = {}

    def filtered():
        xnnpack.deny_amx_request()
        answers["filtered"] = xnnpack.request_amx()
        child = threading.Thread(target=lambda: answers.__setitem__("its child", xnnpack.request_amx()))
        child.start()
        child.join()

    thread = threading.Thread(target=filtered)
    thread.start()
    thread.join()
    assert answers == {"filtered": 1, "its child": 1}  # EPERM from the filter
    # This thread was never filtered: Linux answers it (0 with AMX, EINVAL or the like without), not EPERM.
    assert xnnpack.request_amx() != 1
    later = {}
    thread = threading.Thread(target=lambda: later.__setitem__("answer", xnnpack.request_amx()))
    thread.start()
    thread.join()
    assert later["answer"] != 1


def _run_shipped_int8(amx: str) -> np.ndarray:
    code = (
        "import sys, numpy as np\n"
        "from lipseg_tf.serve import tflite\n"
        "net = tflite.CropNetwork(sys.argv[1], 128, 5)\n"
        "crops = np.random.default_rng(0).integers(0, 256, (2, 128, 128, 3), dtype=np.uint8)\n"
        ""
        "sys.stdout.buffer.write(net(crops).astype(np.float32).tobytes())\n")
    env = {**os.environ, xnnpack.ENV: amx, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}
    model = REPO / "lipseg_tf" / "pretrained" / "unet-small" / "crop.tflite"
    done = subprocess.run([sys.executable, "-c", code, str(model)], capture_output=True, env=env, check=True,
                          timeout=300)
    return np.frombuffer(done.stdout, np.float32)


def test_the_shipped_int8_unet_gives_the_same_outputs_with_and_without_amx():
    """On a CPU with AMX these are XNNPACK's AMX and AVX-512 VNNI kernels; elsewhere the same kernels twice."""
    kept_off, allowed = _run_shipped_int8("0"), _run_shipped_int8("1")
    assert kept_off.size == 2 * 128 * 128 * 5
    np.testing.assert_array_equal(kept_off, allowed)


def test_where_linux_refuses_the_filter_the_interpreter_is_made_all_the_same(monkeypatch):
    def refused():
        raise OSError(1, "seccomp filter refused: Operation not permitted")

    monkeypatch.setattr(xnnpack, "applies", lambda: True)
    monkeypatch.setattr(xnnpack, "deny_amx_request", refused)
    made_on = []
    assert xnnpack.off_amx(lambda: made_on.append(threading.current_thread().name) or "interpreter") == "interpreter"
    assert made_on == ["xnnpack-init"]  # still on its own thread, unfiltered
