// Winograd F(2x2, 3x3) convolution (Lavin & Gray 2015): the transforms only.
//
// A 3x3, stride-1 convolution is computed over 2x2 output tiles, each from the
// 4x4 input tile that covers it (tiles overlap by 2). With the paper's
//
//         [1  0 -1  0]        [ 1    0    0 ]
//   B^T = [0  1  1  0]    G = [1/2  1/2  1/2]    A^T = [1 1  1  0]
//         [0 -1  1  0]        [1/2 -1/2  1/2]          [0 1 -1 -1]
//         [0  1  0 -1]        [ 0    0    1 ]
//
// one output tile is Y = A^T [ sum_c (G g_kc G^T) .* (B^T d_c B) ] A: the 16
// products of the 4x4 transformed tiles, summed over the input channels c,
// are 16 independent GEMMs (one per component), done by BLAS / cuBLAS
// between the transform kernels:
//
//   v[16][channels][tiles]         = B^T d B        winograd_input_tile
//   u[16][out_channels][channels]  = G g G^T        winograd_filter_tile
//   m[16][out_channels][tiles]     = u[c] x v[c]    (batched GEMM, not here)
//   y tile                         = A^T m A        winograd_output_tile
//
// Component (r, s) of a transformed 4x4 tile is stored at index 4 * r + s,
// `stride` elements apart, so each component is one contiguous matrix. A tile
// (image, ti, tj) is tile number (image * tiles_h + ti) * tiles_w + tj; it
// reads input rows 2 * ti - pad_top ... + 3 (zero outside the image) and
// writes output rows 2 * ti, 2 * ti + 1 (those below out_h are dropped).
//
// The weight gradient uses the adjoints: dm = A dy A^T (winograd_output_adjoint
// _tile, dy zero past the output's edge) and dg = G^T du G
// (winograd_filter_adjoint_tile), with du = sum over tiles of dm .* v, again a
// batched GEMM. Every value is computed by exactly one thread from a fixed
// sequence of operations: no atomics, the same bits on every run and build.
#ifndef NNLITE_WINOGRAD_CUH
#define NNLITE_WINOGRAD_CUH

#include "nnlite/portable.cuh"

// Components of a transformed tile: (m + r - 1)^2 for F(m x m, r x r).
#define NNL_WINOGRAD_COMPONENTS 16

// Where the tiles of one plane sit: the plane's size, the zero padding before
// its first row and column, and the number of tiles along each axis.
struct winograd_tiling {
  int height, width;
  int pad_top, pad_left;
  int tiles_h, tiles_w;
};

NNL_HD NNL_INLINE winograd_tiling make_winograd_tiling(int height, int width, int pad_top,
                                                       int pad_left, int tiles_h,
                                                       int tiles_w) {
  winograd_tiling t;
  t.height = height;
  t.width = width;
  t.pad_top = pad_top;
  t.pad_left = pad_left;
  t.tiles_h = tiles_h;
  t.tiles_w = tiles_w;
  return t;
}

// The 4x4 input tile (ti, tj) of one plane, row-major into d, zero where it
// lies in the padding. Positions are formed in 64 bits: 2 * ti - pad_top may
// pass the int range even though each argument fits an int.
template <typename scalar_t>
NNL_HD NNL_INLINE void winograd_load_tile(const scalar_t* plane, const winograd_tiling& t,
                                          int ti, int tj, scalar_t* d) {
  const long long row0 = 2 * (long long)ti - t.pad_top;
  const long long col0 = 2 * (long long)tj - t.pad_left;
  if (row0 >= 0 && row0 + 4 <= t.height && col0 >= 0 && col0 + 4 <= t.width) {
    const scalar_t* src = plane + row0 * t.width + col0;
    for (int r = 0; r < 4; ++r) {
      for (int s = 0; s < 4; ++s) d[4 * r + s] = src[(long long)r * t.width + s];
    }
    return;
  }
  for (int r = 0; r < 4; ++r) {
    const long long h = row0 + r;
    for (int s = 0; s < 4; ++s) {
      const long long w = col0 + s;
      d[4 * r + s] = (h >= 0 && h < t.height && w >= 0 && w < t.width)
                         ? plane[h * t.width + w] : scalar_t(0);
    }
  }
}

// The five 1-D transforms, x -> M x for M = B^T (4 -> 4), G (3 -> 4), A^T (4 ->
// 2) and the adjoints A (2 -> 4), G^T (4 -> 3): every 2-D tile transform below
// (and the row-at-a-time loops of the host build) applies one along the
// columns of a tile, then along its rows. Output k goes to out[k * stride].
// The halves of G are exact in binary floating point.
template <typename scalar_t>
NNL_HD NNL_INLINE void winograd_bt(scalar_t d0, scalar_t d1, scalar_t d2, scalar_t d3,
                                   scalar_t* out, long long stride) {
  out[0] = d0 - d2;
  out[stride] = d1 + d2;
  out[2 * stride] = d2 - d1;
  out[3 * stride] = d1 - d3;
}

template <typename scalar_t>
NNL_HD NNL_INLINE void winograd_g(scalar_t g0, scalar_t g1, scalar_t g2, scalar_t* out,
                                  long long stride) {
  const scalar_t half = scalar_t(0.5);
  out[0] = g0;
  out[stride] = half * (g0 + g1 + g2);
  out[2 * stride] = half * (g0 - g1 + g2);
  out[3 * stride] = g2;
}

template <typename scalar_t>
NNL_HD NNL_INLINE void winograd_at(scalar_t m0, scalar_t m1, scalar_t m2, scalar_t m3,
                                   scalar_t* out, long long stride) {
  out[0] = m0 + m1 + m2;
  out[stride] = m1 - m2 - m3;
}

