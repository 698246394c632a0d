"""Every config key rs3d knows, with its default and a one-line meaning.

YAML files under ``configs/`` only override these; a key that is not here is an error.
The defaults describe the TF Model Garden R3D-RS-50 recipe (32x2 frames, 224 crop).
"""

from fvcore.common.config import CfgNode as CN

_C = CN()

# ---------------------------------------------------------------------------- model
_C.MODEL = CN()
# Architecture: "resnet3d" (rs3d's own 3D ResNet / ResNet-RS) or a pytorchvideo baseline
# ("slow_r50", "i3d_r50", "c2d_r50", "r2plus1d_r50", "x3d_xs", "x3d_s", "x3d_m", "x3d_l").
_C.MODEL.ARCH = "resnet3d"
# Number of output classes (logits per clip).
_C.MODEL.NUM_CLASSES = 400
# Dropout probability before the final linear classifier.
_C.MODEL.DROPOUT_RATE = 0.5

# Knobs of rs3d's 3D ResNet (ignored by pytorchvideo baselines).
_C.MODEL.RESNET3D = CN()
# Depth: 50, 101, 152, 200, 270, 350 or 420 (block counts of the ResNet-RS paper).
_C.MODEL.RESNET3D.DEPTH = 50
# Explicit blocks per stage; overrides DEPTH when non-empty (e.g. [1, 1, 1, 1] for a tiny model).
_C.MODEL.RESNET3D.BLOCKS = []
# Multiplier on the bottleneck widths 64/128/256/512 of the four stages.
_C.MODEL.RESNET3D.WIDTH_MULTIPLIER = 1.0
# Stem: "v1" = ResNet-D deep stem (3 convs 32/32/64), "v0" = single [kt,7,7] conv.
_C.MODEL.RESNET3D.STEM_TYPE = "v1"
# Output channels of the stem (v1 uses STEM_WIDTH/2 for its first two convs).
_C.MODEL.RESNET3D.STEM_WIDTH = 64
# Temporal kernel size of the first stem conv.
_C.MODEL.RESNET3D.STEM_TEMPORAL_KERNEL = 5
# Temporal stride of the first stem conv.
_C.MODEL.RESNET3D.STEM_TEMPORAL_STRIDE = 2
# Stem downsampling: "max" (3x3 max-pool, TF 3D models) or "conv" (strided 3x3 conv+BN+ReLU, 2D ResNet-RS).
_C.MODEL.RESNET3D.STEM_POOL = "max"
# Temporal stride of the stem pool (its temporal kernel is 1 when the stride is 1, else 3).
_C.MODEL.RESNET3D.POOL_TEMPORAL_STRIDE = 1
# Temporal kernel of the first bottleneck conv, one value per stage.
_C.MODEL.RESNET3D.TEMPORAL_KERNELS = [1, 1, 3, 3]
# Per-block temporal kernels (list of lists, one per stage); overrides TEMPORAL_KERNELS when non-empty.
_C.MODEL.RESNET3D.TEMPORAL_KERNELS_PER_BLOCK = []
# Temporal stride of the first block of each stage.
_C.MODEL.RESNET3D.TEMPORAL_STRIDES = [1, 1, 1, 1]
# Spatial stride of the first block of each stage.
_C.MODEL.RESNET3D.SPATIAL_STRIDES = [1, 2, 2, 2]
# Squeeze-excitation ratio on the 4f block output channels; 0 disables SE.
_C.MODEL.RESNET3D.SE_RATIO = 0.25
# Self-gating (S3D-G) in the last block of every stage.
_C.MODEL.RESNET3D.SELF_GATING = True
# Shortcut on downsampling blocks: "tf" (strided 1x1x1 conv+BN / max-pool) or "avg_down" (avg-pool, then 1x1x1 conv+BN).
_C.MODEL.RESNET3D.SHORTCUT = "tf"
# Stochastic depth rate; stage i (0-based) drops with RATE * (i + 2) / 5 (TF schedule).
_C.MODEL.RESNET3D.DROP_PATH_RATE = 0.1
# Padding: "torch" (symmetric k//2) or "tf_same" (TensorFlow SAME, for numerical parity with TF weights).
_C.MODEL.RESNET3D.PADDING = "torch"
# BatchNorm epsilon (TF Model Garden uses 1e-5).
_C.MODEL.RESNET3D.BN_EPS = 1e-5
# BatchNorm momentum in PyTorch convention (new = (1 - m) * old + m * batch).
_C.MODEL.RESNET3D.BN_MOMENTUM = 0.1

# ---------------------------------------------------------------------------- data
_C.DATA = CN()
# Frames per clip.
_C.DATA.NUM_FRAMES = 32
# Stride between sampled frames, in source frames.
_C.DATA.SAMPLING_RATE = 2
# Spatial size of training crops.
_C.DATA.TRAIN_CROP_SIZE = 224
# Short side and crop size at test time.
_C.DATA.TEST_CROP_SIZE = 256
# Input channels (RGB).
_C.DATA.INPUT_CHANNEL_NUM = 3

# ---------------------------------------------------------------------------- solver (RS recipe)
_C.SOLVER = CN()
# Learning rate at a global batch of SOLVER.REFERENCE_BATCH_SIZE, scaled linearly to the real batch.
_C.SOLVER.BASE_LR = 0.8
# Global batch size at which BASE_LR is defined.
_C.SOLVER.REFERENCE_BATCH_SIZE = 1024
# SGD momentum (Nesterov).
_C.SOLVER.MOMENTUM = 0.9
# Weight decay on conv and linear weights only; low because dropout, stochastic depth and RandAugment also regularise.
_C.SOLVER.WEIGHT_DECAY = 4e-5
# Total training epochs (350 for RS models, 200 for plain baselines).
_C.SOLVER.MAX_EPOCH = 350
# Linear warm-up epochs from LR 0.
_C.SOLVER.WARMUP_EPOCHS = 5.0
# Label smoothing of the cross-entropy loss.
_C.SOLVER.LABEL_SMOOTHING = 0.1

# ---------------------------------------------------------------------------- train / test
_C.TRAIN = CN()
# Run training.
_C.TRAIN.ENABLE = True
# Clips per process per step.
_C.TRAIN.BATCH_SIZE = 8

_C.TEST = CN()
# Run the final multi-view test.
_C.TEST.ENABLE = True
# Clips per process per test step.
_C.TEST.BATCH_SIZE = 8

# ---------------------------------------------------------------------------- misc
# Where logs, checkpoints and the merged config go.
_C.OUTPUT_DIR = "./output"
# Random seed for python, numpy and torch.
_C.SEED = 0


def get_cfg() -> CN:
    """Return a fresh copy of the defaults, safe to modify."""
    return _C.clone()
