"""Evaluation holds at most max_clips clips as float at once, and gives the same results as normalising first."""
import torch

from rs3d.data import ClipNormalizer
from rs3d.evaluation import evaluate, forward_views


class Recorder(ClipNormalizer):
    """The real normaliser, recording how many clips each call converts."""

    calls: list[int]

    def __call__(self, video):
        self.calls.append(video.shape[0] if video.dim() == 5 else video.shape[0] * video.shape[1])
        return super().__call__(video)


def normalizer():
    n = Recorder([0.45, 0.45, 0.45], [0.225, 0.225, 0.225])
    n.calls = []
    return n


def test_chunked_normalisation_equals_normalising_first():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(4))
    videos = torch.randint(0, 256, (3, 5, 3, 2, 4, 4), dtype=torch.uint8)
    norm = normalizer()
    whole = forward_views(model, norm(videos), max_batch=100)
    norm.calls.clear()
    chunked = forward_views(model, videos, max_batch=4, transform=norm)
    torch.testing.assert_close(chunked, whole)
    assert norm.calls == [4, 4, 4, 3]  # 15 clips, never more than 4 as float


def test_evaluate_normalises_in_chunks_and_drops_invalid_videos():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 2 * 4 * 4, 3))
    videos = torch.randint(0, 256, (4, 6, 3, 2, 4, 4), dtype=torch.uint8)
    batch = {"video": videos, "label": torch.tensor([0, 1, 2, 0]), "index": torch.arange(4),
             "valid": torch.tensor([True, False, True, True]), "failures": []}
    norm = normalizer()
    meter = evaluate(model, [batch], norm, None, max_clips=5)
    assert max(norm.calls) <= 5 and sum(norm.calls) == 18  # 3 valid videos x 6 views
    expected = forward_views(model, ClipNormalizer([0.45] * 3, [0.225] * 3)(videos[[0, 2, 3]]), 100)
    probs = expected.softmax(-1).mean(1)
    torch.testing.assert_close(meter.scores, probs)
    assert meter.video_ids.tolist() == [0, 2, 3]


def test_evaluation_reports_progress_with_an_eta():
    from rs3d.evaluation.progress import EvalProgress

    lines = []
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 2 * 4 * 4, 3))
    batch = {"video": torch.zeros(2, 1, 3, 2, 4, 4, dtype=torch.uint8), "label": torch.tensor([0, 1]),
             "index": torch.arange(2), "valid": torch.tensor([True, True]), "failures": []}
    evaluate(model, [batch] * 3, normalizer(), None, progress=EvalProgress("test on val", 0.0, lines.append))
    assert len(lines) == 3 and lines[-1].startswith("test on val: batch 3/3 (100%)") and "ETA 0:00:00" in lines[-1]
    quiet = []
    evaluate(model, [batch] * 3, normalizer(), None, progress=EvalProgress("validation", 3600.0, quiet.append))
    assert len(quiet) == 1 and "batch 3/3" in quiet[0]  # only the last batch within the period
