"""init_distributed reads torchrun's environment and gives collectives the configured timeout."""
import datetime

import torch

from rs3d.config import get_cfg
from rs3d.utils import distributed


def test_process_group_gets_the_configured_timeout(monkeypatch):
    calls = {}
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(distributed.dist, "is_initialized", lambda: False)
    monkeypatch.setattr(distributed.dist, "init_process_group", lambda backend, timeout: calls.update(
        backend=backend, timeout=timeout))
    info = distributed.init_distributed("cpu", get_cfg().TRAIN.DIST_TIMEOUT_MINUTES)
    assert (info.rank, info.world_size, info.local_rank, info.device) == (1, 2, 1, torch.device("cpu"))
    assert calls == {"backend": "gloo", "timeout": datetime.timedelta(minutes=180)}  # NCCL's default is 10
