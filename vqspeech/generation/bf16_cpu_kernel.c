/* Cached WaveNet generation on x86-64 CPUs, with bfloat16 weights and product inputs.
 *
 * The recursion is vqspeech/generation/step_weights.py's, for one thread's block of N batch
 * elements (the folded segments of an utterance):
 *
 *   h (N, 2G)   = cond[frame] + [x_{t-d} | x_t] (N, 2R) @ w_cat (2R, 2G)
 *   z (N, G)    = tanh(h[:, :G]) * sigmoid(h[:, G:])
 *   [skip | x] += z (N, G) @ [w_skip | w_res] (G, S+R)     (x gets b_res first, then * sqrt(1/2))
 *   logits      = b2 + relu(b1 + relu(skip) @ w1) @ w2
 *
 * Every product takes bfloat16 inputs and weights and accumulates in float32; the residual
 * stream, the skip sum, the gates and the draw stay float32/float64.  Weights come packed by the
 * Python side: a (K, M) matrix becomes column tiles of 64 (the last one narrower), each
 * (K/2, 64, 2), so one 64-byte load holds 16 output columns for two consecutive inputs k, k+1
 * and each column tile is one contiguous stream.
 *
 * Built on first use by vqspeech/generation/bf16_cpu_backend.py and called through ctypes, which
 * releases the GIL: one Python thread per block runs one core.  One source, three builds:
 *   - bf16-cpu (-mavx512bf16): the products are VDPBF16PS, 32 multiply-adds per instruction,
 *     the input pair one 32-bit broadcast;
 *   - amx-cpu (-DVQ_AMX): the products run on AMX tiles (gemm_init below);
 *   - avx2-cpu (-DVQ_AVX2 -mavx2 -mfma), for the many CPUs without AVX-512: AVX2 has no bfloat16
 *     arithmetic, so the product inputs are kept as float32 numbers already rounded to bfloat16
 *     (type act), and each packed weight pair is widened to two float32 vectors in registers
 *     (a shift and a mask).  A product of two bfloat16 numbers is exact in float32, so FMA sums
 *     the same products VDPBF16PS does, in another order.
 * Everything outside the products is the same code on 16 floats (AVX-512) or 8 (AVX2), through
 * the v_* helpers below.
 */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define MAX_UNROLL_ROWS 4   /* batch rows per register block: 4 rows x 4 vectors = 16 accumulators (AVX2: 4 x 2 = 8) */

typedef uint16_t bf16;

/* float32 -> bfloat16, round to nearest even (what VCVTNE2PS2BF16 does for finite numbers). */
static inline bf16 to_bf16_scalar(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (bf16)(u >> 16);
}

