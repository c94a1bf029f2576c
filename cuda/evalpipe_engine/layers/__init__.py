"""The building blocks of the native models (models/): attention with its prefill/decode context, the MLPs (GELU
and SwiGLU), the norms fused with the residual add (LayerNorm and RMSNorm), rotary embeddings with their scalings,
the linear layer (the quantization seam) and the chunked LM head."""
