"""rs3d.models.layers.channel_mean: the mean over (T, H, W) whose gradient is a broadcast view. Its values and
gradient must be bitwise those of ``x.mean(dim=(2, 3, 4))`` (the reference); only the gradient's layout differs."""
import pytest
import torch
from torch import nn

from rs3d.models.layers import channel_mean
from rs3d.studies.traffic import distinct_bytes, layout_breaks

CL = torch.channels_last_3d


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
@pytest.mark.parametrize("memory_format", [CL, torch.contiguous_format])
def test_values_and_gradient_are_bitwise_those_of_mean(dtype, memory_format):
    torch.manual_seed(0)
    x = torch.randn(3, 5, 4, 6, 7, dtype=dtype).contiguous(memory_format=memory_format).requires_grad_()
    upstream = torch.randn(3, 5, dtype=dtype)
    ours = channel_mean(x)
    reference = x.mean(dim=(2, 3, 4))
    assert torch.equal(ours, reference)
    (g_ours,) = torch.autograd.grad(ours, x, upstream)
    (g_ref,) = torch.autograd.grad(reference, x, upstream)
    assert torch.equal(g_ours, g_ref)
    # the reference writes a full NCDHW tensor whatever x's layout; ours is (N, C) values broadcast
    assert g_ref.is_contiguous() and distinct_bytes(g_ref) == x.numel() * x.element_size()
    assert g_ours.stride()[2:] == (0, 0, 0) and distinct_bytes(g_ours) == 3 * 5 * x.element_size()


class Tail(nn.Module):
    """conv -> the fused tail's pattern (the output scaled by a function of its channel means) -> conv."""

    def __init__(self, mean) -> None:
        super().__init__()
        self.mean = mean
        self.a, self.b = nn.Conv3d(4, 8, 1), nn.Conv3d(8, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.a(x)
        return self.b(y * torch.sigmoid(self.mean(y))[:, :, None, None, None])


def test_backward_writes_no_ncdhw_tensor_and_keeps_the_gradient_channels_last():
    """With x.mean, backward writes one full NCDHW tensor (the divided, expanded gradient) that the add of x's two
    gradients then reads with strides; with channel_mean it writes none. Same gradients."""
    assert dict(layout_breaks(Tail(lambda t: t.mean(dim=(2, 3, 4))), (2, 4, 3, 5, 5))) == {("backward", "div"): 1}
    assert dict(layout_breaks(Tail(channel_mean), (2, 4, 3, 5, 5))) == {}
    torch.manual_seed(0)
    ours, reference = Tail(channel_mean), Tail(lambda t: t.mean(dim=(2, 3, 4)))
    reference.load_state_dict(ours.state_dict())
    x = torch.randn(2, 4, 3, 5, 5).contiguous(memory_format=CL)
    ours(x).square().sum().backward()
    reference(x).square().sum().backward()
    for p, q in zip(ours.parameters(), reference.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-6, atol=1e-7)


def test_no_grad_and_inference_use_the_plain_mean():
    """Export and inference see no custom autograd function (ONNX, torch.export)."""
    x = torch.randn(2, 3, 2, 2, 2)
    with torch.no_grad():
        assert channel_mean(x.requires_grad_()).grad_fn is None
    assert channel_mean(torch.randn(2, 3, 2, 2, 2)).grad_fn is None
