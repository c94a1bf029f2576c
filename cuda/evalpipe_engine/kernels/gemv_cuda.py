"""One-row (decode at batch 1) GEMV for the quantized and the dense bf16/fp16 weights, in CUDA C++ built at run
time (kernels/cuda_rtc.py).

y[1, N] = act(x[1, K] @ dequant(W).T + b), act the identity or GELU(tanh) (`gelu`: the c_fc epilogue, so that
GELU is no launch of its own), reading each weight byte exactly once with 16-byte streaming loads
(ld.global.nc.L1::no_allocate) and dequantizing in registers:
  dense (the "dense" format: weights in the activation dtype, bf16 or fp16): eight weights per load, converted with
    one shift or mask (bf16) or one cvt (fp16); what cuBLAS runs for one row reached ~2.0-2.6 TB/s of the H100's
    3.35 on the 3B's shapes, with a split-K reduce launch for c_proj and GELU in cuBLASLt's epilogue (the H100
    decode profile, bench/results/decode-profile-h100-2026-11-26-after-fusion.json);
  int8 (per-channel scale s[n]): a byte becomes a float with one byte-permute and one add (the 2^23 magic-number
    trick), so no slow integer-to-float conversions; y[n] = s[n] * sum_k q[n, k] x[k] + b[n];
  e4m3 (per-channel scale): the hardware's cvt.rn.f16x2.e4m3x2, two values per instruction (sm_89+);
  nf4 (block 64, fp32 absmax, bitsandbytes' byte order: element 2j in the high nibble), two table layouts:
    "nibble": the 16-entry code table in shared memory replicated once per lane (lut[c * 32 + lane]), so the 32
      lanes of a warp always hit 32 different banks whatever the codes are; one lookup per weight;
    "pair": a 256-entry table of code pairs (entry b = {code[b >> 4], code[b & 15]}, 8 bytes) replicated 16 times
      (pair[b * 16 + lane % 16]: a half-warp's 8-byte loads cover the 32 banks once), so one 64-bit lookup serves
      both weights of a byte: about 5 instructions per byte instead of 8, the nibble layout's issue-bound inner
      loop. Its 32 KB table is filled once per block, so those blocks are persistent (a grid of 3-4 per SM
      walking the rows) rather than one per row group;
    the absmax multiplies each 32-element partial sum; both layouts sum in the same order (the same result).
Each block of 128 threads owns ROWS output rows at a time and splits K across its threads (16 bytes per thread per
step, UNROLL steps in flight: ROWS x UNROLL loads per thread), then reduces through warp shuffles and shared
memory; accumulation is fp32 throughout, and the bias and GELU apply to the fp32 sum before its one rounding.
Activations may be bf16, fp16 or fp32 for the quantized formats (the output has x's dtype). ROWS and UNROLL (and
for nf4 the table layout) are picked per shape by timing the variants once, outside CUDA-graph capture.

Everything here is a fast path: `gemv` returns None whenever it cannot run (no CUDA, run-time compilation
unavailable, an unaligned or odd-sized operand), and the caller runs its Triton kernel (dense: cuBLAS) instead.
"""

from __future__ import annotations

import functools
import itertools
from typing import Any

import torch

from .cuda_rtc import RtcUnavailable, load_module, rtc_enabled, warn_fallback_once

