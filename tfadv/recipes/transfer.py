"""Recipes of transfer generators: trained on surrogate classifiers, judged on classifiers they never see.

All are the zoo's thresholded U-Net (approach B) at L-inf 0.1 unless named _l2 (L2 2.4), trained on
train[:90%] with input diversity (p 0.5), and differ in their loss (the literature's three):

* ``gap``: GAP's logits loss (cross-entropy towards the least likely class on the clean image);
* ``cda``: CDA's relativistic cross-entropy (``tfadv.losses``: ``relativistic_ce``);
* ``ltp``: LTP's mid-layer feature separation (``tfadv.trainers.transfer``), at the surrogate's middle stage.

The single surrogate is ``fashion_mnist_small_cnn``; the ensemble adds ``fashion_mnist_mlp``, another family
(dense layers, no convolution), and leaves four classifiers unseen (cnn_gap, cnn_wide, mixer, resnet20).

How the loss was chosen: on held-out images (train[90%:92%], 1,200), by the fooling rate on
``fashion_mnist_cnn_gap``, a classifier no generator trains on, after the recipes' 600 steps: GAP 65.4%, CDA
82.4%, LTP 82.4%; the tie was broken by the fooling rate on the surrogate itself (CDA 94.4%, LTP 58.7%), which
looks at no other model. The ensemble and L2 generators use the chosen loss, CDA's. The test split is measured
once, at the end (tools/transfer.py); these figures are in runs that ``tfadv-transfer --split='train[90%:92%]'``
reproduces.
"""

from tfadv.recipes.registry import recipe
from tfadv.schema import DataConfig, OptimizerConfig, PerturbationExperiment
from tfadv.targets import ENSEMBLE_SEPARATOR

SURROGATE, SECOND_SURROGATE = "fashion_mnist_small_cnn", "fashion_mnist_mlp"
# LTP's tap: each surrogate's middle layer (the CNN's 14 x 14 stage, the MLP's first hidden layer)
MIDDLE_LAYER = {SURROGATE: "stage1_0_relu", SECOND_SURROGATE: "dense0_relu"}


def _transfer_generator(loss: str, surrogates=(SURROGATE,), norm: str = "linf", eps: float = 0.1):
    return PerturbationExperiment(
        data=DataConfig(dataset="fashion_mnist", batch_size=128, augment=False),
        target=ENSEMBLE_SEPARATOR.join(surrogates),
        generator="unet", generator_kwargs={"depth": 2, "filters": 16},
        mode="thresholded", norm=norm, eps=eps, loss=loss,
        feature_layers=[MIDDLE_LAYER[s] for s in surrogates] if loss == "feature_separation" else [],
        input_diversity=0.5,
        optimizer=OptimizerConfig(name="adam", learning_rate=2e-3, warmup_epochs=0.1),
        epochs=4,
        steps_per_epoch=150,  # 600 steps of 128 images in all: sized to the 2-core CPU
    )


@recipe
def fashion_mnist_transfer_gap() -> PerturbationExperiment:
    """GAP's loss (least likely class), single surrogate, L-inf 0.1."""
    return _transfer_generator("least_likely")


@recipe
def fashion_mnist_transfer_cda() -> PerturbationExperiment:
    """CDA's relativistic cross-entropy, single surrogate, L-inf 0.1."""
    return _transfer_generator("relativistic_ce")


@recipe
def fashion_mnist_transfer_ltp() -> PerturbationExperiment:
    """LTP's mid-layer feature separation, single surrogate, L-inf 0.1."""
    return _transfer_generator("feature_separation")


@recipe
def fashion_mnist_transfer_cda_ensemble() -> PerturbationExperiment:
    """CDA's loss against the CNN + MLP ensemble, L-inf 0.1."""
    return _transfer_generator("relativistic_ce", (SURROGATE, SECOND_SURROGATE))


@recipe
def fashion_mnist_transfer_cda_l2() -> PerturbationExperiment:
    """CDA's loss, single surrogate, L2 2.4 (the zoo's L2 budget)."""
    return _transfer_generator("relativistic_ce", norm="l2", eps=2.4)


@recipe
def fashion_mnist_transfer_targeted() -> PerturbationExperiment:
    """Targeted transfer: every image towards class 8 (bag), cross-entropy to it, single surrogate, L-inf 0.1."""
    cfg = _transfer_generator("targeted")
    cfg.target_class = 8
    return cfg
