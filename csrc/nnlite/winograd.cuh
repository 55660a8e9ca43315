// Winograd convolution F(m x m, 3x3) (Lavin & Gray 2015), m = 2 or 4: the
// transforms only.
//
// A 3x3, stride-1 convolution is computed over m x m output tiles, each from
// the alpha x alpha input tile that covers it (alpha = m + 2; tiles start
// every m pixels and overlap by 2). One output tile is
//
//   Y = A^T [ sum_c (G g_kc G^T) .* (B^T d_c B) ] A,
//
// so the alpha^2 products of the transformed tiles, summed over the input
// channels c, are alpha^2 independent GEMMs (one per component), done by BLAS
// / cuBLAS between the transform kernels:
//
//   v[alpha^2][channels][tiles]         = B^T d B        winograd_input_tile
//   u[alpha^2][out_channels][channels]  = G g G^T        winograd_filter_tile
//   m[alpha^2][out_channels][tiles]     = u[c] x v[c]    (batched GEMM, not here)
//   y tile                              = A^T m A        winograd_output_tile
//
// The matrices are the paper's. F(2x2, 3x3), 16 products per 4 outputs (2.25x
// fewer multiplications than direct):
//
//         [1  0 -1  0]        [ 1    0    0 ]
//   B^T = [0  1  1  0]    G = [1/2  1/2  1/2]    A^T = [1 1  1  0]
//         [0 -1  1  0]        [1/2 -1/2  1/2]          [0 1 -1 -1]
//         [0  1  0 -1]        [ 0    0    1 ]
//
// F(4x4, 3x3), 36 products per 16 outputs (4x fewer), points 0, +-1, +-2:
//
//         [4  0 -5  0 1 0]        [ 1/4     0     0 ]
//         [0 -4 -4  1 1 0]        [-1/6  -1/6  -1/6 ]          [1 1  1 1  1 0]
//   B^T = [0  4 -4 -1 1 0]    G = [-1/6   1/6  -1/6 ]    A^T = [0 1 -1 2 -2 0]
//         [0 -2 -1  2 1 0]        [1/24  1/12   1/6 ]          [0 1  1 4  4 0]
//         [0  2 -1 -2 1 0]        [1/24 -1/12   1/6 ]          [0 1 -1 8 -8 1]
//         [0  4  0 -5 0 1]        [  0     0     1  ]
//
// Component (r, s) of a transformed tile is stored at index alpha * r + s,
// `stride` elements apart, so each component is one contiguous matrix. A tile
// (image, ti, tj) is tile number (image * tiles_h + ti) * tiles_w + tj; it
// reads input rows m * ti - pad_top ... + alpha - 1 (zero outside the image)
// and writes output rows m * ti ... + m - 1 (those past out_h are dropped).
//
// The weight gradient uses the adjoints: dm = A dy A^T (winograd_output_
// adjoint_tile, dy zero past the output's edge) and dg = G^T du G
// (winograd_filter_adjoint_tile), with du = sum over tiles of dm .* v, again
// a batched GEMM. Every value is computed by exactly one thread from a fixed
// sequence of operations: no atomics, the same bits on every run and build.
#ifndef NNLITE_WINOGRAD_CUH
#define NNLITE_WINOGRAD_CUH

#include "nnlite/portable.cuh"

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

// The 1-D transforms of each variant, one output at a time: output k of
// x -> M x for M = B^T (alpha -> alpha), G (3 -> alpha), A^T (alpha -> m) and
// the adjoints A (m -> alpha), G^T (alpha -> 3), where x[i] is in[i * is].
// Every 2-D transform applies one along the columns of a tile, then along its
// rows, output by output, in both builds: the GPU threads each compute one
// row of a tile (few registers), the host loops whole rows of tiles at once;
// each output is the same expression in both, so the same bits.

// F(2x2, 3x3). The halves of G are exact in binary floating point.
struct winograd_f2 {
  enum { m = 2, alpha = 4 };

  template <typename T>
  static NNL_HD NNL_INLINE T bt(int k, const T* in, long long is) {
    switch (k) {
      case 0: return in[0] - in[2 * is];
      case 1: return in[is] + in[2 * is];
      case 2: return in[2 * is] - in[is];
      default: return in[is] - in[3 * is];
    }
  }

  template <typename T>
  static NNL_HD NNL_INLINE T g(int k, const T* in, long long is) {
    switch (k) {
      case 0: return in[0];
      case 1: return T(0.5) * (in[0] + in[is] + in[2 * is]);
      case 2: return T(0.5) * (in[0] - in[is] + in[2 * is]);
      default: return in[2 * is];
    }
  }

