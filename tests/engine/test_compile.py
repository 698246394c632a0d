"""TRAIN.COMPILE with DDP and with SyncBatchNorm (rs3d.engine.compile), on CPU: dynamo with the aot_eager backend
traces exactly what inductor would get, without the C++ build time."""
import functools
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from conftest import REPO_ROOT, tiny_cfg
from torch import nn

from rs3d.engine.compile import compile_training_net


@pytest.mark.slow
def test_sync_batchnorm_layers_stay_out_of_the_compiled_graphs():
    from rs3d.config import load_config
    from rs3d.models import build_model

    cfg = load_config(os.path.join(REPO_ROOT, "configs/toy/rs3d_tiny.yaml"),
                      ["MODEL.RESNET3D.WIDTH_MULTIPLIER", "0.125", "MODEL.RESNET3D.STEM_WIDTH", "8"])
    torch.manual_seed(0)
    model = nn.SyncBatchNorm.convert_sync_batchnorm(build_model(cfg))
    reference = nn.SyncBatchNorm.convert_sync_batchnorm(build_model(cfg))
    reference.load_state_dict(model.state_dict())
    graphs = []

    def counting(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    compiled = compile_training_net(model, model, backend=counting)
    clip = torch.randn(2, 3, 4, 32, 32)
    torch.manual_seed(1)  # the same dropout and drop-path masks
    out = compiled(clip)
    torch.manual_seed(1)
    torch.testing.assert_close(out, reference(clip), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(model.state_dict(), reference.state_dict())  # BN statistics updated alike
    bn_layers = sum(isinstance(m, nn.SyncBatchNorm) for m in model.modules())
    assert bn_layers > 10 and len(graphs) > bn_layers // 2  # compiled pieces between the BN layers
    traced = [str(node.target) for g in graphs for node in g.graph.nodes]
    assert not any("batch_norm" in t for t in traced) and any("conv3d" in t for t in traced)


def _worker(rank, toy_dir, out, port):
    import rs3d.engine.trainer as trainer_module
    from rs3d.engine import Trainer
    from rs3d.utils.distributed import DistInfo

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2",
                      LOCAL_RANK=str(rank))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=2)
    trainer_module.compile_training_net = functools.partial(compile_training_net, backend="aot_eager")
    weights = {}
    for compiled in (False, True):
        cfg = tiny_cfg(toy_dir, os.path.join(out, str(compiled)), "SOLVER.MAX_EPOCH", "1", "TRAIN.BATCH_SIZE", "4",
                       "TRAIN.COMPILE", str(compiled), "TRAIN.SYNC_BN", "True", "TRAIN.EVAL_PERIOD", "0",
                       "TEST.ENABLE", "False")
        trainer = Trainer(cfg, DistInfo(rank, 2, rank, torch.device("cpu")))
        trainer.train()
        weights[compiled] = trainer.model.state_dict()
    torch.save(weights, os.path.join(out, f"rank{rank}.pt"))
    torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_compiled_ddp_trains_like_eager_ddp(toy_dir, tmp_path):
    """Two gloo ranks, TRAIN.COMPILE True (dynamo's DDP graph splitting) against eager DDP: same weights within
    float tolerance, identical across ranks. TRAIN.SYNC_BN is on but CPU keeps plain BN (with a warning)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_worker, args=(toy_dir, str(tmp_path), port), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    for key, value in r0[True].items():
        assert torch.equal(value, r1[True][key]), key
        if value.is_floating_point():
            torch.testing.assert_close(value, r0[False][key], rtol=1e-3, atol=1e-4, msg=key)