#ifdef VQ_AVX2
/* Vectors of 8 floats; product inputs are float32 holding bfloat16 values (low 16 bits zero). */
#define VW 8
typedef __m256 vf;
typedef float act;
static inline vf v_load(const float *p) { return _mm256_loadu_ps(p); }
static inline void v_store(float *p, vf v) { _mm256_storeu_ps(p, v); }
static inline vf v_set1(float x) { return _mm256_set1_ps(x); }
static inline vf v_zero(void) { return _mm256_setzero_ps(); }
static inline vf v_add(vf a, vf b) { return _mm256_add_ps(a, b); }
static inline vf v_sub(vf a, vf b) { return _mm256_sub_ps(a, b); }
static inline vf v_mul(vf a, vf b) { return _mm256_mul_ps(a, b); }
static inline vf v_min(vf a, vf b) { return _mm256_min_ps(a, b); }
static inline vf v_max(vf a, vf b) { return _mm256_max_ps(a, b); }
static inline vf v_fmadd(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
static inline vf v_fnmadd(vf a, vf b, vf c) { return _mm256_fnmadd_ps(a, b, c); }
static inline vf v_floor(vf a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC); }
/* 2^n for whole numbers n in float32's exponent range, built in the exponent bits. */
static inline vf v_pow2(vf n) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23));
}
/* 1 / d: a true division (AVX2's VRCPPS has 12 bits; with one Newton step still short of float32's 24). */
static inline vf v_recip(vf d) { return _mm256_div_ps(_mm256_set1_ps(1.0f), d); }
static inline float v_reduce_max(vf v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}
/* The sum of v's 8 floats in float64. */
static inline double v_sum_f64(vf v) {
    __m256d s = _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
    __m128d h = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
    return _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
}
/* dst[0:8] = v rounded to bfloat16 (nearest even), kept as float32. */
static inline void v_store_act(act *dst, vf v) {
    __m256i u = _mm256_castps_si256(v);
    __m256i odd = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    u = _mm256_add_epi32(u, _mm256_add_epi32(odd, _mm256_set1_epi32(0x7FFF)));
    _mm256_storeu_ps(dst, _mm256_castsi256_ps(_mm256_and_si256(u, _mm256_set1_epi32((int)0xFFFF0000u))));
}
static inline act act_scalar(float f) {
    uint32_t u = (uint32_t)to_bf16_scalar(f) << 16;
    float r;
    memcpy(&r, &u, 4);
    return r;
}
#else
/* Vectors of 16 floats; product inputs are bfloat16. */
#define VW 16
typedef __m512 vf;
typedef bf16 act;
static inline vf v_load(const float *p) { return _mm512_loadu_ps(p); }
static inline void v_store(float *p, vf v) { _mm512_storeu_ps(p, v); }
static inline vf v_set1(float x) { return _mm512_set1_ps(x); }
static inline vf v_zero(void) { return _mm512_setzero_ps(); }
static inline vf v_add(vf a, vf b) { return _mm512_add_ps(a, b); }
static inline vf v_sub(vf a, vf b) { return _mm512_sub_ps(a, b); }
static inline vf v_mul(vf a, vf b) { return _mm512_mul_ps(a, b); }
static inline vf v_min(vf a, vf b) { return _mm512_min_ps(a, b); }
static inline vf v_max(vf a, vf b) { return _mm512_max_ps(a, b); }
static inline vf v_fmadd(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
static inline vf v_fnmadd(vf a, vf b, vf c) { return _mm512_fnmadd_ps(a, b, c); }
static inline vf v_floor(vf a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC); }
static inline vf v_pow2(vf n) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23));
}
/* 1 / d: VRCP14PS and a Newton step, r (2 - d r) (relative error ~2^-23, float32's), rather than
 * a division, which was the gates' slowest instruction; without the Newton step (2^-14) the gates'
 * bfloat16 rounding would go the other way often enough to move the logits visibly. */
static inline vf v_recip(vf d) {
    __m512 r = _mm512_rcp14_ps(d);
    return _mm512_mul_ps(r, _mm512_fnmadd_ps(d, r, _mm512_set1_ps(2.0f)));
}
static inline float v_reduce_max(vf v) { return _mm512_reduce_max_ps(v); }
static inline double v_sum_f64(vf v) {
    __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
    __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    return _mm512_reduce_add_pd(_mm512_add_pd(lo, hi));
}
static inline void v_store_act(act *dst, vf v) { _mm256_storeu_si256((__m256i *)dst, (__m256i)_mm512_cvtneps_pbh(v)); }
static inline act act_scalar(float f) { return to_bf16_scalar(f); }
#endif

/* dst[i] = bf16(src[i]) for i < n, or bf16(max(src[i], 0)) when relu. */
static void to_act(const float *src, act *dst, int n, int relu) {
    const vf lo = v_set1(relu ? 0.0f : -INFINITY);
    int i = 0;
    for (; i + VW <= n; i += VW) v_store_act(dst + i, v_max(v_load(src + i), lo));
    for (; i < n; i++) dst[i] = act_scalar(relu && src[i] < 0.0f ? 0.0f : src[i]);
}

#ifdef VQ_AMX
/* Built with -DVQ_AMX -mamx-tile -mamx-bf16, the products run on AMX tiles instead: TDPBF16PS
 * multiplies a (rows <= 16, 32) bfloat16 tile by a (32, 16) one into a (rows, 16) float32 tile,
 * 16 x 16 x 32 multiply-adds per instruction.  The packed column tiles above are already
 * TDPBF16PS's B layout: rows of 16 columns x 2 inputs, 64 bytes, 4 tw bytes apart.  Every product
 * of a block has the block's N rows, so the tile shapes are set once per block (amx_configure).
 * Up to 16 rows, tiles 0-3 hold the float32 sums of 64 output columns, tile 4 the inputs' 32-wide
 * slice, tiles 5-7 the weights.  17 to 32 rows take two row tiles, so that each weight tile
 * loaded serves both: tiles 0-1 and 2-3 hold 32 columns of the first 16 rows and of the rest, 4
 * and 5 their inputs, 6 and 7 the weights (it saves little: a tile product's cost grows with its
 * rows, benchmarks/cpu_kernel_layers.py).  K must be a multiple of 32 (the Python side pads the channels to 32s). */
