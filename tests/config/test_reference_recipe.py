"""rs3d_50.yaml (and every RS3D depth) equals TF Model Garden's reference Kinetics-400 recipe, value by value.

The reference is tensorflow/models
official/vision/configs/experiments/video_classification/k400_resnet3drs_50_tpu.yaml ("Expected accuracy: 78.2%
top-1"), run as --experiment_type=video_classification_kinetics400: on top of video_classification_kinetics400() and
the dataclass defaults of official/vision/configs/video_classification.py (DataConfig, add_trainer) and
official/vision/configs/backbones_3d.py (ResNet3DRS), tf-models-official 2.20.0. ``TF`` below holds the resolved
values of that experiment; ``EXPECTED`` derives every rs3d key from them. docs/reference_recipe.md explains each line.

Every key of the merged config must be classified here: a reference value (``EXPECTED``), a known difference with
its reason (``DIFFERENT``), or a setting that does not change what is trained (``NOT_RECIPE``).
"""
import os

import pytest
import yaml
from conftest import REPO_ROOT

from rs3d.config import load_config

ROOT = REPO_ROOT
DEPTHS = (50, 101, 152, 200, 270, 350, 420)

TF = {  # field of the resolved experiment config -> value ("" = inherited default, with its source)
    "runtime.mixed_precision_dtype": "bfloat16",
    "task.init_checkpoint": None,  # VideoClassificationTask default: trained from scratch
    "task.losses.l2_weight_decay": 4e-5,  # Keras l2(4e-5 / 2) on kernels: gradient 4e-5 * w
    "task.losses.label_smoothing": 0.1,
    "task.model.dropout_rate": 0.5,
    "task.model.backbone.resnet_3d_rs.model_id": 50,
    "task.model.backbone.resnet_3d_rs.stem_type": "v1",
    "task.model.backbone.resnet_3d_rs.stem_conv_temporal_kernel_size": 5,
    "task.model.backbone.resnet_3d_rs.stem_conv_temporal_stride": 2,
    "task.model.backbone.resnet_3d_rs.stem_pool_temporal_stride": 1,
    "task.model.backbone.resnet_3d_rs.stochastic_depth_drop_rate": 0.1,
    "task.model.backbone.resnet_3d_rs.se_ratio": 0.25,
    "task.model.backbone.resnet_3d_rs.block_specs.temporal_kernel_sizes": [(1,), (1,), (3,), (3,)],  # ResNet3DRS
    "task.model.backbone.resnet_3d_rs.block_specs.temporal_strides": [1, 1, 1, 1],  # ResNet3DRS
    "task.model.backbone.resnet_3d_rs.block_specs.use_self_gating": [True] * 4,  # ResNet3DRS
    "task.model.norm_activation.norm_epsilon": 1e-5,
    "task.model.norm_activation.norm_momentum": 0.0,
    "task.model.norm_activation.use_sync_bn": False,
    "task.train_data.feature_shape": (32, 224, 224, 3),
    "task.train_data.temporal_stride": 2,
    "task.train_data.random_stride_range": 0,  # DataConfig default
    "task.train_data.global_batch_size": 1024,
    "task.train_data.num_examples": 215570,
    "task.train_data.num_classes": 400,
    "task.train_data.drop_remainder": True,
    "task.train_data.aug_min_area_ratio": 0.08,
    "task.train_data.aug_max_area_ratio": 1.0,
    "task.train_data.aug_min_aspect_ratio": 0.5,
    "task.train_data.aug_max_aspect_ratio": 2.0,
    "task.train_data.aug_type": None,  # not set: no RandAugment / AutoAugment
    "task.train_data.mixup_and_cutmix": None,  # DataConfig default
    "task.train_data.zero_centering_image": False,  # DataConfig default: frames / 255
    "task.validation_data.feature_shape": (32, 256, 256, 3),
    "task.validation_data.min_image_size": 256,
    "task.validation_data.temporal_stride": 2,
    "task.validation_data.num_test_clips": 10,
    "task.validation_data.num_test_crops": 3,
    "trainer.optimizer_config.optimizer.sgd.momentum": 0.9,  # add_trainer
    "trainer.optimizer_config.optimizer.sgd.nesterov": True,  # add_trainer
    "trainer.optimizer_config.learning_rate.cosine.initial_learning_rate": 0.8,
    "trainer.optimizer_config.learning_rate.cosine.decay_steps": 73682,
    "trainer.train_steps": 73682,
    "trainer.optimizer_config.warmup.linear.warmup_steps": 1050,
    "trainer.optimizer_config.warmup.linear.warmup_learning_rate": 0,
    "trainer.optimizer_config.ema.average_decay": 0.9999,
    "trainer.optimizer_config.ema.trainable_weights_only": False,
    "trainer.checkpoint_interval": 210,
    "trainer.max_to_keep": 3,
}
_RS = "task.model.backbone.resnet_3d_rs."
_BATCH, _EXAMPLES = TF["task.train_data.global_batch_size"], TF["task.train_data.num_examples"]
_STEPS_PER_EPOCH = _EXAMPLES // _BATCH  # 210: TF drops the last partial batch, as rs3d does
_TRAIN_SHAPE, _TEST_SHAPE = TF["task.train_data.feature_shape"], TF["task.validation_data.feature_shape"]