THREADS = 128
# (ROWS, UNROLL, TABLE): TABLE 0 for int8/fp8; for nf4 0 = the nibble table, 1 = the pair table (see above)
W8_VARIANTS: tuple[tuple[int, int, int], ...] = tuple(itertools.product((1, 2, 4), (1, 2), (0,)))
# nf4 also has 8 rows a block: a row of K = 3072 is only 1536 bytes, and one 16-byte load per thread per row is all
# a block has in flight, so more rows per block keep more bytes in flight (the GEMV is latency-bound there)
NF4_VARIANTS: tuple[tuple[int, int, int], ...] = (
    *itertools.product((1, 2, 4), (1, 2), (0, 1)),
    (8, 1, 0),
    (8, 1, 1),
)
# dense: a 16-byte load is only 8 weights (16 for int8), so up to 4 steps in flight
DENSE_VARIANTS: tuple[tuple[int, int, int], ...] = tuple(itertools.product((1, 2, 4), (1, 2, 4), (0,)))
DEFAULT_VARIANT = (2, 2, 0)
# persistent pair-table blocks per SM: 32 KB of table each, and up to 128 registers a thread (168 with 8 rows): what
# fits an SM at once (ptxas -v, sm_90)
PAIR_BLOCKS_PER_SM = {1: 4, 2: 4, 4: 4, 8: 3}
_ACTS = {torch.bfloat16: ("bf16", 0), torch.float16: ("f16", 1), torch.float32: ("f32", 2)}
_FORMATS = {"int8": 0, "fp8": 1, "nf4": 2, "dense": 3}
_DENSE_ACTS = (torch.bfloat16, torch.float16)

