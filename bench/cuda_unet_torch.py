#!/usr/bin/python3
"""bench/cuda_unet_torch.py: PyTorch's side of bench/cuda_unet.cpp: the same DDPM training
step, on the same GPU, with the same network (bench/unet_torch.py, the twin of
diffusion/unet.h: names, shapes and initialisation rules), for scripts/gpu-check.sh.

The DDPM paper's CIFAR-10 UNet (ch 128, mults 1,2,2,2, 2 res blocks, attention at 16x16,
dropout 0.1, 32 groups), random x_0 in [-1, 1] of shape (B, 3, 32, 32). One step:
t ~ U{0..999}, eps ~ N(0, I), x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps,
loss = F.mse_loss(model(x_t, t), eps), backward, AdamW (lr 2e-4, weight decay 1e-2);
model.train(). Eager PyTorch as a user writes it: cuDNN convolutions with
torch.backends.cudnn.benchmark = True (the fastest algorithm per shape, as our bench's
cudnnFind), attention written out (bench/unet_torch.py: matmul, softmax, matmul).

Precision: FP32 by default (TF32 off for matmuls and for cuDNN: PyTorch's own default lets
cuDNN convolutions use TF32); --tf32 turns TF32 on for both, the twin of TD_CUDA_TF32=1.

Method: --warmup steps (default 3), then --steps steps (default 20; fewer past --max-time
seconds, 3 at least) timed one by one on the host clock; each ends with loss.item(), which
waits for the GPU. The median.
Memory: torch.cuda.max_memory_reserved() (what the caching allocator held at its peak, the
quantity bench/cuda_unet.cpp reports for ours), and max_memory_allocated() in the notes.

Output (markdown): notes lines starting with "- ", then one table row
    | side | device | batch | steps | median step ms | images/s | fastest step ms | GPU memory MiB |

    python3 bench/cuda_unet_torch.py [--tf32] [--batch 128] [--steps 20] [--warmup 3]
    /usr/bin/python3 bench/cuda_unet_torch.py --device cpu --batch 4 --steps 1 --warmup 1   # a smoke run
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=20, help="timed steps")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (>= 1)")
    p.add_argument("--max-time", type=float, default=60.0, help="stop timing after this many seconds (3 steps at least)")
    p.add_argument("--tf32", action="store_true", help="TF32 tensor cores for matmuls and cuDNN convolutions")
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"], help="cpu: a smoke run without a GPU")
    args = p.parse_args()
    if args.batch <= 0 or args.steps <= 0 or args.warmup < 1:
        sys.exit("cuda_unet_torch.py: --batch and --steps must be > 0, --warmup >= 1")

    import torch
    import torch.nn.functional as F

    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("cuda_unet_torch.py: torch %s sees no GPU" % torch.__version__)
    import unet_torch
    from unet_torch import UNet, UNetConfig

    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    torch.backends.cudnn.allow_tf32 = args.tf32
    torch.backends.cudnn.benchmark = True
    dev = torch.device(args.device)
    # bench/unet_torch.py makes the timestep embedding's frequencies without a device: make
    # them where the model is (torch >= 2.0), or compute the embedding on the host and move it.
    if hasattr(torch, "set_default_device"):
        torch.set_default_device(dev)
    else:
        on_host = unet_torch.timestep_embedding
        unet_torch.timestep_embedding = lambda t, dim, max_period=10000.0: on_host(t.cpu(), dim, max_period).to(t.device)

    c = UNetConfig(in_channels=3, image_size=32, ch=128, mults=(1, 2, 2, 2), num_res_blocks=2, attn_res=(16,),
                   heads=1, dropout=0.1, groups=32)
    torch.manual_seed(1234)
    model = UNet(c).to(dev)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-4, weight_decay=1e-2)
    nparams = sum(p.numel() for p in model.parameters())
    print("- torch %s (CUDA %s, cuDNN %s): bench/unet_torch.py UNet, torch.optim.AdamW (lr 2e-4), float32, %s"
          % (torch.__version__, torch.version.cuda, torch.backends.cudnn.version(),
             "TF32 on (matmul and cuDNN)" if args.tf32 else "TF32 off (exact FP32 matmuls and convolutions)"))
    print("- device: %s" % (torch.cuda.get_device_name(dev) if args.device == "cuda" else "cpu"))
    print("- model: ch %d, mults %s, %d res blocks, attention at %s, %d head(s), dropout %g, %d groups, "
          "image %dx%dx%d; %d parameters"
          % (c.ch, ",".join(map(str, c.mults)), c.num_res_blocks, ",".join(map(str, c.attn_res)), c.heads, c.dropout,
             c.groups, c.in_channels, c.image_size, c.image_size, nparams))
    print("- method: %d warm-up step(s), then up to %d steps (or %.0f s) timed one by one, each ending with "
          "loss.item(); the median" % (args.warmup, args.steps, args.max_time))
    sys.stdout.flush()

    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64, device=dev)  # the "linear" schedule
    alpha_bar = torch.cumprod(1.0 - betas, dim=0)
    sqrt_ab, sqrt_1mab = alpha_bar.sqrt().float(), (1.0 - alpha_bar).sqrt().float()
    shape = (args.batch, 3, 32, 32)
    x0 = torch.rand(shape, device=dev) * 2.0 - 1.0  # stands in for a batch of images in [-1, 1]

    def step():
        t = torch.randint(0, 1000, (args.batch,), device=dev)
        eps = torch.randn(shape, device=dev)
        xt = sqrt_ab[t].view(-1, 1, 1, 1) * x0 + sqrt_1mab[t].view(-1, 1, 1, 1) * eps
        loss = F.mse_loss(model(xt, t), eps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()  # waits for the GPU

    first = step()
    print("- first loss: %.4f (expected ~1: conv_out starts at zero)" % first)
    if abs(first - 1.0) >= 0.1:
        sys.exit("cuda_unet_torch.py: first training loss %g, expected ~1" % first)
    for _ in range(args.warmup - 1):
        step()
    times = []
    last = 0.0
    for i in range(args.steps):
        if i >= 3 and sum(times) >= args.max_time:
            break
        t0 = time.perf_counter()
        last = step()
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    on_gpu = args.device == "cuda"
    print("- last loss: %.4f; max_memory_allocated %s MiB"
          % (last, torch.cuda.max_memory_allocated(dev) >> 20 if on_gpu else "-"))
    print("| PyTorch%s | %s | %d | %d | %.1f | %.1f | %.1f | %s |"
          % (" (TF32)" if args.tf32 else " (FP32)", args.device, args.batch, len(times), med * 1e3, args.batch / med,
             min(times) * 1e3, torch.cuda.max_memory_reserved(dev) >> 20 if on_gpu else "-"))


if __name__ == "__main__":
    main()
