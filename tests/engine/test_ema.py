"""The foreach EMA update: identical to the per-tensor loop it replaced, in a constant handful of ops."""
import copy

import torch

from rs3d.engine import ModelEma, ema_decay
from rs3d.models import ResNet3D, resnet3d_rs
from rs3d.studies.ema_launches import OpCounter, loop_ema_update


def tiny(seed=0):
    torch.manual_seed(seed)
    return ResNet3D(blocks=[2, 1], widths=[4, 8], num_classes=5, stem_width=8, temporal_kernels=[1, 3],
                    temporal_strides=[1, 1], spatial_strides=[1, 2])


def test_foreach_update_is_bit_identical_to_the_loop():
    model = tiny()
    ema = ModelEma(model, decay=0.99)
    reference = copy.deepcopy(ema.module)
    for step in range(5):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.1)
            for m in model.modules():
                if isinstance(m, torch.nn.BatchNorm3d):
                    m.running_mean.add_(0.5)
                    m.num_batches_tracked += 1
        loop_ema_update(reference, model, ema_decay(0.99, step))
        ema.update(model)
    for (name, a), b in zip(ema.module.state_dict().items(), reference.state_dict().values()):
        assert torch.equal(a, b), name
    assert ema.updates == 5


def test_rs3d_50_update_launches_a_constant_handful_of_ops():
    with torch.device("meta"):  # op counting needs no memory and no arithmetic
        model = resnet3d_rs(50)
    ema = ModelEma(model)
    tensors = len(model.state_dict())
    ema.update(model)  # builds the cached tensor lists
    with OpCounter() as counter:
        ema.update(model)
    with OpCounter() as loop_counter:
        loop_ema_update(ema.module, model, 0.5)
    assert tensors > 400 and loop_counter.count > 1500  # 404 tensors: ~1,960 dispatched ops per step before
    assert counter.count <= 3, counter.count
