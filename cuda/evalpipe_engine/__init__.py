"""evalpipe's engine: StarCoder2 (and other causal LMs) scoring, generation and benchmarking."""

ENGINE_VERSION = "0.1.0"
PROTOCOL_VERSION = 1
