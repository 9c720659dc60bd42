"""PyTorch's gloo all_reduce of one gradient-sized float32 tensor over RANKS processes on 127.0.0.1: the
reference the coordinator's round trip is measured against (deno task scaling --peers, simulated compute).
usage: python3 gloo_allreduce.py RANKS FLOATS [REPS]   -> prints 'allreduce_ms MEDIAN' (rank 0's median)"""
import os, socket, statistics, sys, time
import torch, torch.distributed as dist, torch.multiprocessing as mp


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(rank, world, floats, reps, port):
    torch.set_num_threads(1)
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    t = torch.ones(floats)
    times = []
    for i in range(reps + 3):
        dist.barrier()
        start = time.perf_counter()
        dist.all_reduce(t)
        if i >= 3:
            times.append((time.perf_counter() - start) * 1000)
    if rank == 0:
        print(f"allreduce_ms {statistics.median(times):.3f}", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    world, floats = int(sys.argv[1]), int(sys.argv[2])
    reps = int(sys.argv[3]) if len(sys.argv) > 3 else 30
    mp.spawn(run, args=(world, floats, reps, free_port()), nprocs=world, join=True)
