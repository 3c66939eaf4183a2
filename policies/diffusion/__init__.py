"""Diffusion Policy (Chi et al., 2023): a denoising 1-D temporal UNet over action chunks."""
