"""The GAN's config: its defaults are the `default` preset; `smoke`, `openclipart`, `fashion` and `monet` change keys.

Every key can be changed from the command line, e.g. `--set data.categories="Animals & Nature,Flags"` or
`--set data.source=fashion_mnist --set model.conditional=true`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from common.art_config import ArtDataConfig as DataConfig
from common.art_config import FeatureNetConfig
from common.config import Expected, Preset, TuneConfig, bounded, choice


@dataclass
class ModelConfig:
    # Length of the noise vector, drawn from N(0, 1) everywhere. The truncation trick (noise resampled inside +-t),
    # tried on seven kept generators (six screening runs and the benchmark's, test FID against the same floor): t=1.5
    # moved FID by -10% to +14% and cost 0.05-0.10 of recall; t=1.0 and 0.7 were worse in all seven: not used.
    latent_dim: int = 128
    # Generator: filters at each side (4x4 up to image_size). Six-epoch runs of the default preset (one each),
    # FID/floor after epoch 6: (192, 96, 48, 24) 11.6, with class_norm 10.9, (256, 128, 64, 32) with class_norm 9.3
    # (17% more time per step), (384, 192, 96, 48) 11.0 (44% more). Wider discriminators cost 2.6x per step. Two
    # 3x3 convolutions after each upsampling instead of one (full default preset with train.keep_best, one run):
    # FID/floor 5.48, recall 0.444, 11% more training time, against 5.45 and 0.422 (gan.json at 690f4bc): not kept.
    # FastGAN's skip-layer excitation (Liu et al., 2021: the 16x16 and 32x32 maps gated per channel by the 4x4 and
    # 8x8 ones, pooled to 4x4, a 4x4 convolution, leaky ReLU, 1x1 convolution, sigmoid), one run on the Xeon,
    # validation FID/floor after epochs 1-5: 15.6, 10.6, 6.66, 7.21, 5.55, against 12.6, 9.41, 7.75, 7.92, 6.88 for
    # gan_adam_beta1_0.5.json's pictured run (seed 44) and 14.1, 11.8, 10.6, 7.5, 5.8 for an earlier one; 61 ms a
    # step against 50 (21% more, measured side by side): within the runs' spread and slower, not kept. Nor mixed
    # precision (keras "mixed_bfloat16", this Xeon having AMX and AVX-512 BF16 units; the outputs cast back to
    # float32): 49 ms a step against 52 over 300 steps, 6%: not kept.
    g_filters: tuple[int, ...] = (256, 128, 64, 32)
    # Discriminator: filters of each block, each halving the side. ProGAN's minibatch standard deviation (the batch's
    # mean feature spread as one more channel before the score, meant to reward varied batches), one run on the Xeon:
    # test FID/floor 5.72, precision 0.864, recall 0.407 (kept epoch 9), against 4.48-6.45 and recall 0.415-0.543 for
    # four runs of the default there (floor over 10 draws): no gain, not kept. A discriminator on pretrained features
    # (Projected GAN, Sauer et al., 2021): EfficientNet-Lite0's ImageNet features (the classifier's wheel) of the
    # images resized to 64x64, at strides 4, 8, 16 and 32, frozen, each through a fixed random 1x1 projection into a
    # small spectral-norm head with its own class projection. One run each on the Xeon, validation FID/floor after
    # epochs 1-5: instead of this discriminator (without the decoder), 32.4, 23.7, 17.9, 15.8, 13.0, the class hardly
    # steering (every row of the grid the same picture), 90 ms a step; beside it, both hinge losses summed (the
    # vision-aided GAN of Kumari et al., 2022), 24.2, 9.2, 8.0, 7.2, 6.3 at 111 ms a step; gan.json's run 14.1, 11.8,
    # 10.6, 7.5, 5.8 at 49 ms. No better per epoch by epoch 5 and 2.3x slower per step: not kept.
    d_filters: tuple[int, ...] = (32, 64, 128)
    # A self-attention block (SAGAN, Zhang et al., 2019) in the generator and the discriminator where their maps have
    # this side (0: none), so that distant parts of an image can agree on one shape. At 16, screening runs of 23 epochs
    # against gan.json's runs of the same seeds (at 0c4c0bd): train.seed=44: validation FID/floor 4.05 after epoch 6
    # (7.06 without), lowest at epoch 19 (2.19, against 3.21), test 3.77, precision 0.868, recall 0.581, against 4.78,
    # 0.852, 0.499, lower than any other 23-epoch run recorded here; the faces of the grid have eyes and mouths, each
    # noise its own; train.seed=43: 4.47 after epoch 6 (8.7 without), lowest at epoch 18 (2.81, against 2.65), test
    # 5.00, 0.862, 0.473, against 4.41, 0.849, 0.516. train.seed=42: lowest at epoch 17 (2.60), test 4.78, 0.845, 0.579,
    # against 4.92, 0.876, 0.391. Three seeds: 4.52 against gan.json's 4.70 (4% lower, within the 0.2-0.6 spread between
    # seeds), precision 0.858 against 0.859, recall 0.544 against 0.469: more coverage in every seed. One-epoch runs of
    # 600 steps side by side, alternating (load average 1.6-1.9): 55 and 61 ms a step against 52 and 57 without (7%
    # more); with keys and values max-pooled to 8x8, 53 ms; the generator's block alone, 53 ms. So 23 epochs would take
    # about 1,240 s against the 1,200 s goal; off until a benchmark of three seeds measures it with the epochs fitted.
    attention_side: int = bounded(0, 0)
    loss: str = choice("hinge", ("hinge", "nonsaturating"))
    spectral_norm: bool = True  # spectral normalization on every discriminator layer
    label_smoothing: float = bounded(0.0, 0.0, 0.5)  # nonsaturating loss: real targets are 1 - label_smoothing
    # The generator weights' moving average (what samples). 0.9998 (a half-life of 3.5 epochs instead of 0.7), one
    # screening run of the default preset: validation FID smoother from epoch to epoch, test FID/floor 4.38, precision
    # 0.879, recall 0.535 (kept epoch 11), against 4.13 in gan.json at 4fdf613: not kept. On that generator, BigGAN's
    # standing statistics (its batch norms' statistics recomputed from its own activations, 500 batches) did not help
    # either: 4.63 with batches of 8 (training's), 4.43 of 32, 4.40 of 128, against 4.38 as trained.
    ema_decay: float = bounded(0.999, 0.0, 1.0, inclusive=False)
    # Class-conditional generator and projection discriminator (labelled data only). Unconditional (one screening run,
    # train.seed=43, stopped after 16 epochs): validation FID/floor 23.5, 21.3, 18.2, 15.6, 15.0, 14.1, 12.4, 11.3,
    # 10.9, 10.7, 9.95, 10.3, 10.9, 10.7, 10.4, 10.0, against 14.1, 13.3, 9.0, 9.1, 11.9, 8.7, 6.5, 4.4, 3.8, 3.7,
    # 3.3, 3.1, 2.96, 2.65, 2.87, 2.95 for gan.json's seed-43 run (at 0c4c0bd): on 98 subcategories of about 27
    # emoji each, the run without the class stayed three times as far from the held-out art.
    conditional: bool = True
    # Conditional only: every batch norm of the generator scales and shifts per class (BigGAN's conditional batch
    # norm), so the class acts at every resolution, not only through the input. Without the class head below
    # (class_loss_weight 0) it did not suffice: FID/floor 16.5 after six epochs against 10.9 with it.
    # Not kept: the noise acting there too (BigGAN's hierarchical latent: each scale and shift plus a linear map of
    # all of the noise, zero at first), screening runs of 23 epochs against gan.json's runs of the same seeds (at
    # 0c4c0bd): train.seed=43: validation FID/floor lowest at epoch 19 (3.57), test 5.68, precision 0.856, recall
    # 0.637, against 4.41, 0.849, 0.516 (validation 2.65); train.seed=44: 2.86 (epoch 15), test 4.34, 0.832, 0.593,
    # against 4.78, 0.852, 0.499 (3.21). The rows of the grid vary with the noise, but in blobs no more recognisable;
    # recall up by 0.11, FID/floor 5.01 against 4.60 on the two seeds. Truncating its noise (resampled inside +-2,
    # 1.5, 1) gave 4.26, 4.26, 6.50 and 5.53, 5.60, 6.84.
    class_norm: bool = True
    # Conditional only: the discriminator also classifies real images (an auxiliary head, cross-entropy), and the
    # generator is also trained to make that head name the class it was asked for (AC-GAN), times this weight
    # (0: the projection alone). The FID feature network named the asked category in 23-36% of the images of three
    # generators trained without it. The default preset (with train.decay_from=0.5), one run each, FID/floor,
    # precision, recall, asked category named: weight 1.0: 7.19, 0.879, 0.366, 63% (after 6 epochs); 0.5: 7.48, 0.914,
    # 0.406, 57%; 0.3: 8.22, 0.917, 0.374, 48%. At 0.5 and 1.0 the face row draws one face whatever the noise.
    # With the self-supervised discriminator and subcategories, 0.2 (one screening run): 4.33, 0.839, 0.573 (kept
    # epoch 10), against 4.13, 0.879, 0.505 at 0.5 (gan.json at 4fdf613): not kept. With both vendors' art and 28
    # epochs, 0.2 (one screening run): 3.71, 0.859, 0.554 (kept epoch 23), against 3.26, 0.905, 0.418 (gan.json at
    # 5a08b05) and 3.74, 0.880, 0.477 in a screening run at 0.5: more recall, no lower FID; not kept.
    class_loss_weight: float = bounded(0.5, 0.0)
    # TAC-GAN (Gong et al., 2019): a twin class head learns the generated images' classes and the generator's class
    # loss subtracts its cross-entropy, cancelling the AC-GAN's reward for the most recognisable picture (one face
    # whatever the noise). The default preset with it (16 epochs, one run): FID/floor 7.76 against 7.35 without; the
    # face row draws a different face per noise, but the category hardly steers any more (a column keeps one
    # picture across the rows). Off by default.
    twin_class_head: bool = False
    # Not kept either: transitional training (Shahbazi et al., 2022: a conditional GAN on little data collapses within
    # each class, so the class is faded in after unconditional steps), one screening run each, train.seed=43: the
    # discriminator's projection and the generator's class loss scaled from 0 to 1 over steps 10-30% of the run:
    # validation FID/floor lowest at epoch 17 (3.76), test 5.13, precision 0.874, recall 0.479; the generator's class
    # embedding and class norms faded in as well, over 5-15%: lowest at epoch 12 (2.85), test 4.88, 0.866, 0.450;
    # against 4.41, 0.849, 0.516 for gan.json's seed-43 run (at 0c4c0bd). The rows of the grid varied more with the
    # noise, but no more of the held-out art was covered.
    # LeCam (Tseng et al., 2021): the discriminator's loss adds this weight x the squared distance of its real scores
    # above a moving average of its fake ones and of its fake scores below that of its real ones, meant to keep it from
    # running away on small data (0: off). Six-epoch runs of the default preset (one each, one day), FID/floor after
    # epoch 6: 0.3: 7.28; 0: 13.0 (9.3 on another day). But the full default preset with 0.3 (the benchmark, one run):
    # 6.87 after epoch 7, then rising while the rates decayed to 10.18 at the end, against 7.35 without it; off by
    # default. Also tried in six-epoch runs, not kept: the class weight decaying with the rates, 11.2; MSGAN's
    # mode-seeking term (Mao et al., 2019) at weight 1: 17.1, more varied than the real images. With 23 epochs
    # (screening runs, train.seed=43, against 4.41, 0.849, 0.516 and validation FID/floor lowest at 2.65 for gan.json's
    # seed-43 run at 0c4c0bd; the term divides the weight by the mean distance between two images of one class over that
    # of their noise): weight 0.1: validation 3.91 after epoch 8, lowest at epoch 16 (3.06), 4.21 at the end, test 6.11,
    # precision 0.848, recall 0.562, the grid's rows varied with the noise but in less coherent shapes; weight 0.03:
    # lowest at epoch 16 (2.55), test 4.84, 0.833, 0.544: not added.
    lecam_weight: float = bounded(0.0, 0.0)
    # Does the discriminator overfit at all? APA (adaptive pseudo augmentation, Jiang et al., 2021: generated images
    # shown to it as real ones while the moving mean sign of its real scores is above 0.6), tried on the default
    # preset, never engaged in 9 epochs: that mean stayed at or under 0.6 (mean real scores 0.06-0.28 an epoch). With
    # DiffAugment and the decoder it does not overfit by APA's measure, so APA was not added.
    # FastGAN's self-supervised discriminator (Liu et al., 2021): a small decoder redraws each real image the
    # discriminator sees from its last feature map, and the discriminator's loss adds this weight x the mean absolute
    # pixel error, so its features must describe the whole image, not only what tells real from fake (0: off). Screening
    # runs of the default preset with it (one each): FID/floor 4.56, precision 0.884, recall 0.613 (kept epoch 14,
    # 700 s); with 20 epochs 3.93, 0.884, 0.454 (kept epoch 8); against 5.29, 0.817, 0.519 without it (gan.json at
    # e8d45ef) and 4.22 in a screening run. With R1 beside it as well (Mescheder et al., 2018; weight 0.05 on the
    # augmented real images): 5.49, recall 0.551, 810 s: not kept. The benchmark with it (Twemoji alone, 16 epochs, at
    # 4fdf613): 4.13, precision 0.879, recall 0.505, 623 s, kept epoch 10. Screening runs of 23 epochs (train.seed=43,
    # against 4.41, 0.849, 0.516 and validation FID/floor lowest at 2.65 for gan.json's seed-43 run at 0c4c0bd): weight
    # 3.0: validation still falling to epoch 21 (2.45, kept), test 4.41, 0.855, 0.527, no better; with train.seed=44:
    # validation lowest at epoch 19 (2.24), test 4.10, 0.821, 0.516, against 4.78, 0.852, 0.499 (validation 3.21) for
    # gan.json's seed-44 run; with train.seed=42: validation lowest at epoch 17 (2.51), test 4.55, 0.863, 0.519, against
    # 4.92, 0.876, 0.391. Three seeds: test 4.35 (4.55, 4.41, 4.10) against 4.70 (7% lower, within the 0.2-0.6 spread
    # between seeds), recall 0.521 against 0.469. Then `make project=gan bench` with 3.0 (gan_reconstruction_3.json at
    # 385f927): 4.64 (5.25, 4.55, 4.11), precision 0.856, recall 0.509, kept epochs 23, 16, 15, against gan.json's 4.70,
    # 0.859, 0.469: 1% lower, far inside the spread between seeds. It trained in 1,303 s (1,263-1,324) against 1,160,
    # the machine slower that day (47-57 ms a step against 46-52), not the weight: 600 steps side by side took 56 and
    # 54 ms a step with 1.0, 51 and 52 with 3.0. Over the six runs with 3.0, test 4.50 and recall 0.515 against 4.70 and
    # 0.469: a lead too small to tell from the seeds, so the default stays 1.0 and gan.json its benchmark. A second
    # decoder at weight 1.0 redrawing the image from the 8x8 map before the last (FastGAN's second decoder reads finer
    # features than the first): validation lowest at 2.84 (epoch 16), test 4.75, 0.854, 0.522: not kept.
    reconstruction_weight: float = bounded(1.0, 0.0)


@dataclass
class GanTrainConfig:
    # Epochs of `steps_per_epoch` steps. With the (256, 128, 64, 32) generator, 16 trained in 711 s (FID/floor 7.35); 22
    # (1,085 s) reached 7.58 after epoch 15 and rose to 9.14 by the end while the rates decayed (one run each). With
    # subcategories and train.keep_best, 24 epochs (937 s, one run): FID/floor 5.21, precision 0.898, recall 0.591, its
    # last epoch kept (validation FID still falling slowly), against 5.29, 0.817, 0.519 in 628 s with 16 (gan.json at
    # e8d45ef; all three before model.reconstruction_weight); a second 24-epoch run (train.seed=43): 5.33, 0.874, 0.524,
    # epoch 14 kept. No gain worth 50% more time on Twemoji alone; with both vendors' art (twice the images) validation
    # FID kept falling to epoch 23 of 28: see `GanConfig.data`. 28 epochs trained in 1,375 s on the Intel Xeon of an
    # earlier benchmark (the goal is 1,200). With both vendors, 16 (one run, train.seed=42, 929 s there): test FID
    # 2.646, FID/floor 7.32, recall 0.380 (kept epoch 13, validation FID/floor 3.63), against test FIDs of 1.62-2.33 in
    # four 28-epoch runs there: not kept. With one thread per op (`intra_op_threads`) 28 epochs took 1,364-1,407 s on
    # the AMD EPYC (gan_28_epochs.json, 49.5 s an epoch: 45 ms a step, 2.5 s of validation FID, grid and backup at its
    # end); each run's validation FID/floor first came within 0.2 of its best at epoch 16, 12 and 15 (best at 16, 21,
    # 27). 23 epochs, the benchmark's three seeds (gan.json at 0c4c0bd): 1,160 s (1,154, 1,200, 1,127; 46-52 ms a step
    # as the machine varied), FID/floor 4.70 (4.92, 4.41, 4.78), precision 0.859, recall 0.469 (kept epochs 13, 14, 17),
    # against 4.97 (4.41, 5.80, 4.69), 0.865, 0.490 with 28: the images no worse within the runs' spread.
    epochs: int = bounded(23, 1)
    steps_per_epoch: int = bounded(1000, 0)  # discriminator+generator steps per epoch (0 = one pass over the data)
    # Small batches, many steps: on a CPU a step costs about in proportion to its batch, and at the same images
    # seen (and about the same time) batch 8 reached FID/floor 17.4, 16 23.7, 32 33.8 after 24,000 images (one
    # run each; two runs of one setting differed by a third there, so only 8-or-16 against 32 is clear). Batch 4 with
    # 2,000 steps an epoch (the same images per epoch), on the Xeon: 37 ms a step against 50, so an epoch takes 1.5x
    # as long; validation FID/floor by epoch 15.0, 6.80, 5.66, 5.26, 5.06, 4.82 (28-epoch schedule, stopped after 6)
    # and, with 19 epochs (about 28 epochs' time at batch 8), 12.6, 8.35, 7.32, 5.67, 5.76, 5.00, 4.64, 4.34, 5.16,
    # 4.90, 4.30, 4.40, 4.14 (stopped after 13), against gan_adam_beta1_0.5.json's pictured run 12.6, 9.41, 7.75,
    # 7.92, 6.88, 6.20, 4.87, 4.10, 3.72, 3.69, 3.24, 3.12, 2.81: ahead for five epochs, behind from the eighth on: not
    # kept.
    batch_size: int = bounded(8, 2)
    # Two time-scale rates (generator 1e-4, discriminator 4e-4, as BigGAN), one run with train.keep_best: FID/floor
    # 7.54, recall 0.298 (kept epoch 5), against 5.45 and 0.422 with 2e-4 for both (gan.json at 690f4bc): not kept.
    # 4e-4 for both (one screening run, train.seed=43, on the AMD EPYC of gan.json with its feature network):
    # validation FID/floor 7.72 after epoch 2, 2.60 at the end (kept epoch 28), but test 4.40, precision 0.850,
    # recall 0.465, against 4.35, 0.860, 0.487 for gan_default_threads.json's seed-43 run: not kept.
    g_learning_rate: float = bounded(2e-4, 0.0, inclusive=False)  # Adam, generator
    d_learning_rate: float = bounded(2e-4, 0.0, inclusive=False)  # Adam, discriminator
    # Both rates stay constant for this share of the steps, then fall to 0 along a half cosine (1.0: constant). At a
    # constant rate FID/floor went from 6.9 after epoch 8 up to 10.0 after 16; with 0.5 it ended at 7.2 (one run each).
    # With both vendors' art and 28 epochs (screening runs on an Intel Xeon, 1,330-1,410 s there): 0.25: validation
    # FID/floor flat at 3.8-4.0 from epoch 11 on, test 6.75, precision 0.882, recall 0.355 (kept epoch 13); 0.75:
    # validation 2.12 at epoch 24 (kept), test 4.08, 0.868, 0.503; against 3.26, 0.905, 0.418 at 0.5 (gan.json) and
    # 5.82, 0.864, 0.493 (kept epoch 17) for 0.5 again on the Xeon: one setting spans 3.26-5.82, so single runs
    # cannot rank these. Three seeds each on the Xeon (train.seed 42, 43, 44; test FID, as the floor's draw follows
    # the seed): 0.75: 1.637, 2.029, 1.607 (mean 1.758; FID/floor 4.08, 5.86, 4.62); 0.5: 2.331, 1.692, 1.791 (mean
    # 1.938; 5.82, 4.88, 5.15). 9% lower on average, within the runs' spread (sd 0.2-0.3): kept at 0.5.
    decay_from: float = bounded(0.5, 0.0, 1.0)
    # Adam's first-moment decay (0.5 or 0.0 is usual for GANs). 0.0 (BigGAN's, StyleGAN2's), the benchmark's three seeds
    # (gan_default_threads.json, an AMD EPYC): test FID/floor 5.33, 4.35, 4.68 (mean 4.79), precision 0.856, recall
    # 0.466, against 5.67, 6.73, 5.74 (mean 6.05), 0.887, 0.402 at 0.5 (gan_adam_beta1_0.5.json, an Intel Xeon, the
    # feature network trained there: held-out accuracy 0.812 against 0.817). Every seed lower, but most of that is the
    # machine and the retrained feature network, not beta_1: seed 43 at 0.5 rerun on the EPYC with gan.json's feature
    # network scored 4.51, precision 0.866, recall 0.437 (kept epoch 25, 1,531 s), against 4.35, 0.860, 0.487 at 0.0
    # there (and 6.73 on the Xeon); seed 42 on the Xeon: 5.42, recall 0.501 at 0.0 against 5.67, 0.421 at 0.5. Both
    # pairs favour 0.0 by 3-5% in FID/floor and 0.05-0.08 in recall, within the runs' spread: 0.0 is kept for the
    # recall, not as a measured step towards the goal.
    beta_1: float = bounded(0.0, 0.0, 1.0)
    beta_2: float = bounded(0.99, 0.0, 1.0)
    # DiffAugment on real and fake images before D ("" = none). Without cutout (both vendors, screening run stopped
    # at epoch 13): validation FID/floor 6.51 after epoch 4 against 10.45 in gan.json's run, but 3.81 after epoch 13
    # against 2.70: faster at first, then behind.
    diff_augment: str = "color,translation,cutout"
    seed: int = 42  # seeds Python, NumPy and TensorFlow, and the fixed noise of the sample grids
    # Generated images (and real training images, for the floor) per FID. The same generator scored on six other
    # noise draws of 1,000 (four screening runs, both vendors): test FID/floor standard deviation 0.13-0.26 (3-6%),
    # so the 3.26-5.82 spread of the default between runs is training, not the generated draw. The floor's draw
    # moves more: ten seeds' 1,000 of the 2,680 training images against the 744 test ones gave floors of 0.294-0.511
    # (sd 0.069; over 100 draws: mean 0.386, sd 0.047, 12%); it followed train.seed then, so ratios of runs with
    # different seeds differed by their floors too (0.401 for seed 42, 0.346 for 43). Hence `fid_floor_draws`.
    fid_samples: int = bounded(1000, 16)
    # The floor is the mean over this many draws of `fid_samples` training images, of one seed for every run
    # (common/generative_metrics.py `real_floor`): the means of 10 draws of ten seeds: 0.359-0.403, sd 0.015 (4%,
    # against one draw's 12%); `fid_floor_sd` in the report is the spread of one draw.
    fid_floor_draws: int = bounded(10, 1)
    collapse_ratio: float = bounded(0.5, 0.0, 1.0)  # warn when sample diversity falls below this share of its best
    # model.keras is the EMA generator of the epoch with the lowest FID against the validation split's real images
    # (the test split stays evaluate's), not the last one: FID/floor wavers by a third between epochs, and runs
    # ended above their best epoch (7.35 after epoch 16 against 6.93 after 13 in gan.json before this). The first
    # benchmark with it kept epoch 10 (test FID/floor 5.45, with categories; gan.json at 690f4bc).
    keep_best: bool = True
    # TensorFlow's threads per op (0: its default, one per core); set before TensorFlow's first op, for the whole
    # command (common/runtime.py `set_op_threads`). On 2 cores (an AMD EPYC, two pairs of 2-epoch runs of the
    # default preset, train.seed=43, alternating, load average 1.1-1.9): 1 thread ran an epoch of 1,000 steps in
    # 47-49 s against 53-54 s with 2 (a step of 8 images is many small ops: splitting each costs more than it
    # saves, while independent ops still run side by side), and left no 40-second pause at the end of `fit`
    # (train_seconds 100-105 against 146-147). `python -m benchmarks.gan_threads` (gan_threads.json): 102.7 s against
    # 128.9 s. The benchmark with it (gan_28_epochs.json, three seeds): 1,386 s against 1,598 with 2 threads
    # (gan_default_threads.json), FID/floor 4.97 against 4.79, within the runs' spread (sd 0.4-0.6).
    intra_op_threads: int = bounded(1, 0)


@dataclass
class GanConfig:
    """The default preset: a GAN conditional on the subcategories of Twemoji and Noto emoji at 32x32: DiffAugment,
    hinge loss, SN, a self-supervised discriminator, EMA."""

    # Conditional on the emoji's 98 subcategories (categories.json's, e.g. "Animals & Nature: animal-mammal"), not on
    # their 9 categories (`data.labels=category`). Without train.keep_best, three runs of the default preset with
    # subcategories (same seed; CPU threads make each run its own): FID/floor 3.90, 7.01, 8.72, recall 0.586, 0.422,
    # 0.484, against 7.35 and 6.11, recall 0.347 and 0.363 with categories: more coverage each time, FID within the
    # runs' spread. With train.keep_best, categories: 5.45 (recall 0.422; gan.json at 690f4bc), and 5.58 and 5.48
    # with the changes noted at `vendors` below and at `g_filters`; subcategories: 4.22 (recall 0.489, its last
    # epoch kept, validation FID still falling there) and 5.29 (recall 0.519; gan.json at e8d45ef; these runs were
    # before model.reconstruction_weight). Does the class steer? The feature network named the asked class's
    # category in 46% of 40 images per class (mean over the 98; 31 classes under 20%) for the 4.22 run's generator,
    # and in 46% (2 of 9 under 20%) for the both-vendors category one.
    # Twemoji alone. With both vendors' art (`data.vendors=twitter,google`: 2,680 training images, twice as many, and
    # held-out images of both), one run of the default preset with `train.keep_best`: FID/floor 5.58, precision
    # 0.880, recall 0.375 (kept epoch 10), against 5.45, 0.895, 0.422 with Twemoji alone (gan.json at 690f4bc): no gain.
    # With the self-supervised discriminator, one screening run with both vendors: 3.86, 0.878, 0.516 (kept epoch 13,
    # 508 s), against 4.13 (gan.json at 4fdf613); its validation FID kept falling to epoch 13 and stayed there instead
    # of rising after epoch 10 as the three Twemoji-only runs with it did. With 28 epochs (856 s, one screening run):
    # 3.74, 0.880, 0.477, validation FID/floor still falling to epoch 23 (kept), flat after: both vendors and 28 epochs
    # became the default. Its benchmark (gan.json at 5a08b05, an AMD EPYC, the floor of one draw): 3.26, 0.905, 0.418,
    # 879 s, the last epoch kept (validation FID/floor still falling: 2.15), against 4.13 with Twemoji alone. The test
    # split holds both vendors' held-out art. Re-measured with the floor over 10 draws (gan.json, an Intel Xeon): 4.49,
    # 0.898, 0.415, 1,375 s, epoch 11 of 28 kept (validation FID/floor lowest at epochs 10-12, then 2.9-4.1).
    # OpenMoji's art as well (`data.vendors=twitter,google,openmoji`: 4,020 training images; one screening run,
    # train.seed=43, on the AMD EPYC of gan.json with its feature network): validation FID/floor lowest at epoch 10
    # (6.06, kept), 6.5-10 after; test FID 3.70 against the two vendors' held-out emoji (9.78x gan.json's floor, against
    # 4.35 for gan_default_threads.json's seed-43 run) and 10.04x against all three vendors' (precision 0.903, recall
    # 0.311); the grid's shapes smeared between the outlined and the flat styles. Not kept. Nor a class per subcategory
    # and vendor (`data.labels=subcategory_vendor`, 196 classes: the generator told whose style to draw; one screening
    # run, train.seed=43, paired the same way, CI's tests running beside it): validation FID/floor lowest at epoch 15
    # (3.23, kept), 4.5-5.3 after; test 4.92, precision 0.854, recall 0.427, against 4.35, 0.860, 0.487. Nor real
    # images unflipped (`data.flip=false`: mirrored flags, letters and arrows are not in the held-out art; the
    # feature network learned with flips; one screening run of 23 epochs, train.seed=43, CI's tests beside it):
    # validation FID/floor lowest at epoch 11 (3.28, kept), 3.3-3.9 after; test 5.66, precision 0.887, recall 0.395,
    # against 4.41, 0.849, 0.516 for gan.json's seed-43 run (at 0c4c0bd): the flips' doubled data is worth more.
    data: DataConfig = field(default_factory=lambda: DataConfig(labels="subcategory", vendors=("twitter", "google")))
    model: ModelConfig = field(default_factory=ModelConfig)
    train: GanTrainConfig = field(default_factory=GanTrainConfig)
    features: FeatureNetConfig = field(default_factory=FeatureNetConfig)
    # `tune`: trials of 4 x 1,000 steps in the GAN's own loop, scored by FID (search space: project.py). Hyperband
    # would carry Keras weights between rounds, which a trial of this loop does not leave: random, bayesian, grid.
    tune: TuneConfig = field(default_factory=lambda: TuneConfig(algorithm="random", max_epochs=4, max_trials=8))


CONFIG = GanConfig
PRESETS = {
    "smoke": Preset(
        "check that everything runs: 400 emoji at 16x16, tiny networks, 2 epochs of 300 steps",
        # A ceiling that only catches a broken run: an untrained generator's grey noise scores far above it.
        Expected("fid_to_floor_ratio", 20.0, 2.0, higher_is_better=False),
        changes={
            "data.vendors": ("twitter",),
            "data.max_images": 400,
            "data.labels": "category",  # 400 emoji are too few for 98 classes
            "data.image_size": 16,
            "model.latent_dim": 16,
            "model.g_filters": (32, 16, 8),
            "model.d_filters": (16, 32),
            "train.epochs": 2,
            "train.steps_per_epoch": 300,
            "train.batch_size": 16,
            "train.g_learning_rate": 2e-3,  # fast enough to leave grey noise behind in 80 steps
            "train.d_learning_rate": 2e-3,
            "train.fid_samples": 200,
            "features.epochs": 3,
            "features.filters": (16, 32),
            "tune.max_epochs": 1,
            "tune.max_trials": 2,
        },
    ),
    "default": Preset(
        "GAN on Twemoji and Noto emoji at 32x32 by subcategory: DiffAugment, hinge, SN, class head, "
        "self-supervised D, EMA, 23 x 1,000 steps of 8 images",
        # The goal: FID to held-out emoji at most twice the floor; measured 4.70 (benchmarks/results/gan.json).
        Expected("fid_to_floor_ratio", 2.0, 20.0, higher_is_better=False),
    ),
    "openclipart": Preset(
        "openclipart-png clip art at 64x64 (8,121 PNGs; about 3 minutes to decode the first time), unconditional",
        # Not measured with this preset.
        Expected("fid_to_floor_ratio", 3.0, 25.0, higher_is_better=False),
        changes={
            "data.source": "openclipart",
            "data.image_size": 64,
            "model.conditional": False,
            "model.g_filters": (256, 128, 64, 32, 16),
            "model.d_filters": (32, 64, 128, 256),
        },
    ),
    "fashion": Preset(
        "class-conditional GAN on Fashion-MNIST (70,000 images, 10 classes, at 32x32 RGB)",
        # Not measured with this preset.
        Expected("fid_to_floor_ratio", 2.0, 25.0, higher_is_better=False),
        changes={"data.source": "fashion_mnist", "data.flip": False},
    ),
    "monet": Preset(
        "Monet's paintings (tfds cycle_gan/monet2photo trainA, 1,072 images, downloaded once), 100 epochs",
        # Not measured (for a GPU or patience).
        Expected("fid_to_floor_ratio", 3.0, 140.0, higher_is_better=False),
        changes={"data.source": "monet", "data.online": True, "model.conditional": False, "train.epochs": 100},
    ),
}
DEFAULT_PRESET = "default"
COMMANDS = {"generate": "write a grid of N (default 16) new images to <output>/generated.png: generate [N] [SEED]"}
