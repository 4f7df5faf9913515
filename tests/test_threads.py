"""numpy's BLAS on one thread (mosslite/_threads.py), in a process of its own: the
limit lasts for the rest of the process, so the test process is left alone."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import numpy, threadpoolctl
from mosslite._threads import one_blas_thread
blas = lambda: [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
before = blas()
one_blas_thread(); one_blas_thread()
print(before, blas())
"""


def test_one_blas_thread_holds_numpy_s_blas_to_one_thread() -> None:
    done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120, check=True)
    before, after = (eval(part + "]") for part in done.stdout.strip().rstrip("]").split("] "))  # noqa: S307
    assert before and after == [1] * len(before)


def test_import_mosslite_leaves_blas_threads_alone() -> None:
    code = "import threadpoolctl, numpy, mosslite.index.reader; print(sum(i['num_threads'] for i in threadpoolctl.threadpool_info()))"
    plain = "import threadpoolctl, numpy; print(sum(i['num_threads'] for i in threadpoolctl.threadpool_info()))"
    run = [subprocess.run([sys.executable, "-c", c], capture_output=True, text=True, check=True).stdout for c in (code, plain)]
    assert run[0] == run[1]