_COMMON = r"""
typedef unsigned int u32;
typedef unsigned short u16;
typedef unsigned char u8;
struct u32x4 { u32 x, y, z, w; };
#define THREADS 128
struct alignas(8) f2 { float x, y; };

__device__ __forceinline__ float as_float(u32 v) { float f; asm("mov.b32 %0, %1;" : "=f"(f) : "r"(v)); return f; }
__device__ __forceinline__ u32 as_u32(float f) { u32 v; asm("mov.b32 %0, %1;" : "=r"(v) : "f"(f)); return v; }
__device__ __forceinline__ float h2f(u32 h) {
  float f; u16 s = (u16)h; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(s)); return f;
}
__device__ __forceinline__ u16 f2h(float f) { u16 h; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f)); return h; }
__device__ __forceinline__ u16 f2bf(float f) { u16 h; asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h) : "f"(f)); return h; }

// weights: read once, do not keep them in L1
__device__ __forceinline__ u32x4 ld_stream(const void* p) {
  u32x4 v;
  asm("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
      : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
  return v;
}
// activations: shared by every block, keep them cached
__device__ __forceinline__ u32x4 ld_cached(const void* p) {
  u32x4 v;
  asm("ld.global.nc.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
  return v;
}

// ACT 0: bf16, 1: f16, 2: f32. Loads COUNT (a multiple of 8) elements starting at element k (16-byte aligned).
template <int ACT, int COUNT>
__device__ __forceinline__ void load_x(const void* x, int k, float* out) {
  if (ACT == 2) {
    const float* p = (const float*)x + k;
#pragma unroll
    for (int i = 0; i < COUNT / 4; ++i) {
      u32x4 v = ld_cached(p + 4 * i);
      out[4 * i] = as_float(v.x); out[4 * i + 1] = as_float(v.y);
      out[4 * i + 2] = as_float(v.z); out[4 * i + 3] = as_float(v.w);
    }
  } else {
    const u16* p = (const u16*)x + k;
#pragma unroll
    for (int i = 0; i < COUNT / 8; ++i) {
      u32x4 v = ld_cached(p + 8 * i);
      u32 w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        if (ACT == 0) {
          out[8 * i + 2 * j] = as_float(w[j] << 16);
          out[8 * i + 2 * j + 1] = as_float(w[j] & 0xffff0000u);
        } else {
          out[8 * i + 2 * j] = h2f(w[j] & 0xffffu);
          out[8 * i + 2 * j + 1] = h2f(w[j] >> 16);
        }
      }
    }
  }
}

// Element-wise guarded load for the last, partial 64-block of an nf4 row (elements >= K read as 0).
template <int ACT, int COUNT>
__device__ __forceinline__ void load_x_tail(const void* x, int k, int K, float* out) {
#pragma unroll
  for (int i = 0; i < COUNT; ++i) {
    float v = 0.f;
    if (k + i < K) {
      if (ACT == 2) v = ((const float*)x)[k + i];
      else if (ACT == 0) v = as_float(((u32)((const u16*)x)[k + i]) << 16);
      else v = h2f(((const u16*)x)[k + i]);
    }
    out[i] = v;
  }
}

template <int ACT>
__device__ __forceinline__ float load_scalar(const void* p, int i) {
  if (ACT == 2) return ((const float*)p)[i];
  if (ACT == 0) return as_float(((u32)((const u16*)p)[i]) << 16);
  return h2f(((const u16*)p)[i]);
}

template <int ACT>
__device__ __forceinline__ void store_scalar(void* p, int i, float v) {
  if (ACT == 2) ((float*)p)[i] = v;
  else if (ACT == 0) ((u16*)p)[i] = f2bf(v);
  else ((u16*)p)[i] = f2h(v);
}

// The output row's value from its fp32 sum: + bias, then GELU(tanh) when asked (PyTorch's formula), rounded once.
template <int ACT>
__device__ __forceinline__ void finish_row(void* y, int row, float v, const void* bias, int has_bias, int gelu) {
  if (has_bias) v += load_scalar<ACT>(bias, row);
  if (gelu) {
    const float inner = 0.7978845608028654f * fmaf(0.044715f * v, v * v, v);
    v = 0.5f * v * (1.f + tanhf(inner));
  }
  store_scalar<ACT>(y, row, v);
}

// 8 bf16 (ACT 0) or fp16 (ACT 1) weights (16 bytes) . 8 activations.
template <int ACT>
__device__ __forceinline__ float dot_w16x8(const u32x4& w, const float* x) {
  u32 words[4] = {w.x, w.y, w.z, w.w};
  float a = 0.f, b = 0.f;
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    if (ACT == 0) {
      a = fmaf(as_float(words[j] << 16), x[2 * j], a);
      b = fmaf(as_float(words[j] & 0xffff0000u), x[2 * j + 1], b);
    } else {
      a = fmaf(h2f(words[j] & 0xffffu), x[2 * j], a);
      b = fmaf(h2f(words[j] >> 16), x[2 * j + 1], b);
    }
  }
  return a + b;
}

// 4 int8 weights (one word) . 4 activations: byte -> 2^23 + (q + 128) exactly as a float, minus 2^23 + 128.
__device__ __forceinline__ float dot_i8x4(u32 w, const float* x, float s) {
  u32 u = w ^ 0x80808080u;
  s = fmaf(as_float(__byte_perm(u, 0x4B000000u, 0x7650)) - 8388736.f, x[0], s);
  s = fmaf(as_float(__byte_perm(u, 0x4B000000u, 0x7651)) - 8388736.f, x[1], s);
  s = fmaf(as_float(__byte_perm(u, 0x4B000000u, 0x7652)) - 8388736.f, x[2], s);
  s = fmaf(as_float(__byte_perm(u, 0x4B000000u, 0x7653)) - 8388736.f, x[3], s);
  return s;
}

// 4 e4m3 weights . 4 activations (every e4m3 value is exact in fp16).
__device__ __forceinline__ float dot_e4m3x4(u32 w, const float* x, float s) {
  u32 lo, hi;
  u16 wl = (u16)(w & 0xffffu), wh = (u16)(w >> 16);
  asm("cvt.rn.f16x2.e4m3x2 %0, %1;" : "=r"(lo) : "h"(wl));
  asm("cvt.rn.f16x2.e4m3x2 %0, %1;" : "=r"(hi) : "h"(wh));
  s = fmaf(h2f(lo & 0xffffu), x[0], s);
  s = fmaf(h2f(lo >> 16), x[1], s);
  s = fmaf(h2f(hi & 0xffffu), x[2], s);
  s = fmaf(h2f(hi >> 16), x[3], s);
  return s;
}

// FMT 0: int8, 1: e4m3 (16 one-byte weights a load), 3: dense (8 weights in the activation dtype ACT a load).
template <int FMT> struct RowMajor { static constexpr int PER_LOAD = FMT == 3 ? 8 : 16; };

// One 16-byte load of weights . its PER_LOAD activations.
template <int ACT, int FMT>
__device__ __forceinline__ float dot_load(const u32x4& w, const float* x) {
  if (FMT == 3) return dot_w16x8<ACT>(w, x);
  float a = 0.f, b = 0.f;
  if (FMT == 0) {
    a = dot_i8x4(w.x, x, a); b = dot_i8x4(w.y, x + 4, b); a = dot_i8x4(w.z, x + 8, a); b = dot_i8x4(w.w, x + 12, b);
  } else {
    a = dot_e4m3x4(w.x, x, a); b = dot_e4m3x4(w.y, x + 4, b); a = dot_e4m3x4(w.z, x + 8, a);
    b = dot_e4m3x4(w.w, x + 12, b);
  }
  return a + b;
}

// 32 nf4 weights (16 bytes; byte j = element 2j in the high nibble, 2j+1 in the low one) . 32 activations.
// lut points at this lane's column of the replicated code table: code c is lut[c * 32].
__device__ __forceinline__ float dot_nf4x32(const u32x4& w, const float* x, const float* lut) {
  u32 words[4] = {w.x, w.y, w.z, w.w};
  float a = 0.f, b = 0.f;
#pragma unroll
  for (int j = 0; j < 4; ++j) {
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      u32 hi = (words[j] >> (8 * q + 4)) & 15u;
      u32 lo = (words[j] >> (8 * q)) & 15u;
      a = fmaf(lut[hi * 32], x[8 * j + 2 * q], a);
      b = fmaf(lut[lo * 32], x[8 * j + 2 * q + 1], b);
    }
  }
  return a + b;
}

// The same 32 weights through the pair table: entry b of copy c is at byte (b * 16 + c) * 8 of the table, so a
// byte's offset is one shift and one and-or (b << 7 | lane_off, lane_off = (lane % 16) * 8). The sums run in the
// same order as dot_nf4x32 (a: even elements, b: odd), so both layouts give the same bits.
__device__ __forceinline__ float dot_nf4x32_pairs(const u32x4& w, const float* x, const f2* table, u32 lane_off) {
  u32 words[4] = {w.x, w.y, w.z, w.w};
  const char* base = (const char*)table;
  float a = 0.f, b = 0.f;
#pragma unroll
  for (int j = 0; j < 4; ++j) {
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      const u32 shifted = q == 0 ? words[j] << 7 : words[j] >> (8 * q - 7);
      const f2 c = *(const f2*)(base + ((shifted & 0x7F80u) | lane_off));
      a = fmaf(c.x, x[8 * j + 2 * q], a);
      b = fmaf(c.y, x[8 * j + 2 * q + 1], b);
    }
  }
  return a + b;
}

template <int ROWS>
__device__ __forceinline__ void reduce_rows(float* acc, float (*red)[ROWS]) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int r = 0; r < ROWS; ++r) {
    float v = acc[r];
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (lane == 0) red[warp][r] = v;
  }
  __syncthreads();
}

// int8 / e4m3 (w [N, K] bytes, K % 16 == 0, scale fp32 [N]) and dense (w [N, K] in the activation dtype, K % 8 ==
// 0, no scale): row-major weights, one 16-byte load = RowMajor<FMT>::PER_LOAD weights of a row.
template <int ACT, int FMT, int ROWS, int UNROLL>
__device__ __forceinline__ void gemv_rowmajor(const void* x, const u8* w, const float* scale, const void* bias,
                                              void* y, int N, int K, int has_bias, int gelu) {
  constexpr int PER = RowMajor<FMT>::PER_LOAD;
  constexpr int BYTES = 16 / PER;  // bytes a weight
  __shared__ float red[THREADS / 32][ROWS];
  const int row0 = blockIdx.x * ROWS;
  const u8* wr[ROWS];
#pragma unroll
  for (int r = 0; r < ROWS; ++r) wr[r] = w + (size_t)min(row0 + r, N - 1) * (size_t)K * BYTES;
  float acc[ROWS];
#pragma unroll
  for (int r = 0; r < ROWS; ++r) acc[r] = 0.f;
  for (int k0 = threadIdx.x * PER; k0 < K; k0 += THREADS * PER * UNROLL) {
    u32x4 wv[UNROLL][ROWS];
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      const int k = k0 + u * THREADS * PER;
#pragma unroll
      for (int r = 0; r < ROWS; ++r) if (k < K) wv[u][r] = ld_stream(wr[r] + (size_t)k * BYTES);
    }
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      const int k = k0 + u * THREADS * PER;
      if (k < K) {
        float xv[PER];
        load_x<ACT, PER>(x, k, xv);
#pragma unroll
        for (int r = 0; r < ROWS; ++r) acc[r] += dot_load<ACT, FMT>(wv[u][r], xv);
      }
    }
  }
  reduce_rows<ROWS>(acc, red);
  const int t = threadIdx.x;
  if (t < ROWS && row0 + t < N) {
    float v = 0.f;
#pragma unroll
    for (int i = 0; i < THREADS / 32; ++i) v += red[i][t];
    finish_row<ACT>(y, row0 + t, FMT == 3 ? v : v * scale[row0 + t], bias, has_bias, gelu);
  }
}

// nf4: packed [N, KB] bytes (KB = Kp / 2, Kp = K rounded up to 64), absmax fp32 [N, Kp / 64], code fp32 [16].
// PAIR 0: nibble table, one block per ROWS rows; PAIR 1: pair table, blocks walk the rows (grid-stride).
template <int ACT, int ROWS, int UNROLL, int PAIR>
__device__ __forceinline__ void gemv_nf4(const void* x, const u8* w, const float* absmax, const float* code,
                                         const void* bias, void* y, int N, int K, int KB, int has_bias, int gelu) {
  __shared__ float lut_all[PAIR ? 1 : 16 * 32];
  __shared__ f2 pair_all[PAIR ? 256 * 16 : 1];
  __shared__ float red[THREADS / 32][ROWS];
  if (PAIR) {
    for (int i = threadIdx.x; i < 256 * 16; i += THREADS) {
      f2 e;
      e.x = code[i >> 8];
      e.y = code[(i >> 4) & 15];
      pair_all[i] = e;
    }
  } else {
    for (int i = threadIdx.x; i < 16 * 32; i += THREADS) lut_all[i] = code[i >> 5];
  }
  __syncthreads();
  const float* lut = lut_all + (threadIdx.x & 31);
  const u32 lane_off = (threadIdx.x & 15u) * 8u;
  const int nblk = KB / 32;
  for (int row0 = blockIdx.x * ROWS; row0 < N; row0 += gridDim.x * ROWS) {
    const u8* wr[ROWS];
    const float* ar[ROWS];
#pragma unroll
    for (int r = 0; r < ROWS; ++r) {
      const int row = min(row0 + r, N - 1);
      wr[r] = w + (size_t)row * (size_t)KB;
      ar[r] = absmax + (size_t)row * (size_t)nblk;
    }
    float acc[ROWS];
#pragma unroll
    for (int r = 0; r < ROWS; ++r) acc[r] = 0.f;
    for (int b0 = threadIdx.x * 16; b0 < KB; b0 += THREADS * 16 * UNROLL) {
      u32x4 wv[UNROLL][ROWS];
      float sc[UNROLL][ROWS];
#pragma unroll
      for (int u = 0; u < UNROLL; ++u) {
        const int b = b0 + u * THREADS * 16;
#pragma unroll
        for (int r = 0; r < ROWS; ++r) {
          if (b < KB) {
            wv[u][r] = ld_stream(wr[r] + b);
            sc[u][r] = ar[r][b >> 5];
          }
        }
      }
#pragma unroll
      for (int u = 0; u < UNROLL; ++u) {
        const int b = b0 + u * THREADS * 16;
        if (b < KB) {
          float xv[32];
          const int k = 2 * b;
          if (k + 32 <= K) load_x<ACT, 32>(x, k, xv);
          else load_x_tail<ACT, 32>(x, k, K, xv);
#pragma unroll
          for (int r = 0; r < ROWS; ++r) {
            const float d = PAIR ? dot_nf4x32_pairs(wv[u][r], xv, pair_all, lane_off) : dot_nf4x32(wv[u][r], xv, lut);
            acc[r] = fmaf(d, sc[u][r], acc[r]);
          }
        }
      }
    }
    reduce_rows<ROWS>(acc, red);
    const int t = threadIdx.x;
    if (t < ROWS && row0 + t < N) {
      float v = 0.f;
#pragma unroll
      for (int i = 0; i < THREADS / 32; ++i) v += red[i][t];
      finish_row<ACT>(y, row0 + t, v, bias, has_bias, gelu);
    }
    __syncthreads();  // red is reused by the next row group
  }
}
"""


