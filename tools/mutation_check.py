"""Plant known bugs one at a time and check that the tests meant to guard against each one fail.

    python tools/mutation_check.py             # every mutation (a few minutes on 2 cores)
    python tools/mutation_check.py --list      # the mutations and the tests that must catch them
    python tools/mutation_check.py --only NAME [--only NAME ...]

The repository (tracked files plus untracked, not ignored ones) is copied to a temporary folder; each mutation
replaces one snippet of source there (it must occur exactly once), runs its tests with this Python and
``PYTHONPATH`` set to the copy (so ``rs3d`` is imported from the mutated copy, not from an editable install), and
restores the file (a test run is cut at 120 s). The named tests first run once unmutated (they must pass). Prints a
table (mutation, tests, caught) and exits non-zero if a mutation survives, a snippet is missing, or the baseline
fails.
tests/test_mutation_list.py checks on every test run that each snippet still occurs exactly once.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass(frozen=True)
class Mutation:
    """One planted bug: in ``path``, ``original`` (exactly once) becomes ``mutated``; each of ``tests`` (pytest
    node ids, a test without parameters selects all of them) must then fail."""

    name: str
    path: str
    original: str
    mutated: str
    tests: tuple[str, ...]
    breaks: str  # what it breaks for users


P = "tests/test_promises.py::"
MUTATIONS: tuple[Mutation, ...] = (
    # ------------------------------------------------------------ the audit's uncaught ones (issue 24)
    Mutation("no_per_sample_reseed", "rs3d/data/dataset.py",
             "torch.manual_seed(sample_seed(self.seed, epoch, index))", "sample_seed(self.seed, epoch, index)",
             (P + "test_each_sample_of_an_epoch_draws_its_own_augmentation_whatever_the_worker_count",),
             "every clip of an epoch gets the same augmentation; draws depend on the worker count"),
    Mutation("sgd_not_nesterov", "rs3d/engine/optim.py", "momentum=momentum, nesterov=nesterov,",
             "momentum=momentum, nesterov=False,", (P + "test_rs3d_50_optimizer_is_the_reference_sgd",),
             "the reference recipe's Nesterov momentum is silently plain momentum"),
    Mutation("bn_momentum_ignored", "rs3d/models/resnet3d.py", "norm = dict(bn_eps=bn_eps, bn_momentum=bn_momentum)",
             "norm = dict(bn_eps=bn_eps)",
             (P + "test_rs3d_50_bn_layers_have_the_reference_momentum_and_eps",),
             "MODEL.RESNET3D.BN_MOMENTUM (1.0 in the reference) is not applied"),
    Mutation("bn_eps_hard_coded", "rs3d/models/resnet3d.py", "norm = dict(bn_eps=bn_eps, bn_momentum=bn_momentum)",
             "norm = dict(bn_eps=1e-3, bn_momentum=bn_momentum)",
             (P + "test_rs3d_50_bn_layers_have_the_reference_momentum_and_eps",),
             "MODEL.RESNET3D.BN_EPS (1e-5 in the reference) is not applied"),
    Mutation("weight_decay_on_norm_layers", "rs3d/engine/optim.py", "if exempt or name.endswith(\"bias\") or",
             "if name.endswith(\"bias\") or", (P + "test_rs3d_50_optimizer_is_the_reference_sgd",),
             "BN and self-gating parameters get weight decay"),
    Mutation("resize_crop_unantialiased", "rs3d/data/transforms.py",
             "F.resize(clip, [crop_size, crop_size], antialias=True)",
             "F.resize(clip, [crop_size, crop_size], antialias=False)",
             (P + "test_crop_resize_is_antialiased_like_pil",
              "tests/data/test_clip_sampling.py::test_planned_decode_scale_matches_crop_then_resize"),
             "training crops alias (both augmentation paths share the helper)"),
    Mutation("preemption_status_1", "rs3d/engine/hooks/preemption.py", "PREEMPTED_EXIT_CODE = 75",
             "PREEMPTED_EXIT_CODE = 1",
             (P + "test_exit_statuses_are_the_documented_numbers", P + "test_a_stop_signal_maps_to_its_exit_status"),
             "schedulers stop requeuing preempted jobs"),
    Mutation("sigint_status_1", "rs3d/engine/hooks/preemption.py", "INTERRUPTED_EXIT_CODE = 130",
             "INTERRUPTED_EXIT_CODE = 1", (P + "test_a_stop_signal_maps_to_its_exit_status",),
             "Ctrl-C reports a plain failure instead of 130"),
    # ------------------------------------------------------------ hooks own their state, trackers (issues 21, 22)
    Mutation("hooks_set_trainer_attributes", "rs3d/engine/hooks/base.py",
             '        raise AttributeError(f"a hook does not set trainer attributes',
             '        return setattr(self._trainer, name, value)\n        raise AttributeError(f"',
             ("tests/engine/test_hooks.py::test_a_hook_cannot_set_a_trainer_attribute",),
             "a hook can write trainer attributes again (t.best, t.epoch_summary) and nothing says who owns them"),
    Mutation("old_checkpoint_best_dropped", "rs3d/engine/trainer.py",
             "LEGACY_HOOK_KEYS = {\"best\": (\"CheckpointHook\", \"best\")}", "LEGACY_HOOK_KEYS = {}",
             ("tests/engine/test_hooks.py::test_old_checkpoints_top_level_best_goes_to_the_checkpoint_hook",),
             "resuming a checkpoint written before hooks kept their state forgets the best score (a worse epoch "
             "overwrites checkpoint_best.pyth)"),
    Mutation("wandb_without_step_axis", "rs3d/engine/hooks/trackers.py",
             "self.run.log({STEP_KEY: step, **scalars})", "self.run.log(scalars)",
             ("tests/engine/test_trackers.py::test_wandb_gets_the_scalars_of_metrics_jsonl_and_tensorboard_across_a_stop_and_resume",),
             "W&B charts lose the optimizer step: curves of a resumed run do not line up with TensorBoard's"),
    Mutation("bad_input_status_1", "rs3d/utils/errors.py", "    exit_code = 2\n", "    exit_code = 1\n",
             (P + "test_exit_statuses_are_the_documented_numbers",), "bad input no longer exits with status 2"),
    Mutation("stopped_run_status_1", "rs3d/utils/errors.py", "    exit_code = 3\n", "    exit_code = 1\n",
             (P + "test_exit_statuses_are_the_documented_numbers",
              P + "test_the_eleventh_worker_death_stops_the_run_with_status_3"),
             "a NaN loss or worker deaths no longer exit with status 3"),
    Mutation("atomic_open_writes_the_target", "rs3d/utils/atomic.py", "tmp = temp_path_for(path)\n",
             "tmp = path\n",
             ("tests/utils/test_atomic_writes.py::test_a_writer_killed_mid_file_leaves_no_new_file",
              "tests/utils/test_atomic_writes.py::test_a_writer_killed_mid_overwrite_keeps_the_old_file",
              "tests/engine/test_engine_parts.py::test_atomic_save_keeps_the_old_file_when_writing_fails"),
             "a crash mid-save corrupts the file"),
    Mutation("atomic_temp_file_left_behind", "rs3d/utils/atomic.py",
             "with contextlib.suppress(OSError):\n                os.remove(tmp)",
             "with contextlib.suppress(OSError):\n                pass",
             ("tests/utils/test_atomic_writes.py::test_a_failed_rename_of_a_new_file_leaves_nothing",),
             "failed writes leave temporary files behind"),
    Mutation("no_fsync", "rs3d/utils/atomic.py", "            if fsync:\n                os.fsync(handle.fileno())",
             "            if False:\n                os.fsync(handle.fileno())",
             ("tests/utils/test_atomic_writes.py::test_data_is_fsynced_before_the_rename",),
             "a power cut after the rename can leave an empty file"),
    Mutation("skip_tracker_silent", "rs3d/data/dataset.py", "        for path, reason in failures:\n",
             "        for path, reason in failures[:0]:\n",
             (P + "test_each_bad_file_is_logged_once_with_its_reason_and_counted_per_epoch",
              "tests/data/test_datasets.py::test_two_worker_loader_with_a_bad_file"),
             "bad videos silently unreported"),
    Mutation("skip_count_not_reset", "rs3d/data/dataset.py", "count, self.epoch_skips = self.epoch_skips, 0",
             "count = self.epoch_skips",
             (P + "test_each_bad_file_is_logged_once_with_its_reason_and_counted_per_epoch",), "the per-epoch skip count grows over the run"),
    Mutation("trainer_drops_failures", "rs3d/engine/trainer.py", "self.skips.update(batch[\"failures\"])",
             "self.skips.update([])", (P + "test_training_reports_each_bad_file_once_and_counts_skips_per_epoch",),
             "a training run never reports its unreadable videos"),
    Mutation("worker_deaths_limit_off_by_one", "rs3d/engine/loader_guard.py",
             "self.crashes > self.max_crashes", "self.crashes > self.max_crashes + 1",
             (P + "test_the_eleventh_worker_death_stops_the_run_with_status_3",),
             "the run keeps restarting a loader past the documented 10 worker deaths"),
    Mutation("fp16_without_grad_scaler", "rs3d/engine/trainer.py", "enabled=self.amp_dtype == torch.float16)",
             "enabled=False)", (P + "test_the_trainer_builds_an_enabled_grad_scaler_for_fp16_only",),
             "fp16 gradients underflow (no loss scaling)"),
    Mutation("step_bypasses_grad_scaler", "rs3d/engine/trainer.py", "self.scaler.step(self.optimizer)",
             "self.optimizer.step()", (P + "test_fp16_grad_scaler_steps_with_the_unscaled_gradient",),
             "fp16 steps use the scaled gradient (2**16 times too large)"),
    Mutation("grad_clip_ignored", "rs3d/engine/trainer.py",
             "nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)",
             "nn.utils.clip_grad_norm_(self.model.parameters(), math.inf)",
             (P + "test_grad_clip_norm_clips_the_true_gradient",), "SOLVER.GRAD_CLIP_NORM has no effect"),
    Mutation("grad_clip_before_unscale", "rs3d/engine/trainer.py", "self.scaler.unscale_(self.optimizer)\n", "\n",
             (P + "test_grad_clip_norm_clips_the_true_gradient",),
             "under fp16 the clip sees the scaled gradient"),
    Mutation("export_mismatch_exits_0", "rs3d/commands/export.py", "return 0 if report.max_abs_diff < 1e-3 else 1",
             "return 0", (P + "test_export_fails_when_the_program_disagrees_with_the_model",),
             "an exported program that disagrees with the model is reported as a success"),
    Mutation("export_writes_the_target", "rs3d/inference/export.py", "torch.export.save(program, tmp)",
             "torch.export.save(program, path)", (P + "test_a_failed_export_save_leaves_the_previous_program",),
             "a failed export leaves half a program at the target"),
    Mutation("benchmark_verdict_on_best_ratio", "rs3d/studies/worker_throughput/report.py",
             "verdict = \"PASS\" if min(wall, cpu) >= target", "verdict = \"PASS\" if max(wall, cpu) >= target",
             ("tests/studies/test_benchmark_data.py::test_verdicts_against_the_readmes_targets",),
             "a target met by wall time only is reported as met"),
    # ------------------------------------------------------------ one per capability since (issues 19, 20)
    Mutation("every_worker_death_a_decoder_fault", "rs3d/engine/loader_guard.py",
             "return exitcode > 0 or (exitcode < 0 and -exitcode in FAULT_SIGNALS)", "return exitcode != 0",
             ("tests/engine/test_stops.py::test_which_worker_deaths_are_decoder_faults",),
             "a worker killed by a stop signal or the OOM killer gets its video excluded as a crash"),
    Mutation("workers_take_group_signals", "rs3d/data/workers.py", "signal.signal(sig, signal.SIG_IGN)",
             "signal.getsignal(sig)",
             ("tests/engine/test_stops.py::test_loader_workers_ignore_group_signals_but_obey_the_trainer",),
             "Ctrl-C or a scheduler's group signal kills the loader workers mid-step"),
    Mutation("non_finite_checkpoint_accepted", "rs3d/checkpoint/finite.py",
             "if not bool(torch.stack(peaks).isfinite().all()):", "if False:",
             ("tests/engine/test_stops.py::test_auto_resume_never_picks_a_non_finite_checkpoint",),
             "a diverged (NaN) checkpoint is written and resumed from"),
    Mutation("torchvision_magnitude_unchecked", "rs3d/config/checks.py",
             "d.RANDAUGMENT_POLICY == \"torchvision\" and d.RANDAUGMENT_MAGNITUDE > 30",
             "d.RANDAUGMENT_POLICY == \"torchvision\" and d.RANDAUGMENT_MAGNITUDE > 300",
             ("tests/config/test_config_validation.py::test_rules_that_tie_keys_together",),
             "a torchvision RandAugment magnitude past its 30 bins is accepted at load"),
    Mutation("lowered_temporal_conv_unpadded", "rs3d/models/conv.py", "(self.stride[0], 1), (self.padding[0], 0))",
             "(self.stride[0], 1), (0, 0))",
             ("tests/models/test_conv_lowering.py::test_lowered_conv_equals_conv3d_in_float64",),
             "MODEL.RESNET3D.CONV_IMPL lowered computes another convolution than Conv3d"),
    # ------------------------------------------------------------ caught before issue 24
    Mutation("tf_same_padding_mirrored", "rs3d/models/padding.py", "pads += [total // 2, total - total // 2]",
             "pads += [total - total // 2, total // 2]",
             ("tests/models/test_tf_parity.py::test_tf_same_padding_reproduces_tf_logits_and_endpoints",),
             "PADDING tf_same no longer reproduces TF's logits"),
    Mutation("tf_randaugment_rounding", "rs3d/data/augment/tf_spec.py",
             "sx, sy = _round_half_away(source_x), _round_half_away(source_y)",
             "sx, sy = np.rint(source_x).astype(np.int64), np.rint(source_y).astype(np.int64)",
             ("tests/data/augment/test_randaugment_tf.py::test_geometric_ops_equal_tensorflow",),
             "geometric RandAugment ops differ from TF by a pixel"),
    Mutation("tf_equalize_unrounded", "rs3d/data/augment/tf_kernels.py",
             "lut = (np.cumsum(hist) + step // 2) // max(step, 1)", "lut = np.cumsum(hist) // max(step, 1)",
             ("tests/data/augment/test_randaugment_tf.py::test_colour_ops_equal_tensorflow_bit_for_bit",),
             "Equalize differs from TF's"),
    Mutation("tf_sharpness_kernel", "rs3d/data/augment/tf_kernels.py", "inner.add_(x[..., 1:-1, 1:-1], alpha=4)",
             "inner.add_(x[..., 1:-1, 1:-1], alpha=5)",
             ("tests/data/augment/test_randaugment_tf.py::test_colour_ops_equal_tensorflow_bit_for_bit",),
             "Sharpness differs from TF's"),
    Mutation("flip_after_randaugment", "rs3d/data/transforms.py",
             "        if draws.flip:\n            clip = clip.flip(-1)\n"
             "        if isinstance(self._randaugment, TFRandAugment):\n"
             "            return self._randaugment.apply(clip, list(draws.ops))\n",
             "        if isinstance(self._randaugment, TFRandAugment):\n"
             "            clip = self._randaugment.apply(clip, list(draws.ops))\n"
             "            return clip.flip(-1) if draws.flip else clip\n",
             ("tests/data/test_device_inputs.py::test_batch_equals_worker_path_bit_for_bit",),
             "the worker path flips after RandAugment, the device path before"),
    Mutation("plans_of_two_policies_collide", "rs3d/data/augment/tv_kernels.py",
             'plan = cpu_plan(("torchvision", op, magnitude), height, width,',
             'plan = cpu_plan(("tf", op, magnitude, False), height, width,',
             ("tests/data/augment/test_randaugment_tf.py::test_one_plan_cache_keeps_policies_fill_modes_and_paths_apart",),
             "the one plan cache hands torchvision's geometric plan to TF's op at the same argument (or back)"),
    Mutation("train_inputs_accept_any_batch", "rs3d/data/device_inputs.py",
             'if (self.augment is not None) != ("augment" in batch):', "if False:",
             ("tests/data/test_device_inputs.py::"
              "test_loader_and_inputs_from_different_decisions_fail_at_the_first_batch",),
             "a loader and train inputs built from different augment_on_device answers train on raw crops or "
             "augment twice without a word"),
    Mutation("rng_not_restored", "rs3d/checkpoint/rng.py", "torch.set_rng_state(state[\"torch\"].cpu())",
             "torch.get_rng_state()",
             ("tests/engine/test_engine_parts.py::test_rng_state_round_trip_survives_weights_only",),
             "a resumed run draws other augmentations than an uninterrupted one"),
    Mutation("checkpoints_unpickle_code", "rs3d/checkpoint/io.py",
             "torch.load(f, map_location=map_location, weights_only=True)",
             "torch.load(f, map_location=map_location, weights_only=False)",
             ("tests/engine/test_engine_parts.py::test_checkpoint_with_pickled_code_is_refused",),
             "a checkpoint carrying pickled code runs it"),
    # ------------------------------------------------------------ comparisons (issue 23)
    Mutation("bootstrap_unpaired", "rs3d/studies/statistics.py",
             "_resampled_mean(a, videos, rng) - _resampled_mean(b, videos, rng)",
             "_resampled_mean(a, videos, rng) - _resampled_mean(b, draw_counts(rng, n, size), rng)",
             ("tests/studies/test_compare_stats.py::test_bootstrap_is_paired_over_videos",),
             "the two configs are resampled on different videos: intervals too wide, real differences missed"),
    Mutation("bootstrap_seeds_averaged", "rs3d/studies/statistics.py",
             "seed_counts = draw_counts(rng, seeds, len(video_counts))",
             "seed_counts = np.ones((len(video_counts), seeds))",
             ("tests/studies/test_compare_stats.py::test_bootstrap_resamples_seeds_not_only_videos",),
             "the seed-to-seed spread is left out of the interval: chance wins called real"),
    Mutation("mcnemar_one_sided", "rs3d/studies/statistics.py", "p_exact = min(1.0, float(2 * tail / 2 ** n))",
             "p_exact = min(1.0, float(tail / 2 ** n))", ("tests/studies/test_compare_stats.py::test_mcnemar_hand_worked",),
             "McNemar's p-value halved"),
    Mutation("budget_init_as_architecture", "rs3d/studies/budget.py",
             "if not under(k, ARCHITECTURE) or under(k, NOT_ARCHITECTURE)", "if not under(k, ARCHITECTURE)",
             ("tests/studies/test_compare.py::test_unequal_budget_is_refused_naming_the_keys",),
             "a pretrained run is compared with a scratch run without a word"),
    Mutation("seed_folder_budget_unchecked", "rs3d/studies/seeds.py", "    if diffs:\n", "    if False:\n",
             ("tests/studies/test_compare.py::test_seed_folder_with_another_budget_is_refused_and_failures_stop",),
             "a seed folder trained with another budget is reused as if it were the requested one"),
    # ------------------------------------------------------------ the lead's capabilities this session
    Mutation("lowered_spatial_conv_unpadded", "rs3d/models/conv.py",
             "self.weight.squeeze(2), self.bias, self.stride[1:], self.padding[1:])",
             "self.weight.squeeze(2), self.bias, self.stride[1:], 0)",
             ("tests/models/test_conv_lowering.py::test_lowered_conv_equals_conv3d_in_float64",),
             "lowered (1,k,k) convs lose their padding: other shapes, other numbers"),
    Mutation("lowered_temporal_conv_stride_lost", "rs3d/models/conv.py",
             "(self.stride[0], 1), (self.padding[0], 0))", "(1, 1), (self.padding[0], 0))",
             ("tests/models/test_conv_lowering.py::test_lowered_conv_equals_conv3d_in_float64",),
             "lowered (k,1,1) convs ignore their temporal stride"),
    Mutation("fused_tail_se_pools_ungated", "rs3d/models/layers.py", "            pooled = pooled * scale\n", "",
             ("tests/models/test_conv_lowering.py::test_every_eager_variant_equals_the_unfused_conv3d_step_in_float64",),
             "the fused block tail computes SE from the ungated tensor: another function than TF's block"),
    Mutation("regional_compile_limit_not_raised", "rs3d/engine/compile.py",
             "    raise_recompile_limits(_VARIANTS_PER_REGION * len(regions))\n", "",
             ("tests/models/test_conv_lowering.py::"
              "test_regional_compile_makes_one_graph_per_block_signature_and_never_runs_eagerly",),
             "blocks past dynamo's recompile limit silently run eagerly"),
    Mutation("weights_load_partially_when_testing", "rs3d/checkpoint/weights.py",
             "if missing or unexpected or (strict and reinit):", "if missing or unexpected:",
             ("tests/engine/test_engine_parts.py::test_testing_and_prediction_load_strictly",),
             "rs3d-test / rs3d-predict score a partly random network and exit 0"),
    Mutation("run_lock_never_refuses", "rs3d/engine/run_lock.py", "            if reason is None:\n",
             "            if False:\n", ("tests/engine/test_run_folder.py::test_a_live_lock_refuses_and_names_its_holder",),
             "two trainings share one OUTPUT_DIR"),
    Mutation("rerun_accepts_a_model_change", "rs3d/engine/rerun.py",
             'return "fixed" if key.startswith(FIXED_PREFIXES) else "recipe"', 'return "recipe"',
             ("tests/engine/test_run_folder.py::test_the_rerun_rule",),
             "a rerun with another model is continued with --allow-changes"),
    Mutation("container_frame_count_trusted", "rs3d/data/decoders/probe.py",
             "num_frames = stream.frames or _count_video_packets(path)", "num_frames = stream.frames",
             ("tests/data/test_containers.py::test_frame_count_and_frames_match_a_full_decode",),
             "WebM / Matroska videos read as having no frames"),
    Mutation("shared_weights_not_ema", "rs3d/inference/sharing.py", "load_weights(model, checkpoint, checkpoint=state)",
             "load_weights(model, checkpoint, prefer_ema=False, checkpoint=state)",
             ("tests/inference/test_sharing.py::test_export_as_safetensors_round_trips_the_ema_weights_with_a_card",),
             "the shared model holds the raw weights, not the EMA the run reported"),
    Mutation("model_card_without_results", "rs3d/inference/sharing.py",
             "results = run_results(run_dir if run_dir is not None else os.path.dirname(checkpoint))",
             "results = {}",
             ("tests/inference/test_sharing.py::test_export_as_safetensors_round_trips_the_ema_weights_with_a_card",),
             "the model card shows no validation or test numbers"),
    Mutation("slurm_rank_is_the_local_rank", "rs3d/utils/distributed.py", '"RANK": environ["SLURM_PROCID"],',
             '"RANK": environ.get("SLURM_LOCALID", "0"),',
             ("tests/engine/test_slurm.py::test_slurm_variables_become_torchruns",),
             "multi-node srun jobs start with duplicate ranks"),
    Mutation("submit_never_requeues", "rs3d/commands/submit.py", "f'if [ \"$status\" -eq {PREEMPTED} ]; then',",
             "f'if [ \"$status\" -eq 1{PREEMPTED} ]; then',",
             ("tests/engine/test_slurm.py::test_a_preempted_run_requeues_its_job",),
             "a preempted Slurm job is not requeued"),
    Mutation("stream_clip_ignores_the_sampling_rate", "rs3d/inference/stream.py",
             "return sampling_rate * (fps / target_fps if target_fps else 1.0)", "return 1.0",
             ("tests/inference/test_stream.py::test_webcam_indices_and_frame_steps",),
             "live predictions see a shorter clip than the model was trained on"),
    # ------------------------------------------------------------ registries and one concern per file (issue 21)
    Mutation("section_keys_not_passed", "rs3d/models/factory.py",
             "kwargs[key.lower()] = list(value) if isinstance(value, tuple) else value", "pass",
             ("tests/models/test_registry.py::test_section_keys_are_arguments_and_keywords",),
             "MODEL.RESNET3D keys (and create_model keywords) are silently ignored: every model is the default"),
    Mutation("backbone_check_skips_the_head", "rs3d/models/registry.py", "    if not head_prefixes(model):",
             "    if False:", ("tests/models/test_registry.py::test_the_checker_names_what_breaks_the_contract",),
             "a registered model whose head fine-tuning cannot find passes the contract check"),
    Mutation("rotated_video_not_rerouted", "rs3d/data/decoders/registry.py", "    if not chosen.suits(info, local):",
             "    if False:", ("tests/data/test_decoding.py::test_rotated_video_is_decoded_upright",),
             "rotated videos are decoded sideways by a backend that ignores rotation"),
    Mutation("custom_imports_ignored", "rs3d/config/loader.py", "    import_custom_modules(cfg, path or \"config\")\n",
             "", ("tests/commands/test_extension.py::test_custom_imports_by_module_name_and_their_errors",),
             "CUSTOM_IMPORTS does nothing: a user's registered model or backend is unknown to the commands"),
    Mutation("split_reader_ignores_class_names_file", "rs3d/data/splits.py",
             "names_file = class_names_file or os.path.join(data_dir, \"classnames.json\")",
             "names_file = os.path.join(data_dir, \"classnames.json\")",
             ("tests/data/test_splits.py::test_the_tools_read_labels_from_data_class_names_file_as_training_does",),
             "rs3d-check-data and rs3d-prepare-data label a Kinetics split differently from training"),
    # ------------------------------------------------------------ one error: line per bad input (issue 25)
    Mutation("lfs_pointer_not_recognised", "rs3d/checkpoint/kinds.py", "    if head.startswith(LFS_POINTER):",
             "    if False:", ("tests/commands/test_bad_inputs.py::test_one_error_line_and_nothing_changed[predict --checkpoint lfs]",),
             "a Git LFS pointer named like a checkpoint is called text, not a pointer to pull"),
    Mutation("output_dir_not_probed", "rs3d/utils/writable.py", "    reason = _probe(existing)\n    if reason:\n"
             "        raise NotWritableError(f\"{path}: cannot write in", "    reason = None\n    if reason:\n"
             "        raise NotWritableError(f\"{path}: cannot write in",
             ("tests/commands/test_bad_inputs.py::test_one_error_line_and_nothing_changed[train OUTPUT_DIR read-only]",),
             "a read-only or full OUTPUT_DIR is found only by the first write, without naming the key"),
    Mutation("bom_kept", "rs3d/utils/text_files.py", 'return data.decode("utf-8-sig")', 'return data.decode("utf-8")',
             ("tests/commands/test_bad_inputs.py::test_accepted_inputs",), "a CSV saved with a BOM names a missing first video"),
    Mutation("csv_folder_read_as_class_folders", "rs3d/data/annotations.py",
             "    if not paths.is_local(path) or not os.path.lexists(path):", "    if True:",
             ("tests/commands/test_bad_inputs.py::test_one_error_line_and_nothing_changed[train train.csv is a FIFO]",),
             "a train.csv that is a folder or FIFO silently switches the dataset to class-folder mode"),
    Mutation("duplicate_class_names_accepted", "rs3d/data/annotations.py", "        _refuse_repeats(path, data)\n", "",
             ("tests/commands/test_bad_inputs.py::test_one_error_line_and_nothing_changed[train duplicate class names]",), "two classes of one name are trained as different classes"),
    Mutation("resume_checkpoints_not_checked_first", "rs3d/engine/preflight.py",
             'CheckpointManager(os.path.join(cfg.OUTPUT_DIR, "checkpoints")).check_foreign()', "pass",
             ("tests/commands/test_bad_inputs.py::test_one_error_line_and_nothing_changed[auto-resume, newest checkpoint lfs]",),
             "a run folder holding a Git LFS pointer is refused only after its log was appended to"),
    Mutation("failed_first_start_leaves_a_folder", "rs3d/commands/train.py", "            forget_failed_start(cfg.OUTPUT_DIR)\n",
             "            pass\n", ("tests/commands/test_bad_inputs.py::test_one_error_line_and_nothing_changed[train latin-1 class names]",),
             "a first run refused for its data leaves an OUTPUT_DIR behind"),
    Mutation("compare_max_batch_1_times_nothing", "rs3d/studies/compare.py", "batch = 0.0, 0, min(2, budget.max_batch)",
             "batch = 0.0, 0, 2", ("tests/commands/test_bad_inputs.py::test_largest_batch_speed_with_max_batch_1_is_measured_not_zero",),
             "rs3d-compare --max-batch 1 reports 0.00 clips/s"),
    Mutation("demo_bars_from_the_windows", "rs3d/inference/demo.py",
             "result = DemoResult(labels=dict(whole.top),", "result = DemoResult(labels=dict(windows.top),",
             ("tests/inference/test_demo.py::test_analysis_matches_rs3d_predict_for_the_same_video",),
             "the demo page's bars are the sliding windows' mean, not the multi-view answer rs3d-predict gives"),
    Mutation("model_final_weights_untagged", "rs3d/engine/trainer.py",
             '"weights": "ema" if self.ema else "raw",', '"weights": "raw",',
             ("tests/inference/test_sharing.py::test_a_trained_runs_card_names_its_ema_weights",),
             "a trained run's model card says its weights are the raw model's when they are the EMA's"),
    Mutation("hub_name_fetched_per_read", "rs3d/checkpoint/hub.py", "    if path not in _RESOLVED:\n",
             "    if True:\n", ("tests/inference/test_sharing.py::test_a_hub_name_is_fetched_once_per_process",),
             "create_model('hf-hub:...') asks the hub once for the config and again for the weights"),
    Mutation("input_advice_ignores_ranks", "rs3d/engine/hooks/diagnosis.py",
             "cores, processes = available_cores(), local_processes()", "cores, processes = available_cores(), 1",
             ("tests/engine/test_input_bound.py::test_advice_quotes_this_processes_share_of_the_cores_under_torchrun",),
             "under torchrun the input-bound advice offers every rank the whole machine's cores"),
    Mutation("channel_mean_gradient_materialised", "rs3d/models/layers.py",
             "[:, :, None, None, None].expand(n, c, t, h, w)\n",
             "[:, :, None, None, None].expand(n, c, t, h, w).contiguous()\n",
             ("tests/models/test_channel_mean.py::test_values_and_gradient_are_bitwise_those_of_mean",
              "tests/models/test_channel_mean.py::test_backward_writes_no_ncdhw_tensor_and_keeps_the_gradient_channels_last",
              "tests/studies/test_traffic.py::test_the_fused_tail_moves_fewer_bytes_and_keeps_channels_last_in_backward"),
             "every SE / gate / head pool writes a full NCDHW gradient again: bytes and strided reads per step"),
    Mutation("traffic_counts_broadcasts_in_full", "rs3d/studies/traffic.py",
             "for s, st in zip(t.shape, t.stride()) if st != 0)", "for s, st in zip(t.shape, t.stride()))",
             ("tests/studies/test_traffic.py::test_distinct_bytes_counts_a_broadcast_once",
              "tests/studies/test_traffic.py::test_bytes_of_a_conv_and_relu_step_match_a_hand_count"),
             "the byte profile charges a broadcast gradient as a full tensor: wrong floors, wrong lever decisions"),
    Mutation("drop_path_share_counts_shortcuts", "rs3d/studies/traffic.py",
             "if isinstance(m, nn.Conv3d) and m not in shortcut:", "if isinstance(m, nn.Conv3d):",
             ("tests/studies/test_traffic.py::test_drop_path_skip_share_is_the_rate_weighted_branch_share_of_the_conv_macs",),
             "the drop-path skip saving counts the projection shortcuts, which run for every sample"),
    Mutation("layout_watch_trusts_cpu_convs", "rs3d/studies/traffic.py",
             'watcher = _LayoutWatcher(cuda_like_convs=torch.device(device).type == "cpu")',
             "watcher = _LayoutWatcher(cuda_like_convs=False)",
             ("tests/studies/test_traffic.py::test_the_fused_tail_moves_fewer_bytes_and_keeps_channels_last_in_backward",),
             "the layout check's answer depends on the CPU thread count (oneDNN's conv layout), not on the model"),
    Mutation("resume_keeps_the_checkpoints_recipe", "rs3d/engine/trainer.py", "        self.apply_config_recipe()\n", "",
             ("tests/engine/test_resume_changes.py::test_a_resumed_run_trains_with_the_configs_recipe_and_a_plain_resume_is_untouched",),
             "an --allow-changes rerun trains with the checkpoint's LR / weight decay / EMA decay, not the logged ones"),
    Mutation("fp16_resume_loads_an_empty_scaler", "rs3d/engine/trainer.py",
             'if self.scaler.is_enabled() and not state["scaler"]:', "if False:",
             ("tests/engine/test_resume_changes.py::test_fp16_can_continue_a_run_trained_without_it",),
             "switching a bf16/fp32 run to fp16 on resume ends in a traceback"),
    Mutation("best_between_checkpoint_epochs_lost", "rs3d/engine/hooks/checkpointing.py",
             "        elif is_best:", "        elif False:",
             ("tests/engine/test_resume_changes.py::test_the_best_epoch_is_kept_whether_or_not_it_writes_a_checkpoint",),
             "checkpoint_best.pyth is missing or stale when the best epoch writes no epoch checkpoint"),
    Mutation("lock_refuses_a_reused_pid", "rs3d/engine/run_lock.py",
             'if pid == self.me["pid"] and not any(', 'if False and not any(',
             ("tests/engine/test_resume_changes.py::test_a_restart_that_reuses_the_dead_runs_pid_takes_the_lock_over",),
             "a container restarted with its dead predecessor's PID is refused its own run folder"),
    Mutation("rng_restores_every_saved_gpu", "rs3d/checkpoint/rng.py",
             'enumerate(state["cuda"][: torch.cuda.device_count()])', 'enumerate(state["cuda"])',
             ("tests/engine/test_resume_changes.py::test_rng_states_of_more_gpus_than_this_machine_has_restore_those_it_has",),
             "a run written on 8 GPUs cannot resume on fewer"),
    Mutation("train_keeps_held_out_val", "rs3d/utils/class_folders.py",
             '    if split == "train" and not paths.isdir(os.path.join(data_dir, "val")):\n        return None\n', "",
             ("tests/data/test_split_fixes.py::test_train_folder_without_val_leaves_the_held_out_videos_out_of_train",),
             "with train/ but no val/, every validation video is also trained on: validation accuracy inflated"),
    Mutation("class_folders_ignore_names_file", "rs3d/data/splits.py",
             "return read_class_folders(data_dir, split, val_fraction, names, names_file)[0]",
             "return read_class_folders(data_dir, split, val_fraction)[0]",
             ("tests/data/test_split_fixes.py::test_class_folders_take_their_labels_from_the_class_names_file",
              "tests/data/test_split_fixes.py::test_a_class_names_file_that_disagrees_with_the_folders_is_named"),
             "class-folder labels follow folder order while checkpoints and predictions use the names file's order"),
    Mutation("kinetics_lines_skip_blanks", "rs3d/data/annotations.py",
             "    for values in reader:\n        number, start = start, reader.line_num + 1\n        if not values:  # a blank line\n            continue\n",
             "    for number, values in enumerate(filter(None, reader), start=2):\n",
             ("tests/data/test_split_fixes.py::test_kinetics_records_keep_their_line_numbers_after_blank_lines",),
             "after a blank line in a Kinetics CSV, errors name the wrong line and cleaned CSVs drop good videos"),
    Mutation("prepared_class_names_sorted", "rs3d/commands/prepare_data.py",
             "json.dumps(read_class_names(src, class_names_file, val_fraction)[0], indent=1)",
             "json.dumps(sorted(read_class_names(src, class_names_file, val_fraction)[0]), indent=1)",
             ("tests/data/test_split_fixes.py::test_prepare_data_keeps_the_class_names_file_order_of_class_folders",),
             "rs3d-prepare-data's classnames.json disagrees with its CSV labels when a names file orders the classes"),
    Mutation("pyav_vfr_index_by_timestamp", "rs3d/data/decoders/pyav_backend.py",
             "        index_of = {t: i for i, t in enumerate(times)}\n",
             "        index_of = {t: int(round(float((t - times[0]) * self._stream.time_base) * self.info.fps)) for t in times}\n",
             ("tests/data/test_frame_indices.py::test_pyav_gives_the_ith_frame_shown_on_variable_frame_rate_video",),
             "PyAV returns other frames than asked on variable-frame-rate video (every rotated phone video)"),
    Mutation("decord_edit_list_end_unchecked", "rs3d/data/decoders/decord_backend.py",
             "    return num_frames - int(np.count_nonzero(starts < 0))\n", "    return num_frames\n",
             ("tests/data/test_frame_indices.py::test_frames_past_the_last_shown_are_reported_not_repeated",),
             "decord repeats the last frame shown past the end of a stream-copy cut MP4: frozen frames in test views"),
    Mutation("render_switches_the_answer", "rs3d/commands/predict.py",
             "    predictions = predictor.predict_many(videos, args.window_sec, args.stride_sec)",
             "    predictions = predictor.predict_many(videos, args.window_sec or (label_window_sec(predictor.spec) "
             "if args.render else None), args.stride_sec)",
             ("tests/inference/test_review_fixes.py::test_render_keeps_the_multi_view_answer",),
             "--render silently replaces the multi-view answer with the mean over windows"),
    Mutation("render_names_collide", "rs3d/commands/predict.py", "    if len(set(stems)) == len(stems):", "    if True:",
             ("tests/inference/test_review_fixes.py::test_render_folder_keeps_same_named_videos_apart",),
             "videos of the same name from different folders overwrite each other's rendered copy"),
    Mutation("render_absolute_time", "rs3d/inference/render.py",
             "seconds = float((frame.pts - start) * frame.time_base)", "seconds = float(frame.pts * frame.time_base)",
             ("tests/inference/test_review_fixes.py::test_render_labels_count_from_the_first_frame",),
             "rendered labels of MPEG-TS / camera files show the last window from the first frame"),
    Mutation("stream_absolute_time", "rs3d/inference/stream.py",
             "time = float((frame.pts - start) * frame.time_base)", "time = float(frame.pts * frame.time_base)",
             ("tests/inference/test_review_fixes.py::test_stream_from_a_late_start_counts_from_its_first_frame",),
             "--stream --max-sec on a live stream joined late predicts nothing"),
    Mutation("safetensors_export_not_strict", "rs3d/inference/sharing.py",
             "load_weights(model, checkpoint, checkpoint=state)",
             "load_weights(model, checkpoint, checkpoint=state, strict=False)",
             ("tests/inference/test_review_fixes.py::test_safetensors_export_of_another_class_count_is_one_error",),
             "exporting with a config of another class count shares a model with a random head"),
    Mutation("test_split_unreadable_crash", "rs3d/evaluation/testing.py",
             "paths = [] if ids is None else [records[int(i)].path for i in ids]",
             "paths = [records[int(i)].path for i in ids]",
             ("tests/inference/test_review_fixes.py::test_a_test_split_with_no_readable_video_writes_empty_reports",),
             "rs3d-test on a split with no readable video ends in a TypeError traceback"),
    Mutation("windows_ignore_decodable", "rs3d/inference/predictor.py",
             "            if n < known and end == len(spans):", "            if False:",
             ("tests/inference/test_review_fixes.py::test_window_mode_reads_what_multi_view_reads_of_a_truncated_file",),
             "--window-sec / --render / the demo refuse a truncated mp4 that the multi-view test reads"),
    Mutation("render_ignores_rotation", "rs3d/inference/render.py",
             'rotate(frame.to_ndarray(format="rgb24")[None], normalise_rotation(frame.rotation))[0]',
             'frame.to_ndarray(format="rgb24")',
             ("tests/inference/test_review_fixes.py::test_render_turns_phone_videos_upright",),
             "rendered phone videos come out sideways"),
    Mutation("stream_takes_each_frame_once", "rs3d/inference/stream.py",
             "                while next_take < index + 1 - 1e-6:", "                if next_take < index + 1 - 1e-6:",
             ("tests/inference/test_stream.py::test_stream_clips_take_the_frames_clip_indices_takes",),
             "with TARGET_FPS above a stream's fps, live clips cover twice the time training clips do"),
)


def find_problems(root: str = ROOT, mutations: tuple[Mutation, ...] = MUTATIONS) -> list[str]:
    """Mutations whose snippet does not occur exactly once in ``root``, or that change nothing, or whose tests
    are missing; empty when the list is current."""
    problems = []
    if len({m.name for m in mutations}) != len(mutations):
        problems.append("mutation names are not unique")
    for m in mutations:
        path = os.path.join(root, m.path)
        text = open(path, encoding="utf-8").read() if os.path.isfile(path) else ""
        count = text.count(m.original)
        if count != 1:
            problems.append(f"{m.name}: the original snippet occurs {count} times in {m.path}")
        if m.original == m.mutated:
            problems.append(f"{m.name}: the mutation changes nothing")
        for test in m.tests:
            file, _, name = test.partition("::")
            source = os.path.join(root, file)
            if not os.path.isfile(source) or (name and f"def {name.split('[')[0]}(" not in open(source).read()):
                problems.append(f"{m.name}: no test {test}")
    return problems


def copy_repository(root: str, dest: str) -> None:
    """Tracked and untracked-but-not-ignored files of ``root`` (as they are in the working tree) into ``dest``."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = os.path.join(root, rel)
        if os.path.isfile(src):  # deleted but still in the index: skip
            os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
            shutil.copy2(src, os.path.join(dest, rel))