EXPECTED = {  # rs3d key -> the value the reference implies
    "MODEL.ARCH": "resnet3d",
    "MODEL.NUM_CLASSES": TF["task.train_data.num_classes"],
    "MODEL.DROPOUT_RATE": TF["task.model.dropout_rate"],
    "MODEL.RESNET3D.DEPTH": TF[_RS + "model_id"],
    "MODEL.RESNET3D.BLOCKS": [],
    "MODEL.RESNET3D.WIDTH_MULTIPLIER": 1.0,
    "MODEL.RESNET3D.STEM_TYPE": TF[_RS + "stem_type"],
    "MODEL.RESNET3D.STEM_WIDTH": 64,  # v1 stem: 32, 32, 64 filters
    "MODEL.RESNET3D.STEM_TEMPORAL_KERNEL": TF[_RS + "stem_conv_temporal_kernel_size"],
    "MODEL.RESNET3D.STEM_TEMPORAL_STRIDE": TF[_RS + "stem_conv_temporal_stride"],
    "MODEL.RESNET3D.STEM_POOL": "max",  # resnet_3d.py: max-pool after the stem (replace_stem_max_pool off)
    "MODEL.RESNET3D.POOL_TEMPORAL_STRIDE": TF[_RS + "stem_pool_temporal_stride"],
    "MODEL.RESNET3D.TEMPORAL_KERNELS": [k[0] for k in TF[_RS + "block_specs.temporal_kernel_sizes"]],
    "MODEL.RESNET3D.TEMPORAL_KERNELS_PER_BLOCK": [],
    "MODEL.RESNET3D.TEMPORAL_STRIDES": TF[_RS + "block_specs.temporal_strides"],
    "MODEL.RESNET3D.SPATIAL_STRIDES": [1, 2, 2, 2],  # resnet_3d.py
    "MODEL.RESNET3D.SE_RATIO": TF[_RS + "se_ratio"],
    "MODEL.RESNET3D.SELF_GATING": all(TF[_RS + "block_specs.use_self_gating"]),
    "MODEL.RESNET3D.SHORTCUT": "tf",  # strided 1x1x1 conv + BN / max-pool, no ResNet-D average pool
    "MODEL.RESNET3D.DROP_PATH_RATE": TF[_RS + "stochastic_depth_drop_rate"],
    "MODEL.RESNET3D.BN_EPS": TF["task.model.norm_activation.norm_epsilon"],
    "MODEL.RESNET3D.BN_MOMENTUM": 1.0 - TF["task.model.norm_activation.norm_momentum"],  # Keras m = PyTorch 1 - m
    "TRAIN.SYNC_BN": TF["task.model.norm_activation.use_sync_bn"],
    "TRAIN.CHECKPOINT_FILE": "" if TF["task.init_checkpoint"] is None else TF["task.init_checkpoint"],
    "MODEL.INIT.FROM": "" if TF["task.init_checkpoint"] is None else TF["task.init_checkpoint"],
    "DATA.NUM_FRAMES": _TRAIN_SHAPE[0],
    "DATA.TRAIN_CROP_SIZE": _TRAIN_SHAPE[1],
    "DATA.INPUT_CHANNEL_NUM": _TRAIN_SHAPE[3],
    "DATA.SAMPLING_RATE": TF["task.train_data.temporal_stride"],
    "DATA.TARGET_FPS": 0.0 if TF["task.train_data.random_stride_range"] == 0 else None,  # stored frames, fixed stride
    "DATA.SHORT_VIDEO": "loop",  # preprocess_ops_3d tiles short sequences
    "DATA.CLIPS_PER_VIDEO": 1,
    "DATA.TRAIN_CROP_MODE": "rrc",  # preprocess_ops_3d.random_crop_resize
    "DATA.TRAIN_CROP_AREA": [TF["task.train_data.aug_min_area_ratio"], TF["task.train_data.aug_max_area_ratio"]],
    "DATA.TRAIN_CROP_ASPECT": [TF["task.train_data.aug_min_aspect_ratio"],
                               TF["task.train_data.aug_max_aspect_ratio"]],
    "DATA.FLIP_PROB": 0.5,  # preprocess_ops_3d.random_flip_left_right
    "DATA.RANDAUGMENT_LAYERS": 0 if TF["task.train_data.aug_type"] is None else None,
    "DATA.NORMALIZATION": "unit" if not TF["task.train_data.zero_centering_image"] else None,
    "DATA.TEST_CROP_SIZE": _TEST_SHAPE[1],
    "TEST.NUM_ENSEMBLE_VIEWS": TF["task.validation_data.num_test_clips"],
    "TEST.NUM_SPATIAL_CROPS": TF["task.validation_data.num_test_crops"],
    "TEST.VIEW_AGGREGATION": "softmax_mean",  # video_classification task: mean of the views' softmax
    "SOLVER.BASE_LR": TF["trainer.optimizer_config.learning_rate.cosine.initial_learning_rate"],
    "SOLVER.REFERENCE_BATCH_SIZE": _BATCH,
    "SOLVER.MOMENTUM": TF["trainer.optimizer_config.optimizer.sgd.momentum"],
    "SOLVER.NESTEROV": TF["trainer.optimizer_config.optimizer.sgd.nesterov"],
    "SOLVER.WEIGHT_DECAY": TF["task.losses.l2_weight_decay"],
    "SOLVER.LABEL_SMOOTHING": TF["task.losses.label_smoothing"],
    "SOLVER.MAX_EPOCH": round(TF["trainer.train_steps"] * _BATCH / _EXAMPLES),
    "SOLVER.WARMUP_EPOCHS": TF["trainer.optimizer_config.warmup.linear.warmup_steps"] / _STEPS_PER_EPOCH,
    "SOLVER.EMA_DECAY": TF["trainer.optimizer_config.ema.average_decay"],
    "SOLVER.GRAD_CLIP_NORM": 0.0,  # no clipnorm in the optimizer config
    "TRAIN.MIXED_PRECISION": "auto",  # bf16 autocast on an accelerator, as runtime.mixed_precision_dtype
    "TRAIN.PRECISE_BN": False,  # no BN recalibration in Model Garden
    "TRAIN.CHECKPOINT_PERIOD": TF["trainer.checkpoint_interval"] // _STEPS_PER_EPOCH,
    "TRAIN.KEEP_CHECKPOINTS": TF["trainer.max_to_keep"],
}

