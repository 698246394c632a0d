"""rs3d/studies/traffic.py, the device-free profile behind issue 19's item 4: bytes per op group on the meta device
(checked against hand counts), layout breaks on small CPU tensors, and the drop-path skip share (checked against
the conv shapes' own multiply-adds)."""
import pytest
import torch
from torch import nn

from rs3d.config import load_config
from rs3d.models.factory import build_model
from rs3d.models.resnet3d import ResNet3D
from rs3d.studies.levers import conv_shapes
from rs3d.studies.traffic import distinct_bytes, drop_path_skip_share, layout_breaks, step_traffic


def test_distinct_bytes_counts_a_broadcast_once():
    assert distinct_bytes(torch.empty(2, 3, 4, 5, 6)) == 2 * 3 * 4 * 5 * 6 * 4
    assert distinct_bytes(torch.empty(2, 3, 1, 1, 1, dtype=torch.bfloat16).expand(2, 3, 4, 5, 6)) == 2 * 3 * 2
    assert distinct_bytes(torch.empty(8, 6).t()) == 8 * 6 * 4


def test_bytes_of_a_conv_and_relu_step_match_a_hand_count():
    """Conv3d (no bias) + ReLU + sum: forward reads x and w, writes y; relu_ reads and writes y; backward: the sum's
    gradient is one float broadcast (4 distinct bytes), threshold_backward reads it and y and writes g (y's size);
    convolution_backward reads g, x, w and writes dw (x needs no gradient)."""
    net = nn.Sequential(nn.Conv3d(4, 8, 1, bias=False), nn.ReLU(inplace=True))
    shape = (2, 4, 3, 5, 5)
    traffic = step_traffic(net, shape, torch.float32)
    x, y, w = 2 * 4 * 75 * 4, 2 * 8 * 75 * 4, 8 * 4 * 4
    conv = (x + w + y) + (y + x + w + w)
    assert traffic.read["conv/GEMM"] + traffic.written["conv/GEMM"] == conv
    assert traffic.read["elementwise"] + traffic.written["elementwise"] == 2 * y + (4 + y + y)


def rs50_small(**kwargs) -> ResNet3D:
    return ResNet3D(blocks=(3, 4, 6, 3), widths=(4, 4, 8, 8), stem_width=8, num_classes=5, drop_path_rate=0.2,
                    **kwargs)


def test_the_fused_tail_moves_fewer_bytes_and_keeps_channels_last_in_backward():
    """Unfused (today's tail, plain mean), every SE / gate / head pool's backward writes a full NCDHW tensor
    (17 SE pools + 3 gate pools + the head = 21 in RS3D-50's structure); the fused tail with channel_mean writes
    none, and the whole step moves at least 10% fewer bytes."""
    shape = (2, 3, 4, 32, 32)
    torch.manual_seed(0)
    unfused, fused = rs50_small(fused_tail=False), rs50_small(fused_tail=True)
    threads = torch.get_num_threads()
    try:
        for n in (1, 2):  # the trainer limits the threads; oneDNN's conv layout changes with them, the answer may not
            torch.set_num_threads(n)
            assert dict(layout_breaks(unfused, shape)) == {("backward", "div"): 16 + 4 + 1}
            assert dict(layout_breaks(fused, shape)) == {}
    finally:
        torch.set_num_threads(threads)
    a, b = step_traffic(unfused, (16, 3, 8, 64, 64)), step_traffic(fused, (16, 3, 8, 64, 64))
    assert b.total_gb() < 0.9 * a.total_gb()
    assert b.group_gb()["conv/GEMM"] == pytest.approx(a.group_gb()["conv/GEMM"])  # same convolutions


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.2])
def test_drop_path_skip_share_is_the_rate_weighted_branch_share_of_the_conv_macs(rate):
    """Stage i's blocks drop with rate * (i + 2) / 5 (TF's schedule, written here independently); a block's branch
    is its three convs, not the shortcut. The total is the conv shapes' own count (levers.conv_shapes)."""
    cfg = load_config("configs/kinetics400/rs3d_50.yaml", ["MODEL.RESNET3D.DROP_PATH_RATE", str(rate)])
    with torch.device("meta"):
        model = build_model(cfg, init=False)
    shape = (2, 3, 8, 64, 64)
    total = sum(s.macs() * s.count for s in conv_shapes(model, shape))
    share = drop_path_skip_share(model, shape)
    saved = []
    for i, stage in enumerate(model.stages):
        for block in stage:
            for conv in (block.conv1, block.conv2, block.conv3):
                conv.register_forward_hook(lambda m, args, out, r=rate * (i + 2) / 5:
                                           saved.append(r * out.numel() * m.weight[0].numel()))
    with torch.no_grad():
        model.train()(torch.empty(shape, device="meta"))
    assert share == pytest.approx(sum(saved) / total, rel=1e-9)
    assert (share > 0) == (rate > 0)
