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
# Number of output classes (logits per clip); 0 = as many as the data has (DATA.PATH_TO_DATA_DIR's class names file
# or class folders), resolved when the config is loaded.
_C.MODEL.NUM_CLASSES = 400
# Dropout probability before the final linear classifier.
_C.MODEL.DROPOUT_RATE = 0.5

# Initial weights, applied when the model is built (TRAIN.CHECKPOINT_FILE, if set, is loaded after them).
_C.MODEL.INIT = CN()
# "" (random), "timm:<name>" (a timm 2D ResNet-RS, e.g. timm:resnetrs50, inflated to 3D), "pytorchvideo" (the
# published Kinetics weights of a pytorchvideo baseline MODEL.ARCH), or a checkpoint path (rs3d, PySlowFast .pyth /
# Caffe2 .pkl, pytorchvideo .pyth, bare state dict). Layers whose shape differs (the head) stay freshly initialised.
_C.MODEL.INIT.FROM = ""
# Local weights file for "timm:<name>" (timm's pretrained_cfg_overlay file=...; no download).
_C.MODEL.INIT.FILE = ""
# 2D -> 3D kernel inflation: "mean" (I3D: repeat over the kt taps, divide by kt) or "center" (all on the middle tap).
_C.MODEL.INIT.INFLATE = "mean"
# Re-initialise the classifier even when its shape fits (fine-tuning on other classes with the same count).
_C.MODEL.INIT.RESET_HEAD = False
# Fine-tuning: BatchNorm statistics and affine parameters kept as initialised (frozen BN, for small batches).
_C.MODEL.INIT.FREEZE_BN = False
# Fine-tuning: no gradients in the stem and the first N stages (-1: train everything; 0: freeze the stem only).
_C.MODEL.INIT.FREEZE_STAGES = -1

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
# How convolutions run (rs3d/models/conv.py): "conv3d" (nn.Conv3d), "lowered" (the factorised (1,k,k), (k,1,1) and
# (1,1,1) convs as 2D convs / GEMMs on copy-free views of channels_last_3d inputs, Conv3d where no view applies) or
# "auto" (lowered on CUDA, Conv3d elsewhere). Same weights and results; only speed differs.
_C.MODEL.RESNET3D.CONV_IMPL = "auto"
# Apply self-gating, SE and stochastic depth as one per-(sample, channel) scale fused with the residual add (the
# same function with less memory traffic); False runs them one after another.
_C.MODEL.RESNET3D.FUSED_TAIL = True

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
# Folder holding train.csv / val.csv / test.csv (PySlowFast "path label" lines or official Kinetics CSVs), or a
# folder of class folders: DIR/<class>/<video>, or DIR/train/<class>/<video> with DIR/val/... (and DIR/test/...).
_C.DATA.PATH_TO_DATA_DIR = ""
# Class folders without val/ (test/) folders: this fraction of each class's videos (at least one, chosen by a hash
# of the file name) is held out as the val (and test) split.
_C.DATA.FOLDER_VAL_FRACTION = 0.1
# Prefix joined in front of every video path of a PySlowFast CSV (default: PATH_TO_DATA_DIR).
_C.DATA.PATH_PREFIX = ""
# Separator between path and label in PySlowFast CSVs (" " means any whitespace).
_C.DATA.PATH_LABEL_SEPARATOR = " "
# Official Kinetics CSV row -> file under PATH_PREFIX; fields: split, label, label_, youtube_id, time_start, time_end.
_C.DATA.KINETICS_PATH_FORMAT = "{split}/{label}/{youtube_id}_{time_start:06d}_{time_end:06d}.mp4"
# Class names (JSON list or {"name": index}); default DATA_DIR/classnames.json, else the official train CSV.
_C.DATA.CLASS_NAMES_FILE = ""
# Listed videos that do not exist: "error" stops before training, "drop" trains without them (both report them).
_C.DATA.MISSING_FILES = "error"
# Generate the embedded toy motion dataset into PATH_TO_DATA_DIR if it is not there yet.
_C.DATA.TOY_DATASET = False
# Decoder: "decord" (default) or "pyav", which leaves unwanted non-reference frames undecoded (1.3x faster random
# 32x2 clips than decord on x264's default layout, tools/benchmark_data.py). Prepared videos always go to PyAV.
_C.DATA.DECODING_BACKEND = "decord"
# Second decoder tried when the first fails on a video ("" = none); PyAV reads some files decord refuses.
_C.DATA.FALLBACK_BACKEND = "pyav"
# Undecodable videos replaced by others, in a row, before training stops with an error.
_C.DATA.MAX_DECODE_RETRIES = 10
# Resample to this frame rate before striding (0 = keep the source rate); SAMPLING_RATE is then in target frames.
_C.DATA.TARGET_FPS = 0.0
# Clips longer than the video: "loop" from the start (TF behaviour) or "pad" with the last frame.
_C.DATA.SHORT_VIDEO = "loop"
# Train spatial crop: "rrc" (random-resized crop, RS recipe) or "jitter" (short side jitter + random crop).
_C.DATA.TRAIN_CROP_MODE = "rrc"
# Random-resized crop area range, as fractions of the frame.
_C.DATA.TRAIN_CROP_AREA = [0.08, 1.0]
# Random-resized crop aspect-ratio range (width / height).
_C.DATA.TRAIN_CROP_ASPECT = [0.5, 2.0]
# Short-side range of the "jitter" crop mode, in pixels.
_C.DATA.TRAIN_JITTER_SCALES = [256, 320]
# Probability of a horizontal flip of the whole clip.
_C.DATA.FLIP_PROB = 0.5
# RandAugment layers per clip (0 = off, as in the reference K400 recipe); one draw per clip, for every frame.
_C.DATA.RANDAUGMENT_LAYERS = 0
# RandAugment strength. Policy "tf"/"tf_reflect": TF's 0-10 scale (10 = its top, above 10 extrapolates; the
# ResNet-RS papers use 10 and 15). Policy "torchvision": a bin 0-30 of v2.RandAugment (10 = a third of its range).
_C.DATA.RANDAUGMENT_MAGNITUDE = 10
# RandAugment definition: "tf" (TF Model Garden's ops, gray 128 outside rotated/sheared/translated frames),
# "tf_reflect" (the same, mirrored frame outside, as tf-models-official runs it) or "torchvision" (v2.RandAugment).
_C.DATA.RANDAUGMENT_POLICY = "tf"
# Where flip and RandAugment run: False = in the loader workers; True = the workers only decode and crop/resize
# (uint8) and the trainer applies the same random draws to the whole batch on the training device, batched
# (rs3d.data.device_inputs), which frees worker CPU time when the loader cannot keep the GPU fed.
_C.DATA.AUGMENT_ON_DEVICE = False
# Clips cut from each decoded training video (repeated augmentation; > 1 cuts decode cost per sample).
_C.DATA.CLIPS_PER_VIDEO = 1
# Normalisation on the device: "mean_std" ((x/255 - MEAN) / STD) or "unit" (x/255).
_C.DATA.NORMALIZATION = "mean_std"
# Per-channel mean (RGB, 0-1 scale).
_C.DATA.MEAN = [0.45, 0.45, 0.45]
# Per-channel standard deviation (RGB, 0-1 scale).
_C.DATA.STD = [0.225, 0.225, 0.225]