template <typename scalar_t>
NNL_HD NNL_INLINE void winograd_a(scalar_t y0, scalar_t y1, scalar_t* out, long long stride) {
  out[0] = y0;
  out[stride] = y0 + y1;
  out[2 * stride] = y0 - y1;
  out[3 * stride] = -y1;
}

template <typename scalar_t>
NNL_HD NNL_INLINE void winograd_gt(scalar_t d0, scalar_t d1, scalar_t d2, scalar_t d3,
                                   scalar_t* out, long long stride) {
  const scalar_t half = scalar_t(0.5);
  out[0] = d0 + half * (d1 + d2);
  out[stride] = half * (d1 - d2);
  out[2 * stride] = half * (d1 + d2) + d3;
}

// v = B^T d B of one 4x4 tile d (row-major); component k goes to v[k * stride].
template <typename scalar_t>
NNL_HD NNL_INLINE void winograd_input_tile(const scalar_t* d, scalar_t* v, long long stride) {
  scalar_t t[16];  // B^T d
  for (int s = 0; s < 4; ++s) winograd_bt(d[s], d[4 + s], d[8 + s], d[12 + s], t + s, 4);
  for (int r = 0; r < 4; ++r) {
    winograd_bt(t[4 * r], t[4 * r + 1], t[4 * r + 2], t[4 * r + 3], v + 4 * r * stride, stride);
  }
}

// u = G g G^T of one 3x3 filter g (row-major); component k goes to u[k * stride].
template <typename scalar_t>
NNL_HD NNL_INLINE void winograd_filter_tile(const scalar_t* g, scalar_t* u, long long stride) {
  scalar_t t[12];  // G g: 4 rows of 3
  for (int j = 0; j < 3; ++j) winograd_g(g[j], g[3 + j], g[6 + j], t + j, 3);
  for (int r = 0; r < 4; ++r) {
    winograd_g(t[3 * r], t[3 * r + 1], t[3 * r + 2], u + 4 * r * stride, stride);
  }
}

// y = A^T m A of one tile whose component k is m[k * stride]: the 2x2
// outputs, row-major into y.
template <typename scalar_t>
NNL_HD NNL_INLINE void winograd_output_tile(const scalar_t* m, long long stride, scalar_t* y) {
  scalar_t t[8];  // A^T m: 2 rows of 4
  for (int s = 0; s < 4; ++s) {
    winograd_at(m[s * stride], m[(4 + s) * stride], m[(8 + s) * stride], m[(12 + s) * stride],
                t + s, 4);
  }
  for (int a = 0; a < 2; ++a) winograd_at(t[4 * a], t[4 * a + 1], t[4 * a + 2], t[4 * a + 3],
                                          y + 2 * a, 1);
}

// dm = A dy A^T, the adjoint of winograd_output_tile: dy is the 2x2 output
// gradient of one tile (row-major); component k goes to dm[k * stride].
template <typename scalar_t>
NNL_HD NNL_INLINE void winograd_output_adjoint_tile(const scalar_t* dy, scalar_t* dm,
                                                    long long stride) {
  scalar_t t[8];  // A dy: 4 rows of 2
  for (int b = 0; b < 2; ++b) winograd_a(dy[b], dy[2 + b], t + b, 2);
  for (int r = 0; r < 4; ++r) winograd_a(t[2 * r], t[2 * r + 1], dm + 4 * r * stride, stride);
}

// dg = G^T du G, the adjoint of winograd_filter_tile: du's component k is
// du[k * stride]; the 3x3 result goes row-major into dg.
template <typename scalar_t>
NNL_HD NNL_INLINE void winograd_filter_adjoint_tile(const scalar_t* du, long long stride,
                                                    scalar_t* dg) {
  scalar_t t[12];  // G^T du: 3 rows of 4
  for (int s = 0; s < 4; ++s) {
    winograd_gt(du[s * stride], du[(4 + s) * stride], du[(8 + s) * stride],
                du[(12 + s) * stride], t + s, 4);
  }
  for (int i = 0; i < 3; ++i) winograd_gt(t[4 * i], t[4 * i + 1], t[4 * i + 2], t[4 * i + 3],
                                          dg + 3 * i, 1);
}

// The 2x2 output gradient of tile (ti, tj) of one plane of dy (out_h x out_w:
// the tiling's height and width), zero past the plane's edge.
template <typename scalar_t>
NNL_HD NNL_INLINE void winograd_load_output_tile(const scalar_t* plane,
                                                 const winograd_tiling& t, int ti, int tj,
                                                 scalar_t* dy) {
  for (int a = 0; a < 2; ++a) {
    const int h = 2 * ti + a;
    for (int b = 0; b < 2; ++b) {
      const int w = 2 * tj + b;
      dy[2 * a + b] = (h < t.height && w < t.width)
                          ? plane[(long long)h * t.width + w] : scalar_t(0);
    }
  }
}

// Stores the 2x2 outputs y of tile (ti, tj) into one plane (height x width of
// the tiling), dropping those past its edge.
template <typename scalar_t>
NNL_HD NNL_INLINE void winograd_store_output_tile(const scalar_t* y, const winograd_tiling& t,
                                                  int ti, int tj, scalar_t* plane) {
  for (int a = 0; a < 2; ++a) {
    const int h = 2 * ti + a;
    for (int b = 0; b < 2; ++b) {
      const int w = 2 * tj + b;
      if (h < t.height && w < t.width) plane[(long long)h * t.width + w] = y[2 * a + b];
    }
  }
}

#endif  // NNLITE_WINOGRAD_CUH