  template <typename T>
  static NNL_HD NNL_INLINE T at(int k, const T* in, long long is) {
    return k == 0 ? in[0] + in[is] + in[2 * is] : in[is] - in[2 * is] - in[3 * is];
  }

  template <typename T>
  static NNL_HD NNL_INLINE T a(int k, const T* in, long long is) {
    switch (k) {
      case 0: return in[0];
      case 1: return in[0] + in[is];
      case 2: return in[0] - in[is];
      default: return -in[is];
    }
  }

  template <typename T>
  static NNL_HD NNL_INLINE T gt(int k, const T* in, long long is) {
    switch (k) {
      case 0: return in[0] + T(0.5) * (in[is] + in[2 * is]);
      case 1: return T(0.5) * (in[is] - in[2 * is]);
      default: return T(0.5) * (in[is] + in[2 * is]) + in[3 * is];
    }
  }
};

// F(4x4, 3x3). B^T and A^T are small integers; G's sixths and twenty-fourths
// are multiplications by the rounded reciprocals (divisions took 3x longer).
struct winograd_f4 {
  enum { m = 4, alpha = 6 };

  template <typename T>
  static NNL_HD NNL_INLINE T bt(int k, const T* in, long long is) {
    const T d1 = in[is], d2 = in[2 * is], d3 = in[3 * is], d4 = in[4 * is];
    switch (k) {
      case 0: return T(4) * in[0] - T(5) * d2 + d4;
      case 1: return d3 + d4 - T(4) * (d1 + d2);
      case 2: return d4 - d3 + T(4) * (d1 - d2);
      case 3: return d4 - d2 + T(2) * (d3 - d1);
      case 4: return d4 - d2 + T(2) * (d1 - d3);
      default: return T(4) * d1 - T(5) * d3 + in[5 * is];
    }
  }

  template <typename T>
  static NNL_HD NNL_INLINE T g(int k, const T* in, long long is) {
    const T g0 = in[0], g1 = in[is], g2 = in[2 * is];
    const T sixth = T(1.0 / 6.0), twenty_fourth = T(1.0 / 24.0);
    switch (k) {
      case 0: return T(0.25) * g0;
      case 1: return -sixth * (g0 + g1 + g2);
      case 2: return -sixth * (g0 - g1 + g2);
      case 3: return twenty_fourth * (g0 + T(2) * g1 + T(4) * g2);
      case 4: return twenty_fourth * (g0 - T(2) * g1 + T(4) * g2);
      default: return g2;
    }
  }

  template <typename T>
  static NNL_HD NNL_INLINE T at(int k, const T* in, long long is) {
    switch (k) {
      case 0: return in[0] + (in[is] + in[2 * is]) + (in[3 * is] + in[4 * is]);
      case 1: return (in[is] - in[2 * is]) + T(2) * (in[3 * is] - in[4 * is]);
      case 2: return (in[is] + in[2 * is]) + T(4) * (in[3 * is] + in[4 * is]);
      default: return (in[is] - in[2 * is]) + T(8) * (in[3 * is] - in[4 * is]) + in[5 * is];
    }
  }

  template <typename T>
  static NNL_HD NNL_INLINE T a(int k, const T* in, long long is) {
    const T y0 = in[0], y1 = in[is], y2 = in[2 * is], y3 = in[3 * is];
    switch (k) {
      case 0: return y0;
      case 1: return y0 + y1 + y2 + y3;
      case 2: return y0 - y1 + y2 - y3;
      case 3: return y0 + T(2) * y1 + T(4) * y2 + T(8) * y3;
      case 4: return y0 - T(2) * y1 + T(4) * y2 - T(8) * y3;
      default: return y3;
    }
  }

  template <typename T>
  static NNL_HD NNL_INLINE T gt(int k, const T* in, long long is) {
    const T d1 = in[is], d2 = in[2 * is], d3 = in[3 * is], d4 = in[4 * is];
    const T sixth = T(1.0 / 6.0), twelfth = T(1.0 / 12.0), twenty_fourth = T(1.0 / 24.0);
    switch (k) {
      case 0: return T(0.25) * in[0] - sixth * (d1 + d2) + twenty_fourth * (d3 + d4);
      case 1: return sixth * (d2 - d1) + twelfth * (d3 - d4);
      default: return sixth * (d3 + d4 - d1 - d2) + in[5 * is];
    }
  }
};

// The tile transforms, one row of the result at a time (a GPU thread's work;
// the host loops do whole rows of tiles with the same expressions). Each
// takes its tile through load(i, j), a functor giving element (i, j).

