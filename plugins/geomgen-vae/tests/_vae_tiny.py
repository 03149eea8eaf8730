"""Tiny model configurations shared by the vae plugin's tests."""

#: A tiny voxel VAE at 16^3.
TINY_VOXEL = {"resolution": 16, "latent_dim": 16, "enc_channels": [8, 16, 16], "enc_feat": 64,
              "dec_channels": [16, 16, 8]}
#: A tiny point VAE of 128 points.
TINY_POINTS = {"num_points": 128, "latent_dim": 16, "enc_hidden": [32, 64], "enc_feat": 64, "dec_hidden": [64, 128]}
#: Class names of geomgen.testing.generative.ToyShapes.
TOY_CLASSES = {"num_classes": 2, "categories": ["box", "sphere"]}