def variants_for(fmt: str) -> tuple[tuple[int, int, int], ...]:
    return {"nf4": NF4_VARIANTS, "dense": DENSE_VARIANTS}.get(fmt, W8_VARIANTS)


def _kernel_name(fmt: str, act: str, rows: int, unroll: int, table: int = 0) -> str:
    return f"gemv_{fmt}_{act}_r{rows}_u{unroll}" + ("_pair" if table else "")


def _source() -> tuple[str, list[str]]:
    wrappers: list[str] = []
    names: list[str] = []
    for act, act_id in _ACTS.values():
        for fmt in ("int8", "fp8"):
            for rows, unroll, _ in W8_VARIANTS:
                name = _kernel_name(fmt, act, rows, unroll)
                names.append(name)
                wrappers.append(
                    f'extern "C" __global__ void __launch_bounds__(THREADS) {name}(const void* x, const u8* w, '
                    "const float* scale, const void* bias, void* y, int N, int K, int has_bias, int gelu) {\n"
                    f"  gemv_rowmajor<{act_id}, {_FORMATS[fmt]}, {rows}, {unroll}>(x, w, scale, bias, y, N, K, "
                    "has_bias, gelu);\n}\n"
                )
        for rows, unroll, table in NF4_VARIANTS:
            name = _kernel_name("nf4", act, rows, unroll, table)
            names.append(name)
            wrappers.append(
                f'extern "C" __global__ void __launch_bounds__(THREADS) {name}(const void* x, const u8* w, '
                "const float* absmax, const float* code, const void* bias, void* y, int N, int K, int KB, "
                "int has_bias, int gelu) {\n"
                f"  gemv_nf4<{act_id}, {rows}, {unroll}, {table}>(x, w, absmax, code, bias, y, N, K, KB, has_bias, "
                "gelu);\n}\n"
            )
        if act_id == 2:
            continue  # dense weights are in the activation dtype: bf16 or fp16 (fp32 stays with cuBLAS)
        for rows, unroll, _ in DENSE_VARIANTS:
            name = _kernel_name("dense", act, rows, unroll)
            names.append(name)
            wrappers.append(
                f'extern "C" __global__ void __launch_bounds__(THREADS) {name}(const void* x, const u16* w, '
                "const void* bias, void* y, int N, int K, int has_bias, int gelu) {\n"
                f"  gemv_rowmajor<{act_id}, {_FORMATS['dense']}, {rows}, {unroll}>(x, (const u8*)w, nullptr, bias, y, "
                "N, K, has_bias, gelu);\n}\n"
            )
    return _COMMON + "\n".join(wrappers), names


