"""rs3d: 3D ResNet-RS video classification in PyTorch."""

from setuptools import find_packages, setup

setup(
    name="rs3d",
    version="0.1.0",
    description="3D ResNet-RS video classification with temporal scaling knobs, and fair 3D ResNet baselines",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["rs3d", "rs3d.*"]),
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
    ],
    extras_require={"test": ["pytest>=8", "pytest-timeout>=2.1", "timm>=1.0"]},
    entry_points={"console_scripts": ["rs3d-predict=rs3d.inference.cli:console_main"]},
    classifiers=[
        "License :: OSI Approved :: Apache Software License",
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
