"""tfadv: generative adversarial perturbations and arbitrary style transfer (Keras 3 / TensorFlow)."""

from setuptools import find_packages, setup

setup(
    name="tfadv",
    version="0.1.0",
    description="Generative adversarial perturbations, universal perturbations and arbitrary style transfer "
                "in Keras 3 / TensorFlow, with a SavedModel zoo.",
    python_requires=">=3.11",  # hashlib.file_digest (tfadv.zoo)
    packages=find_packages(include=["tfadv", "tfadv.*"]) + ["tfadv_tools"],
    package_dir={"tfadv_tools": "tools"},
    install_requires=[
        "tensorflow>=2.16",
        "keras>=3.0",
        "tensorflow-datasets>=4.9",
        "importlib_resources",  # tensorflow-datasets 4.9.10 imports it without declaring it
        "numpy",
        "absl-py",
        "tensorboard",
    ],
    extras_require={
        "test": ["pytest>=7", "pytest-xdist>=3", "hypothesis>=6", "ruff>=0.6"],
        # tfadv.autoattack / tools/autoattack.py: AutoAttack from ART (multiprocess: imported by its AutoAttack;
        # scikit-learn and scipy: ART's own requirements, listed so the extra says what it brings)
        "eval": ["adversarial-robustness-toolbox==1.20.1", "multiprocess", "scikit-learn", "scipy"],
    },
    entry_points={
        "console_scripts": [
            "tfadv-train=tfadv_tools.train:run",
            "tfadv-evaluate=tfadv_tools.evaluate:run",
            "tfadv-export=tfadv_tools.export:run",
            "tfadv-stylize=tfadv_tools.stylize:run",
            "tfadv-attack=tfadv_tools.attack:run",
            "tfadv-autoattack=tfadv_tools.autoattack:run",
            "tfadv-security-curve=tfadv_tools.security_curve:run",
            "tfadv-defend=tfadv_tools.defend:run",
            "tfadv-transfer=tfadv_tools.transfer:run",
        ],
    },
)