#include <sys/syscall.h>
#include <unistd.h>

#define ARCH_REQ_XCOMP_PERM 0x1023 /* Linux: ask for an extended state component... */
#define XFEATURE_XTILEDATA 18       /* ...the tile data, which a process must request before its first tile use */
#define MAX_BLOCK_ROWS 32

int vq_amx_request(void) { return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0 ? 0 : -1; }

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} TileConfig;

static void amx_configure(int N) {
    TileConfig c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int t = 0; t < 8; t++) c.colsb[t] = 64;
    if (N <= 16) {
        for (int t = 0; t < 8; t++) c.rows[t] = t < 5 ? N : 16;
    } else {
        const uint8_t rows[8] = {16, 16, N - 16, N - 16, 16, N - 16, 16, 16};
        memcpy(c.rows, rows, 8);
    }
    _tile_loadconfig(&c);
}

/* Ask for tile state, then multiply known tiles: 0 when the product comes out right, 3 when
 * the request is refused, 4 when the product is wrong (1 and 2 are Python's own exit codes).
 * The backend runs it in a child process first, so a machine that advertises AMX but faults on
 * it costs a child, not the caller. */
int vq_amx_probe(void) {
    if (vq_amx_request() != 0) return 3;
    bf16 a[16 * 32], b[16 * 32];
    float c[16 * 16];
    for (int i = 0; i < 16 * 32; i++) {
        a[i] = to_bf16_scalar((float)(i % 7) - 3.0f);
        b[i] = to_bf16_scalar((float)(i % 5) - 2.0f);
    }
    memset(c, 0, sizeof c);
    amx_configure(16);
    _tile_loadd(0, c, 64);
    _tile_loadd(4, a, 64);
    _tile_loadd(5, b, 64);
    _tile_dpbf16ps(0, 4, 5);
    _tile_stored(0, c, 64);
    _tile_release();
    /* c[r][n] = sum over k of a[r][k] b[k/2][n][k%2]: small integers, exact in float32. */
    for (int r = 0; r < 16; r++)
        for (int n = 0; n < 16; n++) {
            float want = 0.0f;
            for (int k = 0; k < 32; k++)
                want += (float)(((r * 32 + k) % 7) - 3) * (float)((((k / 2) * 32 + 2 * n + k % 2) % 5) - 2);
            if (c[r * 16 + n] != want) return 4;
        }
    return 0;
}

/* gemm_init's 17-to-32-row form (I has ldi != 0): passes of 32 columns, each inside one packed
 * column tile, with the weight tiles shared by the two row tiles. */
static void gemm_two_row_tiles(const act *A, int lda, const bf16 *W, int width, const float *I, long ldi,
                               float *C, int ldc, int K, int M) {
    const long cs = (long)ldc * 4, is = ldi * 4, as = (long)lda * 2;
    const float *I1 = I + 16 * ldi;
    float *C1 = C + 16L * ldc;
    const act *A1 = A + 16L * lda;
    for (int m = 0; m < M; m += 32) {
        const int t0 = m / 64 * 64, off = m - t0;
        const int tw = width - t0 < 64 ? width - t0 : 64;
        int cols = M - m < tw - off ? M - m : tw - off;
        const int V = (cols < 32 ? cols : 32) / 16;
        const long ws = (long)tw * 4;
        _tile_loadd(0, I + m, is);
        _tile_loadd(2, I1 + m, is);
        if (V > 1) {
            _tile_loadd(1, I + m + 16, is);
            _tile_loadd(3, I1 + m + 16, is);
        }
        const bf16 *w = W + (long)t0 * K + 2 * off;
        for (int k = 0; k < K; k += 32, w += 32 * tw) {
            _tile_loadd(4, A + k, as);
            _tile_loadd(5, A1 + k, as);
            _tile_loadd(6, w, ws);
            _tile_dpbf16ps(0, 4, 6);
            _tile_dpbf16ps(2, 5, 6);
            if (V > 1) {
                _tile_loadd(7, w + 32, ws);
                _tile_dpbf16ps(1, 4, 7);
                _tile_dpbf16ps(3, 5, 7);
            }
        }
        _tile_stored(0, C + m, cs);
        _tile_stored(2, C1 + m, cs);
        if (V > 1) {
            _tile_stored(1, C + m + 16, cs);
            _tile_stored(3, C1 + m + 16, cs);
        }
    }
}

