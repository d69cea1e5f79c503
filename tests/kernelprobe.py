"""The app's own Celery worker (splineviz.web.worker) with a probe, for tests/test_faults.py: each pool process
writes, as it starts and after the worker's own start-up, "PID trace_net cut_layer split_level" (how many compiled
signatures each kernel has; 0 = not loaded) to $KERNEL_PROBE_LOG. Run with ``celery -A kernelprobe:celery_app worker``
from tests/.
"""
from __future__ import annotations

import os

from celery.signals import worker_process_init

from splineviz.partition import kernels
from splineviz.web.worker import celery_app  # noqa: F401 - the worker under test


@worker_process_init.connect
def _probe(**_: object) -> None:
    with open(os.environ["KERNEL_PROBE_LOG"], "a") as out:
        counts = (len(k.signatures) for k in (kernels.trace_net, kernels.cut_layer, kernels.split_level))
        out.write(f"{os.getpid()} {' '.join(map(str, counts))}\n")
