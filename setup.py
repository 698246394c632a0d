"""rs3d: 3D ResNet-RS video classification in PyTorch."""

from setuptools import find_packages, setup

# Every command module in rs3d/commands/ (argument parsing, one-line errors) as a console script.
COMMANDS = {
    "rs3d-train": "train",
    "rs3d-test": "test",
    "rs3d-predict": "predict",
    "rs3d-export": "export",
    "rs3d-check-data": "check_data",
    "rs3d-prepare-data": "prepare_data",
    "rs3d-make-toy-data": "make_toy_data",
    "rs3d-compare": "compare",
    "rs3d-scaling-table": "scaling_table",
    "rs3d-model-table": "model_table",
    "rs3d-submit": "submit",
    "rs3d-demo": "demo",
}

setup(
    name="rs3d",
    version="0.1.0",
    description="3D ResNet-RS video classification with temporal scaling knobs, and fair 3D ResNet baselines",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    # The repository's configs/ ships as the package rs3d.configs (the same files, not a copy), so an installed
    # rs3d builds models by name: rs3d.create_model("rs3d_50"), --cfg rs3d:finetune/rs3d_50_imagenet.
    packages=find_packages(include=["rs3d", "rs3d.*"]) + ["rs3d.configs"],
    package_dir={"rs3d.configs": "configs"},
    package_data={"rs3d.configs": ["*.yaml", "**/*.yaml"]},
    install_requires=[
        "torch>=2.4",
        "torchvision>=0.19",
        "pytorchvideo>=0.1.5",
        # decord has x86-64 wheels only; elsewhere its maintained fork decord2 provides the same `import decord`.
        "decord>=0.6.0; platform_machine == 'x86_64' or platform_machine == 'AMD64'",
        "decord2>=3.0; platform_machine != 'x86_64' and platform_machine != 'AMD64'",
        "av>=12",
        "fvcore>=0.1.5",
        "iopath>=0.1.9",
        "numpy>=1.24",
        "PyYAML>=6.0",
        "tensorboard>=2.10",
        "matplotlib>=3.7",
        # pretrained folders: weights as safetensors, shared through the Hugging Face Hub (hf-hub:org/name)
        "safetensors>=0.4",
        "huggingface_hub>=0.23",
    ],
    extras_require={
        "test": ["pytest>=8", "pytest-timeout>=2.1", "timm>=1.0", "selenium>=4.11"],
        # rs3d-demo's web page (Gradio 6: the theme is given to launch())
        "demo": ["gradio>=6"],
        # TRAIN.LOGGERS wandb (Weights & Biases)
        "trackers": ["wandb>=0.21"],
    },
    entry_points={"console_scripts": [f"{name}=rs3d.commands.{module}:console_main"
                                      for name, module in COMMANDS.items()]},
    classifiers=[
        "License :: OSI Approved :: Apache Software License",
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
