"""A deterministic PyTorch DistributedDataParallel job: a small MLP on seeded generated data, trained
on CPU by N workers that meet through gloo. It reads everything from the environment the way
``torchrun`` sets it (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``), so it runs unchanged
under ``torchrun --nnodes N`` and as a Strato job with ``instance_count: N, distribution: torch``.

Seeded everywhere that matters: the initial weights, the sampler's shuffle (``DistributedSampler`` with
a seed and ``set_epoch``) and a per-epoch generator, so a run resumed from a checkpoint sees the same
batches as one that never stopped. Rank 0 saves a checkpoint after every epoch (weights, optimizer
momentum, epoch) through ``strato.runtime.checkpoint()``; on a restart every rank loads it. Rank 0
saves the final model to ``SM_MODEL_DIR`` and prints the final metrics.

    python train_ddp.py --epochs 8 --lr 0.02
"""

import argparse
import json
import os
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from strato import runtime

SEED = 20260501


def datasets() -> tuple[TensorDataset, TensorDataset]:
    """2,000 points around 10 seeded centres in 32 dimensions, 80% to train: made here, so the job
    needs no download and no other library (importing one costs seconds on a small machine)."""
    generator = torch.Generator().manual_seed(0)
    centres = torch.randn(10, 32, generator=generator) * 1.5
    y = torch.randint(0, 10, (2000,), generator=generator)
    x = centres[y] + torch.randn(2000, 32, generator=generator) * 3.0
    split = 1600
    return TensorDataset(x[:split], y[:split]), TensorDataset(x[split:], y[split:])


def make_model() -> nn.Module:
    torch.manual_seed(SEED)  # the same initial weights on every rank (DDP also broadcasts rank 0's)
    return nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 10))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--lr", type=float, default=0.02)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--pause", type=float, default=0.0, help="seconds per batch that stand in for more work")
    args = parser.parse_args()

    torch.use_deterministic_algorithms(True)
    dist.init_process_group("gloo")  # env:// — RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT
    rank, world = dist.get_rank(), dist.get_world_size()
    print(
        f"rank {rank} of {world} on {os.environ.get('SM_CURRENT_HOST')}, threads {torch.get_num_threads()}", flush=True
    )

    train, test = datasets()
    sampler = DistributedSampler(train, num_replicas=world, rank=rank, shuffle=True, seed=SEED)
    loader = DataLoader(train, batch_size=args.batch_size, sampler=sampler)
    model = DistributedDataParallel(make_model())
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    state = runtime.checkpoint_dir() / "state.pt"
    start = 0
    if state.exists():  # restored by the platform before this script started, on every rank
        saved = torch.load(state, weights_only=True)
        model.module.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        start = int(saved["epoch"])
        print(f"rank {rank} resumed from epoch {start}", flush=True)

    for epoch in range(start, args.epochs):
        sampler.set_epoch(epoch)
        torch.manual_seed(SEED + epoch)  # anything random inside an epoch starts from the same state
        model.train()
        total = torch.zeros(2, dtype=torch.float64)  # loss sum, examples
        for x, y in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()  # gradients are averaged over the ranks here (allreduce)
            optimizer.step()
            total += torch.tensor([loss.item() * len(y), len(y)], dtype=torch.float64)
            time.sleep(args.pause)
        # async_op + wait keeps the Work object ours, so it is freed here, holding the GIL. Freed by
        # gloo's thread instead, it may need the GIL just as the exiting main thread (holding it) joins
        # that thread: a deadlock at exit seen with torch 2.13 in about one run in three.
        dist.all_reduce(total, async_op=True).wait()
        if rank == 0:
            runtime.report(step=epoch + 1, train_loss=float(total[0] / total[1]))
            with runtime.checkpoint() as directory:
                tmp = directory / "state.tmp.pt"
                torch.save(
                    {"model": model.module.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch + 1}, tmp
                )
                os.replace(tmp, state)  # a checkpoint is whole or absent
            print(f"epoch {epoch + 1} loss {float(total[0] / total[1]):.6f}", flush=True)

    if rank == 0:
        model.eval()
        x_test, y_test = test.tensors
        with torch.no_grad():
            logits = model.module(x_test)
        metrics = {
            "test_accuracy": float((logits.argmax(dim=1) == y_test).float().mean()),
            "test_loss": float(loss_fn(logits, y_test)),
        }
        print(f"test_accuracy={metrics['test_accuracy']:.6f} test_loss={metrics['test_loss']:.6f}", flush=True)
        model_dir = Path(os.environ.get("SM_MODEL_DIR", "model"))
        model_dir.mkdir(parents=True, exist_ok=True)
        torch.save(model.module.state_dict(), model_dir / "model.pt")
        (model_dir / "metrics.json").write_text(json.dumps(metrics, sort_keys=True))
    dist.barrier()  # every rank leaves together, after rank 0 saved the model
    del model, optimizer  # DDP's reducer holds the process group: let it go before the group is destroyed
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