/* C (N, M) = I (N, M; row stride ldi, 0: one row for all) + A (N, K) @ W[:, :M] for W (K, width)
 * packed in column tiles of 64 (see pack_bf16): tile j is (K/2, tw_j, 2) and starts at W + 64 j K.
 * K % 32 == 0, M % 16 == 0, M <= width, N <= 32 (amx_configure(N) done). */
static void gemm_init(const act *A, int lda, const bf16 *W, int width, const float *I, long ldi, float *C,
                      int ldc, int N, int K, int M) {
    if (ldi == 0) { /* a bias row for every output row: tiles load rows at a stride, so lay them out */
        for (int n = 0; n < N; n++) memcpy(C + (long)n * ldc, I, M * sizeof(float));
        I = C;
        ldi = ldc;
    }
    if (N > 16) {
        gemm_two_row_tiles(A, lda, W, width, I, ldi, C, ldc, K, M);
        return;
    }
    const long cs = (long)ldc * 4, is = ldi * 4, as = (long)lda * 2;
    for (int m = 0; m < M; m += 64) {
        const int tw = width - m < 64 ? width - m : 64;
        const int V = (M - m < tw ? M - m : tw) / 16;
        const long ws = (long)tw * 4;
        const float *i0 = I + m;
        _tile_loadd(0, i0, is);
        if (V > 1) _tile_loadd(1, i0 + 16, is);
        if (V > 2) _tile_loadd(2, i0 + 32, is);
        if (V > 3) _tile_loadd(3, i0 + 48, is);
        const bf16 *w = W + (long)m * K;
        for (int k = 0; k < K; k += 32, w += 32 * tw) {
            _tile_loadd(4, A + k, as);
            _tile_loadd(5, w, ws);
            _tile_dpbf16ps(0, 4, 5);
            if (V > 1) { _tile_loadd(6, w + 32, ws); _tile_dpbf16ps(1, 4, 6); }
            if (V > 2) { _tile_loadd(7, w + 64, ws); _tile_dpbf16ps(2, 4, 7); }
            if (V > 3) { _tile_loadd(5, w + 96, ws); _tile_dpbf16ps(3, 4, 5); }
        }
        float *c0 = C + m;
        _tile_stored(0, c0, cs);
        if (V > 1) _tile_stored(1, c0 + 16, cs);
        if (V > 2) _tile_stored(2, c0 + 32, cs);
        if (V > 3) _tile_stored(3, c0 + 48, cs);
    }
}
#elif defined(VQ_AVX2)
/* C[:, 0:16] (rows, 16) = I[:, 0:16] + A (rows, K) @ W[:, 0:16] (I may be C), for w pointing at
 * 16 columns of a packed column tile: (K/2, tw, 2), each input pair's row 2 tw apart; rows <=
 * MAX_UNROLL_ROWS.  One 32-byte load holds 8 columns x 2 inputs: input k's weights are each
 * 32-bit lane shifted left 16, input k+1's the lane with its low half masked off, both then
 * float32.  The inputs are float32 already, one broadcast load each.  4 rows x 2 vectors = 8
 * accumulators and 4 widened weight vectors fit AVX2's 16 registers. */
