"""Tiny model configurations shared by the gan plugin's tests."""

#: A tiny voxel GAN at 16^3 (about 60k parameters).
TINY_VOXEL = {"resolution": 16, "latent_dim": 16, "gen_channels": [32, 16], "disc_channels": [8, 16, 32],
              "disc_feat": 32, "betas": [0.5, 0.9]}
#: A tiny point GAN of 128 points.
TINY_POINTS = {"num_points": 128, "latent_dim": 16, "gen_hidden": [64, 128], "disc_hidden": [32, 64],
               "disc_feat": 64, "betas": [0.5, 0.9]}
#: Class names of geomgen.testing.generative.ToyShapes.
TOY_CLASSES = {"num_classes": 2, "categories": ["box", "sphere"]}
