"""PyTorch peer for `Coldmind.Benchmarks train-vs-torch`: the same MLP 784-300-100-10, Adam (lr 1e-3),
batch 128, shuffled, on Fashion-MNIST's 60 000 training images. Prints one JSON object with the
wall time of each epoch. Run with Debian's python3-torch and libopenblas0-pthread installed."""
import gzip, json, os, sys, time
import numpy as np
import torch

def blas():
    """Debian's torch calls whatever libblas.so.3 the alternatives system points at."""
    try:
        return os.path.basename(os.path.dirname(os.path.realpath("/usr/lib/x86_64-linux-gnu/libblas.so.3")))
    except OSError:
        return "unknown"


threads, epochs = int(sys.argv[1]), int(sys.argv[2])
torch.set_num_threads(threads)
torch.manual_seed(0)
root = "/usr/share/datasets/fashion-mnist/"
with gzip.open(root + "train-images-idx3-ubyte.gz") as f:
    x = torch.tensor(np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784) / 255.0, dtype=torch.float32)
with gzip.open(root + "train-labels-idx1-ubyte.gz") as f:
    y = torch.tensor(np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64))
model = torch.nn.Sequential(torch.nn.Linear(784, 300), torch.nn.ReLU(), torch.nn.Linear(300, 100), torch.nn.ReLU(), torch.nn.Linear(100, 10))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
seconds, loss_sum = [], 0.0
for epoch in range(epochs):
    start = time.perf_counter()
    perm = torch.randperm(len(y))
    loss_sum = 0.0
    for i in range(0, len(y), 128):
        idx = perm[i:i + 128]
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss_sum += loss.item() * len(idx)
    seconds.append(time.perf_counter() - start)
print(json.dumps({"threads": threads, "epoch_seconds": seconds, "last_loss": loss_sum / len(y), "torch": torch.__version__,
                  "blas": blas()}))