static inline __attribute__((always_inline)) void gemm_tile16(const act *A, int lda, const bf16 *w, int tw,
                                                              const float *I, long ldi, float *C, int ldc,
                                                              int rows, int K) {
    const __m256i high = _mm256_set1_epi32((int)0xFFFF0000u);
    __m256 acc[MAX_UNROLL_ROWS][2];
    for (int r = 0; r < rows; r++) {
        acc[r][0] = _mm256_loadu_ps(I + r * ldi);
        acc[r][1] = _mm256_loadu_ps(I + r * ldi + 8);
    }
    for (int kp = 0; kp < K / 2; kp++, w += 2 * tw) {
        const __m256i p0 = _mm256_loadu_si256((const __m256i *)w), p1 = _mm256_loadu_si256((const __m256i *)(w + 16));
        const __m256 even0 = _mm256_castsi256_ps(_mm256_slli_epi32(p0, 16));
        const __m256 even1 = _mm256_castsi256_ps(_mm256_slli_epi32(p1, 16));
        const __m256 odd0 = _mm256_castsi256_ps(_mm256_and_si256(p0, high));
        const __m256 odd1 = _mm256_castsi256_ps(_mm256_and_si256(p1, high));
        for (int r = 0; r < rows; r++) {
            const __m256 ae = _mm256_broadcast_ss(A + r * lda + 2 * kp);
            const __m256 ao = _mm256_broadcast_ss(A + r * lda + 2 * kp + 1);
            acc[r][0] = _mm256_fmadd_ps(ae, even0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(ae, even1, acc[r][1]);
            acc[r][0] = _mm256_fmadd_ps(ao, odd0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(ao, odd1, acc[r][1]);
        }
    }
    for (int r = 0; r < rows; r++) {
        _mm256_storeu_ps(C + r * ldc, acc[r][0]);
        _mm256_storeu_ps(C + r * ldc + 8, acc[r][1]);
    }
}

/* C (N, M) = I (N, M; row stride ldi, 0: one row for all) + A (N, K) @ W[:, :M], W packed as
 * for the other builds.  16-column strips outside, row blocks inside: a strip (8 KB for K = 256)
 * stays in L1 while every row block passes over it. */
static void gemm_init(const act *A, int lda, const bf16 *W, int width, const float *I, long ldi, float *C,
                      int ldc, int N, int K, int M) {
    for (int m = 0; m < M; m += 64) {
        const int tw = width - m < 64 ? width - m : 64;
        const int cols = M - m < tw ? M - m : tw;
        for (int c = 0; c < cols; c += 16)
            for (int n = 0; n < N; n += MAX_UNROLL_ROWS) {
                const act *a = A + (long)n * lda;
                const bf16 *w = W + (long)m * K + 2 * c;
                const float *i0 = I + n * ldi + m + c;
                float *c0 = C + (long)n * ldc + m + c;
                switch (N - n < MAX_UNROLL_ROWS ? N - n : MAX_UNROLL_ROWS) { /* constant rows: loops unroll */
                case 4: gemm_tile16(a, lda, w, tw, i0, ldi, c0, ldc, 4, K); break;
                case 3: gemm_tile16(a, lda, w, tw, i0, ldi, c0, ldc, 3, K); break;
                case 2: gemm_tile16(a, lda, w, tw, i0, ldi, c0, ldc, 2, K); break;
                default: gemm_tile16(a, lda, w, tw, i0, ldi, c0, ldc, 1, K); break;
                }
            }
    }
}
#else
/* C[:, m0:m0+16V] (rows, 16V) = I[:, m0:m0+16V] + A (rows, K) @ W[:, m0:m0+16V] (I may be C),
 * W pointing at the column tile that starts at m0: (K/2, tw, 2) contiguous, tw >= 16V; rows <=
 * MAX_UNROLL_ROWS.  Each weight load serves every row of the block, and the k loop streams the
 * tile in address order (the hardware prefetcher's best case: the 20-layer decoder is 2.3 MB of
 * weights, more than L2, so every step reads them from L3). */
static inline __attribute__((always_inline)) void gemm_tile(const act *A, int lda, const bf16 *W, int tw,
                                                            const float *I, long ldi, float *C, int ldc,
                                                            int rows, int K, int m0, int V) {
    __m512 acc[MAX_UNROLL_ROWS][4];
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < V; j++) acc[r][j] = _mm512_loadu_ps(I + r * ldi + m0 + 16 * j);
    const bf16 *w = W;
    for (int kp = 0; kp < K / 2; kp++, w += 2 * tw) {
        __m512bh wv[4];
        for (int j = 0; j < V; j++) wv[j] = (__m512bh)_mm512_loadu_si512((const void *)(w + 32 * j));
        for (int r = 0; r < rows; r++) {
            int32_t pair;
            memcpy(&pair, A + r * lda + 2 * kp, 4);
            __m512bh a = (__m512bh)_mm512_set1_epi32(pair);
            for (int j = 0; j < V; j++) acc[r][j] = _mm512_dpbf16_ps(acc[r][j], a, wv[j]);
        }
    }
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < V; j++) _mm512_storeu_ps(C + r * ldc + m0 + 16 * j, acc[r][j]);
}

/* gemm_tile with the row and vector counts as compile-time constants (so its loops unroll into
 * registers). */