ABSENT_MEANS = {"MODEL.INIT.FROM": ""}  # recipe keys newer than some checkouts: what a config without them does

DIFFERENT = {  # rs3d key -> (rs3d value, why it differs from the reference)
    "MODEL.RESNET3D.PADDING": ("torch", "symmetric k//2 padding instead of TF SAME (asymmetric where strided): the "
                               "same shapes and parameters, a faster pad-free conv; tf_same gives TF's numbers"),
}

NOT_RECIPE = {  # keys that do not change what is trained: data location and format, speed, logging, bookkeeping
    "OUTPUT_DIR", "SEED", "CUSTOM_IMPORTS", "DATA.PATH_TO_DATA_DIR", "DATA.PATH_PREFIX", "DATA.PATH_LABEL_SEPARATOR",
    "DATA.KINETICS_PATH_FORMAT", "DATA.CLASS_NAMES_FILE", "DATA.MISSING_FILES", "DATA.TOY_DATASET",
    "DATA.DECODING_BACKEND", "DATA.FALLBACK_BACKEND", "DATA.MAX_DECODE_RETRIES",
    "DATA.TRAIN_JITTER_SCALES",  # only used by TRAIN_CROP_MODE jitter
    "DATA.RANDAUGMENT_MAGNITUDE", "DATA.RANDAUGMENT_POLICY",  # only used when RANDAUGMENT_LAYERS > 0
    "DATA.MEAN", "DATA.STD",  # only used by NORMALIZATION mean_std
    "DATA.AUGMENT_ON_DEVICE",  # where the same augmentation runs (workers or the training device)
    "DATA_LOADER.NUM_WORKERS", "DATA_LOADER.PIN_MEMORY", "DATA_LOADER.PERSISTENT_WORKERS",
    "DATA_LOADER.PREFETCH_FACTOR",
    "TRAIN.BATCH_SIZE", "SOLVER.ACCUMULATION_STEPS",  # per-process batch and accumulation: the global batch sets LR
    "TRAIN.ENABLE", "TRAIN.EVAL_PERIOD", "TRAIN.AUTO_RESUME", "TRAIN.CHANNELS_LAST", "TRAIN.COMPILE",
    "TRAIN.COMPILE_SCOPE", "MODEL.RESNET3D.CONV_IMPL", "MODEL.RESNET3D.FUSED_TAIL",  # speed: the same function
    "TRAIN.PRECISE_BN_BATCHES", "TRAIN.LOG_PERIOD", "TRAIN.LOGGERS", "TRAIN.DEVICE", "TRAIN.DETERMINISTIC",
    "TRAIN.CHECKPOINT_PERIOD_ITERS", "TRAIN.DIST_TIMEOUT_MINUTES", "DATA.FOLDER_VAL_FRACTION",
    "MODEL.INIT.FILE", "MODEL.INIT.INFLATE", "MODEL.INIT.RESET_HEAD",  # only used with MODEL.INIT.FROM set
    "MODEL.INIT.FREEZE_BN", "MODEL.INIT.FREEZE_STAGES",  # fine-tuning switches, off (False, -1) in every recipe
    "TEST.ENABLE", "TEST.BATCH_SIZE", "TEST.CHECKPOINT_FILE", "TEST.SPLIT",
}