# ---------------------------------------------------------------------------- data loader
_C.DATA_LOADER = CN()
# Worker processes per training process: "auto" (the CPUs this process may use, from its affinity mask and cgroup
# quota, shared among the processes on the machine, minus one, between 1 and 16; logged at start), or a number
# (0 = load in the main process).
_C.DATA_LOADER.NUM_WORKERS = "auto"
# Page-locked host memory for faster copies to the GPU.
_C.DATA_LOADER.PIN_MEMORY = True
# Keep workers (and their per-video probe cache) alive across epochs.
_C.DATA_LOADER.PERSISTENT_WORKERS = True
# Batches prepared ahead by each worker.
_C.DATA_LOADER.PREFETCH_FACTOR = 2

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
# Nesterov momentum.
_C.SOLVER.NESTEROV = True
# EMA decay of weights and BN statistics, warmed up as min(decay, (1+t)/(10+t)); 0 turns EMA off.
_C.SOLVER.EMA_DECAY = 0.9999
# Clip the global gradient norm to this value (0 = no clipping).
_C.SOLVER.GRAD_CLIP_NORM = 0.0
# Micro-batches accumulated per optimiser step; the global batch is BATCH_SIZE x processes x this.
_C.SOLVER.ACCUMULATION_STEPS = 1