// Row r of v = B^T d B of one input tile: component alpha * r + q goes to
// v[(alpha * r + q) * stride].
template <typename W, typename scalar_t, typename Tile>
NNL_HD NNL_INLINE void winograd_input_row(const Tile& d, int r, scalar_t* v, long long stride) {
  scalar_t column[W::alpha], row[W::alpha];  // a column of d; row r of B^T d
  for (int s = 0; s < W::alpha; ++s) {
    for (int i = 0; i < W::alpha; ++i) column[i] = d(i, s);
    row[s] = W::bt(r, column, 1);
  }
  for (int q = 0; q < W::alpha; ++q) v[(W::alpha * r + q) * stride] = W::bt(q, row, 1);
}

// Row r of u = G g G^T of one 3x3 filter g (row-major): component alpha * r
// + q goes to u[(alpha * r + q) * stride].
template <typename W, typename scalar_t>
NNL_HD NNL_INLINE void winograd_filter_row(const scalar_t* g, int r, scalar_t* u,
                                           long long stride) {
  scalar_t row[3];  // row r of G g
  for (int j = 0; j < 3; ++j) row[j] = W::g(r, g + j, 3);
  for (int q = 0; q < W::alpha; ++q) u[(W::alpha * r + q) * stride] = W::g(q, row, 1);
}

// Row a of y = A^T m A of one tile whose component k is m[k * stride]: its
// first `count` outputs (those inside the plane) into y[0 .. count).
template <typename W, typename scalar_t>
NNL_HD NNL_INLINE void winograd_output_row(const scalar_t* m, long long stride, int a,
                                           scalar_t* y, int count) {
  scalar_t row[W::alpha];  // row a of A^T m
  for (int s = 0; s < W::alpha; ++s) row[s] = W::at(a, m + s * stride, W::alpha * stride);
  for (int b = 0; b < count; ++b) y[b] = W::at(b, row, 1);
}

// Row r of dm = A dy A^T, the adjoint of the output transform: dy is the m x
// m output gradient of one tile (row-major); component alpha * r + q goes to
// dm[(alpha * r + q) * stride].
template <typename W, typename scalar_t>
NNL_HD NNL_INLINE void winograd_output_adjoint_row(const scalar_t* dy, int r, scalar_t* dm,
                                                   long long stride) {
  scalar_t row[W::m];  // row r of A dy
  for (int b = 0; b < W::m; ++b) row[b] = W::a(r, dy + b, W::m);
  for (int q = 0; q < W::alpha; ++q) dm[(W::alpha * r + q) * stride] = W::a(q, row, 1);
}

// Row i of dg = G^T du G, the adjoint of the filter transform: du's component
// k is du[k * stride]; the 3 values go to dg[0 .. 3).
template <typename W, typename scalar_t>
NNL_HD NNL_INLINE void winograd_filter_adjoint_row(const scalar_t* du, long long stride, int i,
                                                   scalar_t* dg) {
  scalar_t row[W::alpha];  // row i of G^T du
  for (int s = 0; s < W::alpha; ++s) row[s] = W::gt(i, du + s * stride, W::alpha * stride);
  for (int j = 0; j < 3; ++j) dg[j] = W::gt(j, row, 1);
}

// Element (i, j) of the alpha x alpha input tile (ti, tj) of one plane, zero
// in the padding. Positions are formed in 64 bits: m * ti - pad_top may pass
// the int range even though each argument fits an int.
template <typename W, typename scalar_t>
struct winograd_input_tile {
  const scalar_t* plane;
  winograd_tiling t;
  long long row0, col0;
  NNL_HD NNL_INLINE winograd_input_tile(const scalar_t* plane_, const winograd_tiling& t_,
                                        int ti, int tj)
      : plane(plane_), t(t_), row0((long long)W::m * ti - t_.pad_top),
        col0((long long)W::m * tj - t_.pad_left) {}
  NNL_HD NNL_INLINE scalar_t operator()(int i, int j) const {
    const long long h = row0 + i, w = col0 + j;
    return (h >= 0 && h < t.height && w >= 0 && w < t.width) ? plane[h * t.width + w]
                                                             : scalar_t(0);
  }
};

// Output row m * ti + a of a plane (height x width of the tiling), or -1 when
// it is past the plane's edge.
template <typename W>
NNL_HD NNL_INLINE long long winograd_output_position(int tile, int offset, int size) {
  const long long position = (long long)W::m * tile + offset;
  return position < size ? position : -1;
}

#endif  // NNLITE_WINOGRAD_CUH