def flat_config(path: str) -> dict:
    def flat(node: dict, prefix: str = "") -> dict:
        out = {}
        for key, value in node.items():
            out.update(flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
        return out
    return flat(yaml.safe_load(load_config(os.path.join(ROOT, path)).dump()))


@pytest.mark.parametrize("depth", DEPTHS)
def test_rs3d_configs_equal_the_reference_value_by_value(depth):
    config = flat_config(f"configs/kinetics400/rs3d_{depth}.yaml")
    expected = dict(EXPECTED, **{"MODEL.RESNET3D.DEPTH": depth})  # one TF config; the other depths change model_id
    config = {**ABSENT_MEANS, **config}
    wrong = {key: (config.get(key, "<no such key>"), value) for key, value in expected.items()
             if config.get(key) != value}
    assert not wrong, f"rs3d_{depth}.yaml differs from the reference (rs3d, reference): {wrong}"
    assert {key: config[key] for key in DIFFERENT} == {key: value for key, (value, _) in DIFFERENT.items()}


def test_every_config_key_is_classified():
    keys = set(flat_config("configs/kinetics400/rs3d_50.yaml"))
    classified = set(EXPECTED) | set(DIFFERENT) | NOT_RECIPE
    assert keys - classified == set(), "new config keys: classify them in tests/config/test_reference_recipe.py"
    assert not (set(EXPECTED) & NOT_RECIPE) and not (set(DIFFERENT) & NOT_RECIPE)


def test_derived_reference_numbers():
    assert EXPECTED["SOLVER.MAX_EPOCH"] == 350 and EXPECTED["SOLVER.WARMUP_EPOCHS"] == 5.0
    assert EXPECTED["TRAIN.CHECKPOINT_PERIOD"] == 1 and EXPECTED["MODEL.RESNET3D.BN_MOMENTUM"] == 1.0
    assert TF["trainer.optimizer_config.learning_rate.cosine.decay_steps"] == TF["trainer.train_steps"]
    assert _TEST_SHAPE[1] == TF["task.validation_data.min_image_size"]  # short side resized to the crop size


def test_the_recipe_document_covers_every_value():
    document = open(os.path.join(ROOT, "docs", "reference_recipe.md")).read()
    missing = [key for key in list(EXPECTED) + list(DIFFERENT) if f"`{key}`" not in document]
    assert not missing, f"docs/reference_recipe.md does not mention {missing}"