# ---------------------------------------------------------------------------- train / test
_C.TRAIN = CN()
# Run training.
_C.TRAIN.ENABLE = True
# Clips per process per step.
_C.TRAIN.BATCH_SIZE = 8
# Validate (single view, raw and EMA model) every this many epochs.
_C.TRAIN.EVAL_PERIOD = 5
# Write a checkpoint every this many epochs (and always after the last one).
_C.TRAIN.CHECKPOINT_PERIOD = 1
# Also write a checkpoint every this many iterations inside an epoch (0: epoch ends only); a run resumed from it
# continues with the same remaining samples in the same order. Preemption (SIGTERM/SIGUSR1) always writes one.
_C.TRAIN.CHECKPOINT_PERIOD_ITERS = 0
# Checkpoints kept, epoch and mid-epoch together (the best one is kept separately).
_C.TRAIN.KEEP_CHECKPOINTS = 3
# Continue from the newest checkpoint in OUTPUT_DIR/checkpoints if there is one.
_C.TRAIN.AUTO_RESUME = True
# Initial weights (fine-tuning); a head of another shape is re-initialised.
_C.TRAIN.CHECKPOINT_FILE = ""
# "auto" (bf16 autocast on GPU, fp32 on CPU), "bf16", "fp16" (with a GradScaler) or "off".
_C.TRAIN.MIXED_PRECISION = "auto"
# channels_last_3d memory format for activations and weights.
_C.TRAIN.CHANNELS_LAST = True
# torch.compile the model.
_C.TRAIN.COMPILE = False
# What TRAIN.COMPILE compiles: "regional" (each residual block and the stem on its own; the repeated blocks share
# compiled code, so RS3D-50 compiles ~13 small graphs) or "whole" (the model as one graph).
_C.TRAIN.COMPILE_SCOPE = "regional"
# SyncBatchNorm across processes (DDP on GPUs).
_C.TRAIN.SYNC_BN = False
# Recompute BN statistics on training batches before each validation (fvcore precise BN).
_C.TRAIN.PRECISE_BN = False
# Batches used by precise BN.
_C.TRAIN.PRECISE_BN_BATCHES = 200
# Log one line every this many iterations.
_C.TRAIN.LOG_PERIOD = 20
# Where scalars go besides log.txt and metrics.jsonl: any of tensorboard, wandb (Weights & Biases; needs
# pip install rs3d[trackers]; $WANDB_PROJECT, WANDB_MODE=offline). Each receives the same scalars.
_C.TRAIN.LOGGERS = ["tensorboard"]
# Device: "auto" (CUDA when available), "cuda" or "cpu".
_C.TRAIN.DEVICE = "auto"
# How long a collective may wait for the slowest rank before the job fails (minutes). NCCL's default is 10,
# shorter than a Kinetics 30-view test shard can take to finish on one rank while the others wait to gather.
_C.TRAIN.DIST_TIMEOUT_MINUTES = 180
# Deterministic algorithms (bit-exact resume and reruns on CPU; slower on GPU).
_C.TRAIN.DETERMINISTIC = False

_C.TEST = CN()
# Run the final multi-view test.
_C.TEST.ENABLE = True
# Videos per process per test step (each brings all its views). One Kinetics test video is 30 views x 3 x 32 x
# 256 x 256 uint8 = 189 MB, and every loader worker holds PREFETCH_FACTOR batches in shared memory, so 2 videos
# (60 clips, 0.38 GB a batch, ~6 GB of shared memory with 8 workers x prefetch 2) keep a GPU busy without
# exhausting /dev/shm; the model sees at most 32 clips per forward either way.
_C.TEST.BATCH_SIZE = 2
# Temporal clips per video, spread uniformly, in the final test.
_C.TEST.NUM_ENSEMBLE_VIEWS = 10
# Spatial crops per clip in the final test: 3 (left/centre/right, or top/centre/bottom) or 1 (centre).
_C.TEST.NUM_SPATIAL_CROPS = 3
# How views of a video combine: "softmax_mean", "logit_mean" or "max".
_C.TEST.VIEW_AGGREGATION = "softmax_mean"
# Weights to test (tools/test_net.py); default: OUTPUT_DIR's final or newest checkpoint.
_C.TEST.CHECKPOINT_FILE = ""
# Split used by the final test ("test" or "val").
_C.TEST.SPLIT = "test"

# ---------------------------------------------------------------------------- misc
# Where logs, checkpoints and the merged config go.
_C.OUTPUT_DIR = "./output"
# Random seed for python, numpy and torch.
_C.SEED = 0
# Your own modules, imported before the config is checked (module names, found from the current folder too, or
# .py files): the models and decoding backends they register (rs3d.models.register_model,
# rs3d.data.decoders.register_backend) become values of MODEL.ARCH and DATA.DECODING_BACKEND, for every command.
_C.CUSTOM_IMPORTS = []


def get_cfg() -> CN:
    """Return a fresh copy of the defaults, safe to modify."""
    return _C.clone()