def run_tests(copy: str, tests: tuple[str, ...], stop_early: bool) -> tuple[int, str, float]:
    """pytest on ``tests`` inside the copy; (return code, last lines of output, seconds)."""
    env = dict(os.environ, PYTHONPATH=copy, PYTHONDONTWRITEBYTECODE="1")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--timeout", "120",
           *(["-x"] if stop_early else []), *tests]
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=copy, env=env, capture_output=True, text=True)
    tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
    return proc.returncode, tail, time.monotonic() - start


def check_imports_from(copy: str) -> None:
    """Make sure a test process in the copy imports the copy's rs3d (the venv may hold an editable install)."""
    env = dict(os.environ, PYTHONPATH=copy)
    found = subprocess.run([sys.executable, "-c", "import rs3d, os; print(os.path.realpath(rs3d.__file__))"],
                           cwd=copy, env=env, capture_output=True, text=True, check=True).stdout.strip()
    if not found.startswith(os.path.realpath(copy) + os.sep):
        sys.exit(f"error: rs3d is imported from {found}, not from the copy {copy}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", metavar="NAME", help="run only this mutation (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the mutations and their tests, run nothing")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copy (its path is printed)")
    args = parser.parse_args(argv)
    chosen = MUTATIONS
    if args.only:
        unknown = set(args.only) - {m.name for m in MUTATIONS}
        if unknown:
            parser.error(f"unknown mutation(s) {', '.join(sorted(unknown))}; see --list")
        chosen = tuple(m for m in MUTATIONS if m.name in args.only)
    if args.list:
        for m in chosen:
            print(f"{m.name}  ({m.path}): {m.breaks}\n    " + "\n    ".join(m.tests))
        return 0
    problems = find_problems(ROOT, chosen)
    if problems:
        print("error: the mutation list is out of date:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 2
    start = time.monotonic()
    copy = tempfile.mkdtemp(prefix="rs3d-mutation-")
    try:
        copy_repository(ROOT, copy)
        check_imports_from(copy)
        tests = tuple(dict.fromkeys(t for m in chosen for t in m.tests))
        code, tail, seconds = run_tests(copy, tests, stop_early=False)
        print(f"baseline: {len(tests)} test selections, unmutated, {seconds:.0f} s: "
              f"{'pass' if code == 0 else 'FAIL'}", flush=True)
        if code != 0:
            print(tail, file=sys.stderr)
            return 1
        rows, survivors = [], 0
        for m in chosen:
            target = os.path.join(copy, m.path)
            original = open(target, encoding="utf-8").read()
            try:
                with open(target, "w", encoding="utf-8") as f:
                    f.write(original.replace(m.original, m.mutated, 1))
                code, tail, seconds = run_tests(copy, m.tests, stop_early=True)
            finally:
                with open(target, "w", encoding="utf-8") as f:
                    f.write(original)
            caught = "yes" if code == 1 else "NO" if code == 0 else f"ERROR (pytest status {code})"
            survivors += caught != "yes"
            rows.append((m.name, ", ".join(t.rpartition("/")[2] for t in m.tests), caught, seconds))
            print(f"{m.name}: {caught} ({seconds:.0f} s)", flush=True)
            if caught != "yes":
                print("    " + tail.replace("\n", "\n    "), flush=True)
        print("\n| mutation | tests | caught |\n|---|---|---|")
        for name, tests_text, caught, _ in rows:
            print(f"| {name} | {tests_text} | {caught} |")
        print(f"\n{len(rows) - survivors} of {len(rows)} mutations caught in {time.monotonic() - start:.0f} s")
        return 1 if survivors else 0
    finally:
        if args.keep:
            print(f"copy kept at {copy}")
        else:
            shutil.rmtree(copy, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