static inline __attribute__((always_inline)) void gemm_tile_any(const act *A, int lda, const bf16 *W, int tw,
                                                                const float *I, long ldi, float *C, int ldc,
                                                                int rows, int K, int m0, int V) {
#define TILE(RR, VV) gemm_tile(A, lda, W, tw, I, ldi, C, ldc, RR, K, m0, VV)
#define ROWS(VV)                         \
    switch (rows) {                      \
    case 4: TILE(4, VV); break;          \
    case 3: TILE(3, VV); break;          \
    case 2: TILE(2, VV); break;          \
    default: TILE(1, VV); break;         \
    }
    switch (V) {
    case 4: ROWS(4); break;
    case 3: ROWS(3); break;
    case 2: ROWS(2); break;
    default: ROWS(1); break;
    }
#undef ROWS
#undef TILE
}

/* C (N, M) = I (N, M; row stride ldi) + A (N, K) @ W[:, :M] for W (K, width) packed in column
 * tiles of 64 (the last one narrower, a multiple of 16): tile j is (K/2, tw_j, 2) and starts at
 * W + 64 j K.  K even, M % 16 == 0, M <= width.  Column tiles outside, row blocks of
 * MAX_UNROLL_ROWS inside: a tile (16 KB for K = 128) stays in L1 while every row block passes
 * over it. */
static void gemm_init(const act *A, int lda, const bf16 *W, int width, const float *I, long ldi, float *C,
                      int ldc, int N, int K, int M) {
    for (int m = 0; m < M; m += 64) {
        const int tw = width - m < 64 ? width - m : 64;
        const int V = (M - m < tw ? M - m : tw) / 16;
        for (int n = 0; n < N; n += MAX_UNROLL_ROWS) {
            const int rows = N - n < MAX_UNROLL_ROWS ? N - n : MAX_UNROLL_ROWS;
            gemm_tile_any(A + (long)n * lda, lda, W + (long)m * K, tw, I + n * ldi, ldi, C + (long)n * ldc, ldc,
                          rows, K, m, V);
        }
    }
}
#endif

/* C (N, M) += A (N, K) @ W[:, :M]. */
static void gemm_acc(const act *A, int lda, const bf16 *W, int width, float *C, int ldc, int N, int K, int M) {
    gemm_init(A, lda, W, width, C, ldc, C, ldc, N, K, M);
}

/* out (N, M) = bias (M,) + relu(in (N, K; row stride ld_in)) @ W (K, M): an output layer.
 * buf (N, K) bf16 scratch holds the rounded inputs; every row starts from the bias (stride 0). */
static void relu_dense(const float *in, int ld_in, int K, act *buf, const bf16 *W, int M, const float *bias,
                       float *out, int N) {
    for (int n = 0; n < N; n++) to_act(in + (long)n * ld_in, buf + (long)n * K, K, 1);
    gemm_init(buf, K, W, M, bias, 0, out, M, N, K, M);
}

/* e^x for VW floats: Cephes expf's polynomial on x - n ln2, 2^n built in the exponent bits
 * (the same method as numba_backend._gates; max relative error ~2e-7). */
static inline vf v_exp(vf x) {
    x = v_min(v_max(x, v_set1(-87.0f)), v_set1(88.0f));
    const vf n = v_floor(v_fmadd(x, v_set1(1.44269504088896341f), v_set1(0.5f)));
    vf r = v_fnmadd(n, v_set1(0.693359375f), x);
    r = v_fnmadd(n, v_set1(-2.12194440e-4f), r);
    vf p = v_set1(1.9875691500E-4f);
    p = v_fmadd(p, r, v_set1(1.3981999507E-3f));
    p = v_fmadd(p, r, v_set1(8.3334519073E-3f));
    p = v_fmadd(p, r, v_set1(4.1665795894E-2f));
    p = v_fmadd(p, r, v_set1(1.6666665459E-1f));
    p = v_fmadd(p, r, v_set1(5.0000001201E-1f));
    p = v_fmadd(p, v_mul(r, r), v_add(r, v_set1(1.0f)));
    return v_mul(p, v_pow2(n));
}

/* z (G,) rounded to bfloat16 = tanh(h[:G]) * sigmoid(h[G:]), G % VW == 0:
 * tanh(a) = (1 - e^-2a) / (1 + e^-2a), sigmoid(b) = 1 / (1 + e^-b), one reciprocal for both. */