SOURCE, KERNEL_NAMES = _source()
_choice: dict[tuple[Any, ...], tuple[int, int, int]] = {}


@functools.cache
def _sm_count(device_index: int) -> int:
    return torch.cuda.get_device_properties(device_index).multi_processor_count


def _kernels(device: torch.device, rtc: bool | None = None) -> dict[str, Any] | None:
    """The compiled kernels, or None when they are switched off (`rtc`, the linear's cuda_rtc switch; None: the
    EVALPIPE_CUDA_RTC default) or cannot be built here."""
    if not (rtc_enabled() if rtc is None else rtc):
        return None
    try:
        return load_module(SOURCE, KERNEL_NAMES, device)
    except RtcUnavailable as exc:
        warn_fallback_once("decode GEMV (CUDA C++)", str(exc).splitlines()[0])
        return None


def _aligned(t: torch.Tensor) -> bool:
    return t.data_ptr() % 16 == 0


def _pick_variant(key: tuple[Any, ...], launch: Any) -> tuple[int, int, int]:
    """The fastest (ROWS, UNROLL, TABLE) for this shape, timed once; the default while a CUDA graph is being
    captured."""
    if key in _choice:
        return _choice[key]
    if torch.cuda.is_current_stream_capturing():
        return DEFAULT_VARIANT
    best, best_ms = DEFAULT_VARIANT, float("inf")
    for variant in variants_for(key[0]):
        for _ in range(2):
            launch(variant)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(10):
            launch(variant)
        end.record()
        end.synchronize()
        ms = start.elapsed_time(end)
        if ms < best_ms:
            best, best_ms = variant, ms
    _choice[key] = best
    return best


