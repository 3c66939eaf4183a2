"""Behaviour cloning baseline: regress the action chunk directly (L1), same encoder as the generative policies."""
