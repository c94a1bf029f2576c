"""Our own Triton kernels. Each has a reference implementation in plain PyTorch and tests against it."""