static void gates(const float *h, act *z, int G) {
    const vf one = v_set1(1.0f);
    for (int i = 0; i < G; i += VW) {
        const vf ta = v_exp(v_mul(v_load(h + i), v_set1(-2.0f)));
        const vf tb = v_exp(v_sub(v_zero(), v_load(h + G + i)));
        const vf r = v_recip(v_mul(v_add(one, ta), v_add(one, tb)));
        v_store_act(z + i, v_mul(v_sub(one, ta), r));
    }
}

/* One class from logits (Q,), Q % VW == 0: argmax, or the inverse CDF at u of
 * softmax(logits * inv_temp).  The weights come from v_exp in float32; the running sum is
 * float64 like the reference's, taken VW classes at a time to find the block where it passes
 * u * total, then class by class inside that block. */
static int draw(const float *logits, float *weights, int Q, double u, float inv_temp, int use_argmax) {
    vf mv = v_load(logits);
    for (int i = VW; i < Q; i += VW) mv = v_max(mv, v_load(logits + i));
    const float top = v_reduce_max(mv);
    if (use_argmax) {
        for (int i = 0; i < Q; i++)
            if (logits[i] == top) return i; /* the first maximum, like torch.argmax */
        return 0;
    }
    const vf m = v_set1(top), it = v_set1(inv_temp);
    double block_sum[Q / VW], total = 0.0;
    for (int i = 0; i < Q; i += VW) {
        const vf w = v_exp(v_mul(v_sub(v_load(logits + i), m), it));
        v_store(weights + i, w);
        block_sum[i / VW] = v_sum_f64(w);
        total += block_sum[i / VW];
    }
    const double target = u * total;
    double acc = 0.0;
    for (int b = 0; b < Q / VW; b++) {
        if (acc + block_sum[b] > target) {
            for (int i = VW * b; i < VW * b + VW; i++) {
                acc += weights[i];
                if (acc > target) return i;
            }
            return VW * b + VW - 1;
        }
        acc += block_sum[b];
    }
    return Q - 1;
}

/* The block's scratch arrays, as offsets in floats from the scratch base (a bfloat16 act
 * takes half a float); each array starts on a 16-float boundary. */
typedef struct { long queue, xin, zb, ab, h, state, o1, logits, weights, total; } Layout;

static long take(long *at, long floats) {
    long start = *at;
    *at += (floats + 15) / 16 * 16;
    return start;
}

/* Floats that n product inputs take. */
static long act_floats(long n) { return (n * (long)sizeof(act) + 3) / 4; }

static Layout layout(int N, int R, int G, int S, int Q, long queue_rows) {
    Layout y;
    long at = 0;
    y.queue = take(&at, act_floats(queue_rows * N * R)); /* (queue_rows, N, R) act */
    y.xin = take(&at, act_floats((long)N * 2 * R));       /* (N, 2R) act: [past | current] */
    y.zb = take(&at, act_floats((long)N * G));            /* (N, G) act gates */
    y.ab = take(&at, act_floats((long)N * S));            /* (N, S) act output-layer inputs */
    y.h = take(&at, (long)N * 2 * G);
    y.state = take(&at, (long)N * (S + R));             /* [skip | x] per element */
    y.o1 = take(&at, (long)N * S);
    y.logits = take(&at, (long)N * Q);
    y.weights = take(&at, Q);
    y.total = at;
    return y;
}

/* Scratch a block needs, in floats (every load and store is unaligned-safe; it need not be zeroed). */
long vq_bf16_scratch_floats(int N, int R, int G, int S, int Q, long queue_rows) {
    return layout(N, R, G, S, Q, queue_rows).total;
}

/* Generate batch elements b0 .. b0+N-1 of B into out (B, T) int64 [and logits_out (B, Q, T)].
 *
 * embed (Q, R) float32; w_cat (L, 2R x 2G), w_out (L, G x (S+R)), w1 (S x S), w2 (S x Q) bf16
 * packed in column tiles of 64 (see gemm_init); b_res (L, R); skip0 (S,)
 * the sum of the skip biases;
 * b1 (S,), b2 (Q,); cond (L, B, F, 2G) float32 with the conv bias folded in; dilations and
 * offsets (L,) / (L+1,) int64; uniforms (B, T) float64; teacher (B, T) int64 or NULL.
 * R, G, S and Q are the channel counts padded to multiples of 16 (zero weights; the padded
 * classes' logits -1e30), ``classes`` the real Q.
 * Returns 0, or -1 when a size is one the kernel does not handle. */
