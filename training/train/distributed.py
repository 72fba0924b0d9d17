"""Multi-process training through torchrun, with the same `planllm train` command.

One process per device. torchrun sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT;
we join with the env:// rendezvous, gloo on the CPU and NCCL on GPUs. Without those variables the
trainer runs as a single process (world size 1) through the very same code.

Single node, 2 processes on the CPU (or 8 GPUs):

    torchrun --standalone --nproc_per_node 2 -m planllm_ros.cli train --config tabletop-tiny
    torchrun --standalone --nproc_per_node 8 -m planllm_ros.cli train --config crosstask-vicuna7b

Several nodes (run the same line on every node; NODE_RANK 0..N-1; HOST0 = the first node's
address, reachable from all nodes on PORT):

    torchrun --nnodes 2 --nproc_per_node 8 --node_rank $NODE_RANK \\
        --rdzv_backend c10d --rdzv_endpoint HOST0:PORT --rdzv_id RUN_NAME \\
        -m planllm_ros.cli train --config crosstask-vicuna7b --out /shared/fs/run1

`--out` must be a filesystem every node sees (rank 0 writes checkpoints and logs; every rank
reads the checkpoint on `--resume`). `train.batch_size` is per process: the effective batch is
batch_size x grad_accum x world size.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init(device: str | None = None) -> Context:
    """Join the torchrun process group if there is one; pick this process's device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() if device is None else device.startswith("cuda")
    if use_cuda:
        torch.cuda.set_device(local_rank)
        chosen = torch.device("cuda", local_rank)
    else:
        chosen = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo", init_method="env://",
                                rank=rank, world_size=world_size)
    return Context(rank, world_size, local_rank, chosen)


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: Context) -> None:
    if ctx.distributed:
        dist.barrier()


def all_reduce_sum(ctx: Context, values: torch.Tensor) -> torch.Tensor:
    """Element-wise sum over processes (a copy; float64 on the process's device)."""
    out = values.detach().to(ctx.device, torch.float64).clone()
    if ctx.distributed:
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out.cpu()


def all_gather_rows(ctx: Context, rows: torch.Tensor) -> torch.Tensor:
    """Concatenate every process's (n_i, ...) int64 tensor along dim 0, in rank order."""
    if not ctx.distributed:
        return rows
    rows = rows.to(ctx.device)
    sizes = [torch.zeros(1, dtype=torch.long, device=ctx.device) for _ in range(ctx.world_size)]
    dist.all_gather(sizes, torch.tensor([rows.shape[0]], device=ctx.device))
    longest = int(max(s.item() for s in sizes))
    padded = torch.zeros((longest, *rows.shape[1:]), dtype=rows.dtype, device=ctx.device)
    padded[: rows.shape[0]] = rows
    gathered = [torch.zeros_like(padded) for _ in range(ctx.world_size)]
    dist.all_gather(gathered, padded)
    return torch.cat([g[: int(s.item())] for g, s in zip(gathered, sizes)]).cpu()

