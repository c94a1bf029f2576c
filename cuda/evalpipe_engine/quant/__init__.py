"""Weight quantization: int8, nf4 and fp8 linears with their kernels and reference paths."""