int vq_bf16_generate_block(int b0, int N, int B, int T, int F, int hop, int L, int R, int G, int S, int Q, int classes,
                           const float *embed, const bf16 *w_cat, const bf16 *w_out, const float *b_res,
                           const float *skip0, const bf16 *w1, const float *b1, const bf16 *w2, const float *b2,
                           const float *cond, const int64_t *dilations, const int64_t *offsets,
                           const double *uniforms, const int64_t *teacher, int64_t *out, float *logits_out,
                           float inv_temp, int use_argmax, int first_class, float *scratch) {
    if (R % 16 || G % 16 || S % 16 || Q % 16 || N < 1 || classes < 1 || classes > Q) return -1;
#ifdef VQ_AMX
    if (R % 32 || G % 32 || S % 32 || N > MAX_BLOCK_ROWS) return -1;
    amx_configure(N);
#endif
    const int G2 = 2 * G, SR = S + R;
    const long queue_rows = offsets[L];
    const Layout y = layout(N, R, G, S, Q, queue_rows);
    act *queue = (act *)(scratch + y.queue), *xin = (act *)(scratch + y.xin);
    act *zb = (act *)(scratch + y.zb), *ab = (act *)(scratch + y.ab);
    float *h = scratch + y.h, *state = scratch + y.state, *o1 = scratch + y.o1;
    float *logits = scratch + y.logits, *weights = scratch + y.weights;
    memset(queue, 0, (size_t)queue_rows * N * R * sizeof(act)); /* every layer starts from silence */
    const float scale = (float)sqrt(0.5);
    int prev[N];
    for (int n = 0; n < N; n++) prev[n] = first_class;

    for (int t = 0; t < T; t++) {
        const int frame = t / hop;
        for (int n = 0; n < N; n++) {
            memcpy(state + n * SR, skip0, S * sizeof(float));
            memcpy(state + n * SR + S, embed + (long)prev[n] * R, R * sizeof(float));
        }
        for (int l = 0; l < L; l++) {
            const long slot = offsets[l] + t % dilations[l];
            act *q = queue + slot * N * R;
            for (int n = 0; n < N; n++) {
                act *row = xin + (long)n * 2 * R;
                memcpy(row, q + n * R, R * sizeof(act));           /* past input */
                to_act(state + n * SR + S, row + R, R, 0);         /* current input */
                memcpy(q + n * R, row + R, R * sizeof(act));
            }
            /* The block's rows of cond are consecutive (stride F * 2G): the product starts from them. */
            gemm_init(xin, 2 * R, w_cat + (long)l * 2 * R * G2, G2, cond + (((long)l * B + b0) * F + frame) * G2,
                      (long)F * G2, h, G2, N, 2 * R, G2);
            for (int n = 0; n < N; n++) {
                gates(h + n * G2, zb + n * G, G);
                float *x = state + n * SR + S;
                for (int i = 0; i < R; i++) x[i] += b_res[l * R + i];
            }
            /* The last layer's residual columns are zeros (its output feeds nothing): skip them. */
            const int M = l < L - 1 ? SR : S;
            gemm_acc(zb, G, w_out + (long)l * G * SR, SR, state, SR, N, G, M);
            if (l < L - 1)
                for (int n = 0; n < N; n++) {
                    float *x = state + n * SR + S;
                    for (int i = 0; i < R; i++) x[i] *= scale;
                }
        }
        relu_dense(state, SR, S, ab, w1, S, b1, o1, N);     /* the skip sum is each state row's head */
        relu_dense(o1, S, S, ab, w2, Q, b2, logits, N);
        for (int n = 0; n < N; n++) {
            const long b = b0 + n;
            const float *lg = logits + n * Q;
            int c = draw(lg, weights, Q, uniforms[b * T + t], inv_temp, use_argmax);
            if (c >= classes) c = classes - 1; /* a padded class (weight ~0) only by float rounding */
            out[b * T + t] = c;
            prev[n] = teacher ? (int)teacher[b * T + t] : c;
            if (logits_out)
                for (int i = 0; i < Q; i++) logits_out[(b * Q + i) * T + t] = lg[i];
        }
    }
#ifdef VQ_AMX
    _tile_release();
#endif
    return 0;
}
