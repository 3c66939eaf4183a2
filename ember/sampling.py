"""The order ``ember train`` reads its windows in: a pure function of (seed, epoch), whatever the process count.

:class:`EpochSampler` is what makes ``--resume`` exact and N processes at ``--batch_size=B`` equal to one process
at ``N*B`` (docs/distributed.md); :func:`infinite_batches` runs a DataLoader over it epoch after epoch from any
step.
"""

from __future__ import annotations

import torch


class EpochSampler(torch.utils.data.Sampler[int]):
    """A random permutation per epoch, a pure function of (seed, epoch), that can start mid-epoch; under several
    processes, each rank's share of every *global* batch.

    What makes ``--resume`` exact: the batches after step s are the same whether or not the run stopped at s.
    What makes N processes equal to one: the permutation does not depend on the process count; global batch k is
    ``order[k*G:(k+1)*G]`` (G = per-process batch x processes) and rank r reads its r-th contiguous slice, so N
    processes at batch B see, step for step, the samples one process sees at batch N*B (DDP then averages the
    gradients of equal-sized slices: the gradient of the mean over the global batch). Positions are counted in
    samples of the global order, so a run can resume under another process count at the same global batch.
    With more than one process an epoch keeps whole global batches only (every rank steps the same number of
    times, or DDP would wait forever).
    """

    def __init__(self, size: int, seed: int, batch_size: int = 1, rank: int = 0, world_size: int = 1) -> None:
        self.size, self.seed = size, seed
        self.batch_size, self.rank, self.world_size = batch_size, rank, world_size
        self.epoch, self.start = 0, 0

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.world_size

    def set_position(self, epoch: int, start: int = 0) -> None:
        """``start``: the first sample of the epoch's global order still to read."""
        self.epoch, self.start = epoch, start

    def _indices(self) -> list[int]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.size, generator=g)[self.start :].tolist()
        if self.world_size == 1:
            return order
        whole = len(order) // self.global_batch * self.global_batch
        lo, hi = self.rank * self.batch_size, (self.rank + 1) * self.batch_size
        return [i for k in range(0, whole, self.global_batch) for i in order[k + lo : k + hi]]

    def __iter__(self):
        order = self._indices()
        self.start = 0
        return iter(order)

    def __len__(self) -> int:
        remaining = self.size - self.start
        if self.world_size == 1:
            return remaining
        return remaining // self.global_batch * self.batch_size


def infinite_batches(
    loader: torch.utils.data.DataLoader,
    sampler: EpochSampler,
    generator: torch.Generator,
    start_step: int,
    batches_per_epoch: int,
):
    """Batches forever from ``start_step`` on. The loader has its own generator (reseeded per epoch) because
    starting a DataLoader iterator draws a worker seed, and from the global RNG that draw would make a resumed
    run diverge from an uninterrupted one."""
    epoch, offset = divmod(start_step, max(1, batches_per_epoch))
    sampler.set_position(epoch, offset * sampler.global_batch)
    while True:
        generator.manual_seed(sampler.seed * 100_003 + epoch)
        yield from loader
        epoch += 1
        sampler.set_position(epoch)