def gemv(
    fmt: str,
    x: torch.Tensor,
    weight: torch.Tensor,
    scales: torch.Tensor | None,
    bias: torch.Tensor | None,
    *,
    code: torch.Tensor | None = None,
    k: int | None = None,
    rtc: bool | None = None,
    gelu: bool = False,
) -> torch.Tensor | None:
    """x [1, K] -> [1, N] in x's dtype, or None when this fast path cannot run here (the caller falls back).

    fmt "int8"/"fp8": weight [N, K] int8 / float8_e4m3fn, scales fp32 [N] (per channel).
    fmt "nf4": weight uint8 [N, Kp/2], scales = absmax fp32 [N, Kp/64], code fp32 [16], k = K.
    fmt "dense": weight [N, K] in x's dtype (bf16 or fp16), scales None.
    rtc: the cuda_rtc fast-path switch (False: decline; None: EVALPIPE_CUDA_RTC decides).
    gelu: GELU(tanh) of the biased sum, in the kernel's epilogue."""
    if not x.is_cuda or x.dim() != 2 or x.shape[0] != 1 or x.dtype not in _ACTS:
        return None
    if x.stride(1) != 1:
        x = x.contiguous()
    n = weight.shape[0]
    in_features = x.shape[1]
    if fmt == "dense":
        if x.dtype not in _DENSE_ACTS or weight.dtype != x.dtype or weight.shape[1] != in_features or in_features % 8:
            return None
    elif fmt == "nf4":
        kb = weight.shape[1]
        if scales is None or code is None or k != in_features or kb * 2 < in_features or kb % 16:
            return None
        if scales.shape != (n, kb // 32):
            return None
    elif weight.shape[1] != in_features or in_features % 16:
        return None
    if scales is not None and not (scales.is_contiguous() and scales.dtype == torch.float32):
        return None
    if fmt != "dense" and scales is None:
        return None
    if not weight.is_contiguous():
        return None
    kernels = _kernels(x.device, rtc)
    if kernels is None:
        return None
    if not (_aligned(x) and _aligned(weight)) or (bias is not None and bias.dtype != x.dtype):
        return None
    act = _ACTS[x.dtype][0]
    y = torch.empty((1, n), device=x.device, dtype=x.dtype)
    bias_arg = bias if bias is not None else y
    has_bias = int(bias is not None)
    epilogue = int(gelu)

    def launch(variant: tuple[int, int, int]) -> None:
        rows, unroll, table = variant
        kernel = kernels[_kernel_name(fmt, act, rows, unroll, table)]
        groups = -(-n // rows)
        if table:  # persistent blocks, balanced: each walks the same number of row groups (one fewer at most)
            steps = -(-groups // (_sm_count(x.device.index or 0) * PAIR_BLOCKS_PER_SM[rows]))
            groups = -(-groups // steps)
        grid = (groups, 1, 1)
        if fmt == "nf4":
            args = [x, weight, scales, code, bias_arg, y, n, in_features, weight.shape[1], has_bias, epilogue]
        elif fmt == "dense":
            args = [x, weight, bias_arg, y, n, in_features, has_bias, epilogue]
        else:
            args = [x, weight, scales, bias_arg, y, n, in_features, has_bias, epilogue]
        kernel(grid=grid, block=(THREADS, 1, 1), args=args, stream=torch.cuda.current_stream(x.device))

    variant = _pick_variant((fmt, act, n, in_features, x.device.index), launch)
    launch(variant)
    return y
