/*
 * test-kernels.c — the engine's fast paths against their references, bit
 * for bit where the engine relies on it:
 *   - the batched dots eng_matmul uses for batches equal what it uses for
 *     one token, column by column, so a token's logits do not depend on
 *     the batch it was evaluated in (speculative verify == plain decode):
 *     vec_dot_nrc equals vec_dot, and vec_dot_nrc_packed (packed
 *     activations) equals itself on one column, and vec_dot up to the
 *     grouping of its float sums;
 *   - the SIMD attention unit equals the scalar reference in attn.c, and a
 *     token's rows in a unit of several tokens equal its one-token unit;
 *   - the thread pool runs every share of every task exactly once.
 */
#include <float.h>
#include <math.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/nib.h"
#include "engine/arch/attn_arch.h"
#include "engine/arch/quant_arch.h"
#include "engine/internal.h"
#include "engine/quant.h"
#include "test.h"

static uint64_t krng = 0x2545f4914f6cdd1dull;

static uint32_t krng_u32(void) {
    krng ^= krng >> 12;
    krng ^= krng << 25;
    krng ^= krng >> 27;
    return (uint32_t)((krng * 2685821657736338717ull) >> 32);
}

static float krng_sym(void) { /* [-1, 1) */
    return (float)(krng_u32() >> 8) * (2.0f / 16777216.0f) - 1.0f;
}

/* ---- batched dot == vec_dot ---------------------------------------------- */

/* sum |x_i y_i| of a weight row and its Q8_0 activation row, dequantized:
 * the scale of the rounding a reordered float sum may differ by. */
static double packed_dot_abs(eng_type t, int n, const void *qx,
                             const void *qy) {
    static float fx[4864], fy[4864];
    eng_type_traits[t].to_float(qx, fx, n);
    eng_type_traits[ENG_TYPE_Q8_0].to_float(qy, fy, n);
    double s = 0.0;
    for (int i = 0; i < n; i++)
        s += fabs((double)fx[i] * fy[i]);
    return s;
}

/* The kernels one CPU level would run: the scalar defaults with the ISA
 * tables up to that level installed in order, as eng_quant_init does. */
typedef struct {
    const char *isa;
    eng_vec_dot_fn dot[ENG_TYPE_COUNT];
    eng_vec_dot_nrc_fn nrc[ENG_TYPE_COUNT];
    eng_vec_dot_nrc_fn nrc_packed[ENG_TYPE_COUNT];
    eng_from_float_fn from_float[ENG_TYPE_COUNT];
    eng_from_float_fn from_float_packed[ENG_TYPE_COUNT];
} cpu_level;

static void level_install(cpu_level *l, const eng_arch_kernels *k) {
    l->isa = k->isa;
    for (int t = 0; t < ENG_TYPE_COUNT; t++) {
        if (k->vec_dot[t])
            l->dot[t] = k->vec_dot[t];
        if (k->vec_dot_nrc[t])
            l->nrc[t] = k->vec_dot_nrc[t];
        if (k->vec_dot_nrc_packed[t])
            l->nrc_packed[t] = k->vec_dot_nrc_packed[t];
        if (k->from_float[t])
            l->from_float[t] = k->from_float[t];
        if (k->from_float_packed[t])
            l->from_float_packed[t] = k->from_float_packed[t];
    }
}

static int check_level(const cpu_level *l) {
    static const eng_type types[] = {
        ENG_TYPE_F32,  ENG_TYPE_F16,  ENG_TYPE_BF16, ENG_TYPE_Q4_0,
        ENG_TYPE_Q4_1, ENG_TYPE_Q5_0, ENG_TYPE_Q5_1, ENG_TYPE_Q8_0,
        ENG_TYPE_Q4_K, ENG_TYPE_Q5_K, ENG_TYPE_Q6_K};
    /* Block counts that hit every leftover path of the 4-block loops
     * (1..7 blocks of 32), the test models' 256/768 and Qwen's 896/4864. */
    static const int lens[] = {32,  64,  96,  128, 160,  192, 224,
                               256, 512, 768, 896, 1024, 4864};
    enum { NMAX = 4864, PAD = 40 };
    static float x[NMAX], y[NMAX];
    static uint8_t qx[NMAX * 4], qy[ENG_NRC_MAX * (NMAX * 4 + PAD)];
    static uint8_t qp[ENG_NRC_MAX * (NMAX * 4 + PAD)];
    int checked = 0, packed = 0;
    for (size_t ti = 0; ti < NIB_ARRAY_LEN(types); ti++) {
        const eng_type t = types[ti];
        const eng_type_traits_t *tt = &eng_type_traits[t];
        const eng_type vt = tt->vec_dot_type;
        if (!l->nrc[t])
            continue;
        const int64_t blk =
            NIB_MAX(tt->blck_size, eng_type_traits[vt].blck_size);
        for (size_t li = 0; li < NIB_ARRAY_LEN(lens); li++) {
            const int n = lens[li];
            if (n % blk)
                continue;
            const size_t st = eng_row_size_packed(vt, n) + (li % 2) * PAD;
            for (int i = 0; i < n; i++)
                x[i] = krng_sym() * (1.0f + (float)(i % 7));
            tt->from_float_ref(x, qx, n);
            for (int c = 0; c < ENG_NRC_MAX; c++) {
                for (int i = 0; i < n; i++)
                    y[i] = krng_sym() * (float)(c + 1);
                l->from_float[vt](y, qy + c * st, n);
                if (l->from_float_packed[vt])
                    l->from_float_packed[vt](y, qp + c * st, n);
            }
            for (int nrc = 1; nrc <= ENG_NRC_MAX; nrc++) {
                float got[ENG_NRC_MAX + 1];
                got[nrc] = 12345.0f;
                l->nrc[t](n, nrc, got, qx, qy, st);
                ASSERT(got[nrc] == 12345.0f);
                for (int c = 0; c < nrc; c++) {
                    float want;
                    l->dot[t](n, &want, qx, qy + c * st);
                    ASSERT_MSG(memcmp(&want, &got[c], sizeof want) == 0,
                               "%s (%s) n=%d nrc=%d col %d: %.9g vs %.9g",
                               tt->name, l->isa, n, nrc, c, got[c], want);
                    checked++;
                }
                /* the packed-activation kernel, where this level has one;
                 * its packer rounds with the installed from_float, so the
                 * emulated level is comparable only when that is the
                 * level's own (not so under NIB_FORCE_SCALAR) */
                if (!l->nrc_packed[t] ||
                    l->from_float[vt] != eng_type_traits[vt].from_float)
                    continue;
                ASSERT(l->from_float_packed[vt] != NULL);
                got[nrc] = 12345.0f;
                l->nrc_packed[t](n, nrc, got, qx, qp, st);
                ASSERT(got[nrc] == 12345.0f);
                for (int c = 0; c < nrc; c++) {
                    /* bit for bit the one-column packed kernel (what a
                     * decoded token gets) ... */
                    float one, want;
                    l->nrc_packed[t](n, 1, &one, qx, qp + c * st, st);
                    ASSERT_MSG(memcmp(&one, &got[c], sizeof one) == 0,
                               "%s packed (%s) n=%d nrc=%d col %d: %.9g vs "
                               "%.9g",
                               tt->name, l->isa, n, nrc, c, got[c], one);
                    /* ... and vec_dot's value up to the grouping of its
                     * float sums */
                    l->dot[t](n, &want, qx, qy + c * st);
                    const double tol =
                        1e-5 * packed_dot_abs(t, n, qx, qy + c * st);
                    ASSERT_MSG(fabs((double)got[c] - want) <= tol,
                               "%s packed (%s) n=%d nrc=%d col %d: %.9g vs "
                               "vec_dot %.9g (tolerance %.3g)",
                               tt->name, l->isa, n, nrc, c, got[c], want, tol);
                    packed++;
                }
            }
        }
    }
    fprintf(stderr, "%s: %d columns bit-identical, %d of them packed\n", l->isa,
            checked + packed, packed);
    return checked;
}

/* Every CPU level this machine can run (scalar, AVX2, AVX-VNNI, AVX-512), not
 * just the installed one, so an AVX2-only CPU's pairing is checked here
 * too; then what eng_quant_init installed. */
TEST_IMPL(kernels_nrc_equals_vec_dot) {
    eng_quant_init();
    static cpu_level l;
    l.isa = "scalar";
    for (int t = 0; t < ENG_TYPE_COUNT; t++) {
        /* the scalar level: what eng_type_traits held before init */
        const eng_type_traits_t *tt = &eng_type_traits[t];
        l.dot[t] = tt->vec_dot_ref;
        l.nrc[t] = tt->vec_dot_nrc_ref;
        l.from_float[t] = tt->from_float_ref;
    }
    check_level(&l);
    /* Where no table has a batched dot, the default is a loop over the
     * installed vec_dot, equal by construction: NULL = not checked. */
    for (int t = 0; t < ENG_TYPE_COUNT; t++)
        l.nrc[t] = NULL;
    const eng_arch_kernels *all[ENG_ARCH_MAX];
    int na = eng__arch_available(all, ENG_ARCH_MAX);
    for (int i = 0; i < na; i++) {
        level_install(&l, all[i]);
        /* a level ends where the next table belongs to another ISA (AVX2
         * alone, as on AMD before Zen 5 and Intel before Alder Lake, ends
         * before the AVX-VNNI table) */
        if (i + 1 == na || strcmp(all[i + 1]->isa, all[i]->isa) != 0)
            check_level(&l);
    }
    /* and the table eng_quant_init filled */
    for (int t = 0; t < ENG_TYPE_COUNT; t++) {
        const eng_type_traits_t *tt = &eng_type_traits[t];
        l.dot[t] = tt->vec_dot;
        l.nrc[t] = tt->vec_dot_nrc;
        l.nrc_packed[t] = tt->vec_dot_nrc_packed;
        l.from_float[t] = tt->from_float;
        l.from_float_packed[t] = tt->from_float_packed;
    }
    l.isa = "installed";
    check_level(&l);
    return 0;
}

/* ---- NIB_FORCE_ISA levels ------------------------------------------------ */

/* How many of table k's kernels eng_quant_init installed. */
static int installed_from(const eng_arch_kernels *k) {
    int n = 0;
    for (int t = 0; t < ENG_TYPE_COUNT; t++) {
        const eng_type_traits_t *tt = &eng_type_traits[t];
        n += k->vec_dot[t] && tt->vec_dot == k->vec_dot[t];
        n += k->vec_dot_nrc[t] && tt->vec_dot_nrc == k->vec_dot_nrc[t];
        n += k->vec_dot_nrc_packed[t] &&
             tt->vec_dot_nrc_packed == k->vec_dot_nrc_packed[t];
        n += k->vec_dot_tile_packed[t] &&
             tt->vec_dot_tile_packed == k->vec_dot_tile_packed[t];
        n += k->vec_dot_tile[t] && tt->vec_dot_tile == k->vec_dot_tile[t];
    }
    return n;
}

/* NIB_FORCE_ISA=avx2 must leave out the AVX-VNNI kernels: CI runs the
 * golden outputs under it as the AVX2 path of CPUs without AVX-VNNI (AMD
 * before Zen 5, Intel before Alder Lake), and NIB_FORCE_ISA=avxvnni as
 * that of Alder Lake. With NIB_FORCE_ISA set, checks that level here
 * (no kernel of a table above it installed, and the level's own tables
 * installed where the CPU has them); without, runs itself in a child per
 * level (the traits are process-wide). */
TEST_IMPL(kernels_force_isa) {
#if !defined(__x86_64__)
    TEST_SKIP("not an x86-64 CPU");
#else
    const eng_arch_kernels *all[ENG_ARCH_MAX];
    const int na = eng__arch_available(all, ENG_ARCH_MAX);
    if (na == 0)
        TEST_SKIP("no SIMD level on this CPU");
    const char *cap = getenv("NIB_FORCE_ISA");
    if (cap && *cap) {
        eng_quant_init();
        const bool vnni = strcmp(cap, "avxvnni") == 0;
        if (!vnni && strcmp(cap, "avx2") != 0)
            TEST_SKIP("NIB_FORCE_ISA=%s: checked for avx2 and avxvnni", cap);
        fprintf(stderr, "isa: %s\n", eng_quant_isa());
        int own = 0, own_used = 0;
        for (int i = 0; i < na; i++) {
            const bool within = strcmp(all[i]->isa, "avx2") == 0 ||
                                (vnni && strcmp(all[i]->isa, "avxvnni") == 0);
            const int n = installed_from(all[i]);
            ASSERT_MSG(within || n == 0,
                       "NIB_FORCE_ISA=%s installed %d kernels of the %s table",
                       cap, n, all[i]->isa);
            if (strcmp(all[i]->isa, cap) == 0) {
                own++;
                own_used += n > 0;
            }
        }
        /* where the CPU has the level, its kernels are the ones in use */
        if (own > 0) {
            ASSERT_MSG(own_used > 0, "NIB_FORCE_ISA=%s: no %s kernel in use",
                       cap, cap);
            ASSERT_STR_EQ(eng_quant_isa(), cap);
        }
        /* whatever the tables call themselves */
        if (!vnni)
            ASSERT_MSG(installed_from(&eng__kernels_avxvnni) == 0,
                       "NIB_FORCE_ISA=avx2 installed AVX-VNNI kernels");
        return 0;
    }
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (len <= 0)
        TEST_SKIP("cannot find the test binary");
    exe[len] = 0;
    static const char *const caps[] = {"avx2", "avxvnni"};
    for (size_t i = 0; i < NIB_ARRAY_LEN(caps); i++) {
        char cmd[4200], *out = NULL;
        snprintf(cmd, sizeof(cmd),
                 "NIB_FORCE_ISA=%s '%s' kernels_force_isa 2>&1", caps[i], exe);
        int rc = test_run_capture(cmd, &out, NULL);
        ASSERT_MSG(rc == 0, "NIB_FORCE_ISA=%s: child exit %d: %s", caps[i], rc,
                   out ? out : "");
        fprintf(stderr, "NIB_FORCE_ISA=%s: %s", caps[i], out ? out : "\n");
        free(out);
    }
    return 0;
#endif
}

/* ---- Q5_0 with VBMI == without ------------------------------------------- */

/* Where the CPU has VBMI and BITALG, eng__kernels_avx512_vbmi replaces the
 * Q5_0 packed kernels with ones that decode a group of four blocks with
 * byte permutes; kernels_nrc_equals_vec_dot then sees only those. So this
 * compares them with the plain AVX-512 ones, bit for bit, for every
 * leftover count and column count, one row and tiles. The weight rows end
 * where an inaccessible page begins: the VBMI decode reads each group with
 * a 64-byte load and a masked load of the rest, and a read past the last
 * block would fault here. */
TEST_IMPL(kernels_q5_0_vbmi) {
#if !defined(__x86_64__)
    TEST_SKIP("not an x86-64 CPU");
#else
    eng_quant_init();
    const eng_arch_kernels *all[ENG_ARCH_MAX], *plain = NULL, *vbmi = NULL;
    int na = eng__arch_available(all, ENG_ARCH_MAX);
    for (int i = 0; i < na; i++) {
        if (all[i] == &eng__kernels_avx512_gemm)
            plain = all[i];
        if (all[i] == &eng__kernels_avx512_vbmi)
            vbmi = all[i];
    }
    if (!vbmi)
        TEST_SKIP("no VBMI and BITALG on this CPU");
    ASSERT(plain != NULL);
    const eng_vec_dot_nrc_fn nrc_p = plain->vec_dot_nrc_packed[ENG_TYPE_Q5_0],
                             nrc_v = vbmi->vec_dot_nrc_packed[ENG_TYPE_Q5_0];
    const eng_vec_dot_tile_fn tile_p =
                                  plain->vec_dot_tile_packed[ENG_TYPE_Q5_0],
                              tile_v = vbmi->vec_dot_tile_packed[ENG_TYPE_Q5_0];
    ASSERT(nrc_p && nrc_v && tile_p && tile_v);
    /* the table's own packer: the installed one is absent where
     * NIB_FORCE_ISA caps the kernels below AVX-512 */
    const eng_from_float_fn pack = plain->from_float_packed[ENG_TYPE_Q8_0];
    ASSERT(pack != NULL);
    enum { NMAX = 4864, ROWS = 7 };
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const size_t wbytes = ROWS * eng_row_size(ENG_TYPE_Q5_0, NMAX);
    const size_t span = (wbytes + page - 1) / page * page;
    uint8_t *map = mmap(NULL, span + page, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT(map != MAP_FAILED);
    ASSERT(mprotect(map + span, page, PROT_NONE) == 0);
    static float x[NMAX];
    static uint8_t qp[ENG_NRC_MAX * (NMAX + NMAX / 8 + 64)];
    static const int lens[] = {32,  64,  96,  128, 160, 192,
                               224, 256, 288, 896, 4864};
    int checked = 0;
    for (size_t li = 0; li < NIB_ARRAY_LEN(lens); li++) {
        const int n = lens[li];
        const size_t rb = eng_row_size(ENG_TYPE_Q5_0, n);
        uint8_t *w = map + span - ROWS * rb; /* the last row ends at the page */
        for (int r = 0; r < ROWS; r++) {
            for (int i = 0; i < n; i++)
                x[i] = krng_sym() * (1.0f + (float)(i % 5));
            eng_type_traits[ENG_TYPE_Q5_0].from_float_ref(x, w + r * rb, n);
        }
        const size_t st = eng_row_size_packed(ENG_TYPE_Q8_0, n) + 8 * (li % 2);
        for (int c = 0; c < ENG_NRC_MAX; c++) {
            for (int i = 0; i < n; i++)
                x[i] = krng_sym() * (float)(c + 1);
            pack(x, qp + c * st, n);
        }
        for (int nc = 1; nc <= ENG_NRC_MAX; nc++) {
            float a[ENG_NRC_MAX], b[ENG_NRC_MAX];
            nrc_p(n, nc, a, w + (ROWS - 1) * rb, qp, st);
            nrc_v(n, nc, b, w + (ROWS - 1) * rb, qp, st);
            ASSERT_MSG(memcmp(a, b, (size_t)nc * sizeof(float)) == 0,
                       "n=%d nc=%d: one row differs", n, nc);
            float ta[ENG_NRC_MAX * ROWS], tb[ENG_NRC_MAX * ROWS];
            tile_p(n, ROWS, nc, ta, ROWS, w, rb, qp, st);
            tile_v(n, ROWS, nc, tb, ROWS, w, rb, qp, st);
            ASSERT_MSG(memcmp(ta, tb, (size_t)(nc * ROWS) * sizeof(float)) == 0,
                       "n=%d nc=%d: tile differs", n, nc);
            checked += nc * (ROWS + 1);
        }
    }
    munmap(map, span + page);
    fprintf(stderr, "%d outputs bit-identical\n", checked);
    return 0;
#endif
}

/* ---- AVX-VNNI dots == AVX2 dots ------------------------------------------ */

/* Where the CPU has AVX-VNNI, eng__kernels_avxvnni replaces the AVX2
 * vec_dot of Q8_0, Q4_0 and Q5_0 with vpdpbusd forms (on AVX-512 CPUs the
 * AVX-512 kernels replace both). They must equal the AVX2 ones bit for bit,
 * since the AVX2 batched dots are bit-identical to those: on every leftover
 * count of the two-block Q5_0 loop, and on Q8_0 weights holding any byte,
 * -128 included (files from other quantizers), against activations from
 * nib's quantizer (|q| <= 127). */
TEST_IMPL(kernels_avxvnni) {
#if !defined(__x86_64__)
    TEST_SKIP("not an x86-64 CPU");
#else
    eng_quant_init();
    const eng_arch_kernels *all[ENG_ARCH_MAX], *avx2 = NULL, *vnni = NULL;
    int na = eng__arch_available(all, ENG_ARCH_MAX);
    for (int i = 0; i < na; i++) {
        if (all[i] == &eng__kernels_avx2)
            avx2 = all[i];
        if (all[i] == &eng__kernels_avxvnni)
            vnni = all[i];
    }
    if (!vnni)
        TEST_SKIP("no AVX-VNNI on this CPU");
    ASSERT(avx2 != NULL);
    static const eng_type types[] = {ENG_TYPE_Q8_0, ENG_TYPE_Q4_0,
                                     ENG_TYPE_Q5_0};
    static const int lens[] = {32, 64, 96, 128, 160, 896, 4864};
    enum { NMAX = 4864 };
    static float x[NMAX];
    static uint8_t qw[NMAX * 2], qa[NMAX * 2];
    int checked = 0;
    for (size_t ti = 0; ti < NIB_ARRAY_LEN(types); ti++) {
        const eng_type t = types[ti];
        const eng_type_traits_t *tt = &eng_type_traits[t];
        const eng_vec_dot_fn a = avx2->vec_dot[t], b = vnni->vec_dot[t];
        ASSERT(a && b);
        for (size_t li = 0; li < NIB_ARRAY_LEN(lens); li++) {
            const int n = lens[li];
            for (int rep = 0; rep < 8; rep++) {
                for (int i = 0; i < n; i++)
                    x[i] = krng_sym() * (1.0f + (float)(i % 5));
                tt->from_float_ref(x, qw, n);
                if (t == ENG_TYPE_Q8_0 && rep % 2) {
                    /* raw bytes: quants of any value, -128 among them */
                    block_q8_0 *w = (block_q8_0 *)qw;
                    for (int i = 0; i < n / QK8_0; i++)
                        for (int j = 0; j < QK8_0; j++)
                            w[i].qs[j] =
                                (int8_t)(rep == 1 && j % 3 == 0
                                             ? -128
                                             : (int)(krng_u32() & 0xff));
                }
                for (int i = 0; i < n; i++)
                    x[i] = krng_sym() * (float)(rep + 1);
                eng_type_traits[ENG_TYPE_Q8_0].from_float(x, qa, n);
                float ra, rb;
                a(n, &ra, qw, qa);
                b(n, &rb, qw, qa);
                ASSERT_MSG(memcmp(&ra, &rb, sizeof ra) == 0,
                           "%s n=%d rep %d: AVX2 %.9g, AVX-VNNI %.9g", tt->name,
                           n, rep, ra, rb);
                checked++;
            }
        }
    }
    fprintf(stderr, "%d dots bit-identical\n", checked);
    /* Q4_K, Q5_K, Q6_K: the AVX-VNNI dots group their integer sums in other
     * lanes (one vpdpwssd per packed chunk pair), so they equal the AVX2
     * ones up to the rounding of the float sums; a wrong scale or 5th bit
     * would be off by far more. */
    static const eng_type ktypes[] = {ENG_TYPE_Q4_K, ENG_TYPE_Q5_K,
                                      ENG_TYPE_Q6_K};
    static const int klens[] = {256, 512, 1536, 4864};
    static float wf[NMAX];
    int close = 0;
    for (size_t ti = 0; ti < NIB_ARRAY_LEN(ktypes); ti++) {
        const eng_type t = ktypes[ti];
        const eng_type_traits_t *tt = &eng_type_traits[t];
        const eng_vec_dot_fn a = avx2->vec_dot[t], b = vnni->vec_dot[t];
        ASSERT(a && b);
        for (size_t li = 0; li < NIB_ARRAY_LEN(klens); li++) {
            const int n = klens[li];
            for (int rep = 0; rep < 8; rep++) {
                for (int i = 0; i < n; i++)
                    x[i] = krng_sym() * (1.0f + (float)(i % 5));
                tt->from_float_ref(x, qw, n);
                tt->to_float(qw, wf, n);
                for (int i = 0; i < n; i++)
                    x[i] = krng_sym() * (float)(rep + 1);
                eng_type_traits[ENG_TYPE_Q8_K].from_float(x, qa, n);
                double mag = 0;
                for (int i = 0; i < n; i++)
                    mag += fabs((double)wf[i] * x[i]);
                float ra, rb;
                a(n, &ra, qw, qa);
                b(n, &rb, qw, qa);
                ASSERT_MSG(fabs((double)ra - rb) <= 1e-5 * mag,
                           "%s n=%d rep %d: AVX2 %.9g, AVX-VNNI %.9g "
                           "(magnitude %.3g)",
                           tt->name, n, rep, ra, rb, mag);
                close++;
            }
        }
    }
    fprintf(stderr, "%d K-quant dots within rounding\n", close);
    return 0;
#endif
}

/* ---- AVX2 packed kernels ------------------------------------------------- */

/* gemm_avx2.c's packed kernels (Q8_0, Q4_0, Q5_0 with vpmaddubsw) and
 * quant_avxvnni.c's (Q8_0, Q4_0, Q5_0 with vpdpbusd) on gemm_avx2.c's
 * packer. On an AVX-512 CPU kernels_nrc_equals_vec_dot sees neither, and
 * on one with AVX-VNNI not the first, so here, on every leftover count of
 * the group loops, one row and tiles of 7 rows (four and three):
 *   - the AVX2 packer writes the AVX-512 packer's bytes (one layout);
 *   - each kernel equals vec_dot_ref up to the grouping of its float sums,
 *     a tile equals its one-row kernel bit for bit, and every column
 *     equals its one-column value (what a decoded token gets);
 *   - the vpmaddubsw and vpdpbusd forms are bit-identical.
 * Q8_0 weights hold any byte, -128 included. The weight rows end where an
 * inaccessible page begins, so a read past the last block faults. */
TEST_IMPL(kernels_packed_avx2) {
#if !defined(__x86_64__)
    TEST_SKIP("not an x86-64 CPU");
#else
    eng_quant_init();
    const eng_arch_kernels *all[ENG_ARCH_MAX], *avx2 = NULL, *vnni = NULL,
                                               *avx512 = NULL;
    int na = eng__arch_available(all, ENG_ARCH_MAX);
    for (int i = 0; i < na; i++) {
        if (all[i] == &eng__kernels_avx2_gemm)
            avx2 = all[i];
        if (all[i] == &eng__kernels_avxvnni)
            vnni = all[i];
        if (all[i] == &eng__kernels_avx512_gemm)
            avx512 = all[i];
    }
    if (!avx2)
        TEST_SKIP("no AVX2 on this CPU");
    const eng_from_float_fn pack = avx2->from_float_packed[ENG_TYPE_Q8_0];
    ASSERT(pack != NULL);
    static const eng_type types[] = {ENG_TYPE_Q8_0, ENG_TYPE_Q4_0,
                                     ENG_TYPE_Q5_0};
    static const int lens[] = {32, 64, 96, 128, 160, 192, 224, 896, 4864};
    enum { NMAX = 4864, ROWS = 7 };
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const size_t span =
        (ROWS * eng_row_size(ENG_TYPE_Q8_0, NMAX) + page - 1) / page * page;
    uint8_t *map = mmap(NULL, span + page, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT(map != MAP_FAILED);
    ASSERT(mprotect(map + span, page, PROT_NONE) == 0);
    static float x[NMAX];
    enum { ST = NMAX + NMAX / 8 + 64 };
    static uint8_t qp[ENG_NRC_MAX * ST], qp512[ENG_NRC_MAX * ST],
        qa[ENG_NRC_MAX * ST];
    int checked = 0, kernels = 0;
    for (size_t li = 0; li < NIB_ARRAY_LEN(lens); li++) {
        const int n = lens[li];
        const size_t st = eng_row_size_packed(ENG_TYPE_Q8_0, n) + 8 * (li % 2);
        for (int c = 0; c < ENG_NRC_MAX; c++) {
            for (int i = 0; i < n; i++)
                x[i] = krng_sym() * (float)(c + 1);
            pack(x, qp + c * st, n);
            eng_type_traits[ENG_TYPE_Q8_0].from_float(x, qa + c * st, n);
            if (avx512) {
                avx512->from_float_packed[ENG_TYPE_Q8_0](x, qp512 + c * st, n);
                ASSERT_MSG(memcmp(qp + c * st, qp512 + c * st,
                                  eng_row_size_packed(ENG_TYPE_Q8_0, n)) == 0,
                           "n=%d: the AVX2 and AVX-512 packers differ", n);
            }
        }
        for (size_t ti = 0; ti < NIB_ARRAY_LEN(types); ti++) {
            const eng_type t = types[ti];
            const eng_type_traits_t *tt = &eng_type_traits[t];
            const size_t rb = eng_row_size(t, n);
            uint8_t *w = map + span - ROWS * rb;
            for (int r = 0; r < ROWS; r++) {
                for (int i = 0; i < n; i++)
                    x[i] = krng_sym() * (1.0f + (float)(i % 5));
                tt->from_float_ref(x, w + r * rb, n);
                if (t == ENG_TYPE_Q8_0 && r % 2) {
                    block_q8_0 *b = (block_q8_0 *)(w + r * rb);
                    for (int i = 0; i < n / QK8_0; i++)
                        for (int j = 0; j < QK8_0; j++)
                            b[i].qs[j] =
                                (int8_t)(j % 5 == 0 ? -128
                                                    : (int)(krng_u32() & 0xff));
                }
            }
            const eng_arch_kernels *lv[2] = {avx2, vnni};
            float first[ROWS * ENG_NRC_MAX];
            bool have_first = false;
            for (int k = 0; k < 2; k++) {
                if (!lv[k] || !lv[k]->vec_dot_nrc_packed[t])
                    continue;
                const eng_vec_dot_nrc_fn nrc = lv[k]->vec_dot_nrc_packed[t];
                const eng_vec_dot_tile_fn tile = lv[k]->vec_dot_tile_packed[t];
                ASSERT(tile != NULL);
                kernels++;
                for (int nc = 1; nc <= ENG_NRC_MAX; nc++) {
                    float tl[ROWS * ENG_NRC_MAX];
                    tile(n, ROWS, nc, tl, ROWS, w, rb, qp, st);
                    for (int r = 0; r < ROWS; r++) {
                        float got[ENG_NRC_MAX + 1];
                        got[nc] = 12345.0f;
                        nrc(n, nc, got, w + r * rb, qp, st);
                        ASSERT(got[nc] == 12345.0f);
                        for (int c = 0; c < nc; c++) {
                            float one, want;
                            nrc(n, 1, &one, w + r * rb, qp + c * st, st);
                            ASSERT_MSG(memcmp(&one, &got[c], 4) == 0 &&
                                           memcmp(&one, &tl[c * ROWS + r], 4) ==
                                               0,
                                       "%s (%s) n=%d nc=%d row %d col %d: "
                                       "%.9g, tile %.9g, one column %.9g",
                                       tt->name, lv[k]->isa, n, nc, r, c,
                                       got[c], tl[c * ROWS + r], one);
                            tt->vec_dot_ref(n, &want, w + r * rb, qa + c * st);
                            const double tol =
                                1e-5 *
                                packed_dot_abs(t, n, w + r * rb, qa + c * st);
                            ASSERT_MSG(fabs((double)one - want) <= tol,
                                       "%s (%s) n=%d row %d col %d: %.9g vs "
                                       "vec_dot_ref %.9g",
                                       tt->name, lv[k]->isa, n, r, c, one,
                                       want);
                            checked++;
                        }
                    }
                    if (nc == ENG_NRC_MAX) {
                        if (have_first)
                            ASSERT_MSG(memcmp(first, tl, sizeof tl) == 0,
                                       "%s n=%d: vpmaddubsw and vpdpbusd "
                                       "differ",
                                       tt->name, n);
                        memcpy(first, tl, sizeof tl);
                        have_first = true;
                    }
                }
            }
        }
    }
    munmap(map, span + page);
    fprintf(stderr, "%d kernel runs, %d outputs checked%s%s\n", kernels,
            checked, vnni ? "" : " (no AVX-VNNI here)",
            avx512 ? ", packers equal" : "");
    return 0;
#endif
}

/* ---- attention unit: SIMD == scalar -------------------------------------- */

/* Scratch for one unit of up to this many tokens and heads over this many
 * positions, plus a canary beyond the end and room to misalign the start. */
enum {
    ATT_MAXPOS = 2100,
    ATT_MAXHD = 128,
    ATT_MAXG = 12,
    ATT_MAXT = ENG_ATTN_TOKENS,
    /* floats between two tokens' queries (and outputs): more than a
     * token's heads, to exercise the stride */
    ATT_TS = ATT_MAXG * ATT_MAXHD + 16,
};
static float
    att_scratch[ENG_ATTN_SCRATCH(ATT_MAXPOS, ATT_MAXHD, ATT_MAXG, ATT_MAXT) +
                32];

/* Runs `best` on scratch full of NaNs (so a read of a score or key it did
 * not write shows up in the output), one float off 64-byte alignment, and
 * checks it wrote nothing past ENG_ATTN_SCRATCH. */
static int att_run_simd(eng_attn_group_fn best, float *out, const float *q,
                        size_t ts, const eng_fp16 *k, const eng_fp16 *v,
                        size_t stride, int hd, int ng, int nt, int n_pos,
                        float scale) {
    size_t need = ENG_ATTN_SCRATCH(n_pos + nt - 1, hd, ng, nt);
    float *s = att_scratch + 1;
    for (size_t i = 0; i < need; i++)
        s[i] = NAN;
    for (size_t i = need; i < need + 16; i++)
        s[i] = 12345.0f;
    best(out, q, ts, k, v, stride, hd, ng, nt, n_pos, scale, s);
    for (size_t i = need; i < need + 16; i++)
        if (s[i] != 12345.0f)
            return 0;
    return 1;
}

/* Every row of a unit of nt tokens (token t sees n_pos + t positions)
 * equals the head reference, and each token's rows equal what the SIMD
 * unit gives that token alone: a token's attention does not depend on the
 * batch it came in. */
static int attn_group_check(eng_attn_group_fn best) {
    enum { KV_HEADS = 2 };
    /* 40 is not a multiple of 16: the SIMD unit hands it to the reference */
    static const int hds[] = {64, 128, 80, 32, 48, 96, 112, 40};
    /* the GQA groups of real models (7: Qwen2.5-0.5B/7B, 6: 1.5B, 8: 3B,
     * 12: StarCoder2-3B), and every way the SIMD p.V splits them into
     * parts and dim blocks and the scores into chunks of rows */
    static const int groups[] = {1, 2, 3, 4, 5, 6, 7, 8, 12};
    /* first token's positions: around the blocks of 16 and 32 the scores
     * take, and long */
    static const int npos[] = {1, 2, 15, 16, 17, 31, 32, 33, 100, 257, 2000};
    /* tokens per unit, taken in turn */
    static const int ntok[8] = {1, 8, 3, 2, 5, 7, 4, 6};
    /* score spreads: mild, and wide enough that most exps underflow to
     * subnormals and zero */
    static const float qscale[] = {0.5f, 8.0f, 60.0f};
    static eng_fp16 k[ATT_MAXPOS * KV_HEADS * ATT_MAXHD],
        v[ATT_MAXPOS * KV_HEADS * ATT_MAXHD];
    static float q[ATT_MAXT * ATT_TS], att[ATT_MAXPOS + 16 + ATT_MAXHD];
    static float out_ref[ATT_MAXHD], out_simd[ATT_MAXT * ATT_TS],
        out_one[ATT_TS];
    static eng_fp16 q16[ATT_MAXHD];
    int checked = 0, turn = 0;
    for (size_t hi = 0; hi < NIB_ARRAY_LEN(hds); hi++) {
        const int hd = hds[hi];
        const size_t stride = (size_t)KV_HEADS * hd;
        for (size_t i = 0; i < ATT_MAXPOS * stride; i++) {
            k[i] = eng_fp32_to_fp16(krng_sym() * 2.0f);
            v[i] = eng_fp32_to_fp16(krng_sym() * 3.0f);
        }
        for (size_t gi = 0; gi < NIB_ARRAY_LEN(groups); gi++) {
            const int ng = groups[gi];
            for (size_t pi = 0; pi < NIB_ARRAY_LEN(npos); pi++) {
                for (size_t si = 0; si < NIB_ARRAY_LEN(qscale); si++) {
                    const int n = npos[pi];
                    /* (at most two tokens over the long context, where
                     * the scalar reference takes most of the time) */
                    const int nt =
                        n > 1000 && ntok[turn % 8] > 2 ? 2 : ntok[turn % 8];
                    turn++;
                    for (int t = 0; t < nt; t++)
                        for (int d = 0; d < ng * hd; d++)
                            q[t * ATT_TS + d] = krng_sym() * qscale[si];
                    const float scale = 1.0f / sqrtf((float)hd);
                    /* the second KV head's slice, to exercise the stride */
                    ASSERT_MSG(att_run_simd(best, out_simd, q, ATT_TS, k + hd,
                                            v + hd, stride, hd, ng, nt, n,
                                            scale),
                               "hd=%d ng=%d nt=%d n_pos=%d: wrote past the "
                               "scratch",
                               hd, ng, nt, n);
                    for (int t = 0; t < nt; t++) {
                        const float *qt = q + t * ATT_TS;
                        const float *ot = out_simd + t * ATT_TS;
                        for (int g = 0; g < ng; g++) {
                            eng__attn_head_ref(out_ref, qt + g * hd, k + hd,
                                               v + hd, stride, hd, n + t, scale,
                                               att, q16);
                            for (int d = 0; d < hd; d++)
                                ASSERT_MSG(
                                    memcmp(&out_ref[d], &ot[g * hd + d], 4) ==
                                        0,
                                    "hd=%d ng=%d nt=%d n_pos=%d qscale=%g "
                                    "token %d head %d dim %d: %.9g vs %.9g",
                                    hd, ng, nt, n, qscale[si], t, g, d,
                                    ot[g * hd + d], out_ref[d]);
                            checked++;
                        }
                        if (nt == 1)
                            continue;
                        ASSERT(att_run_simd(best, out_one, qt, ATT_TS, k + hd,
                                            v + hd, stride, hd, ng, 1, n + t,
                                            scale));
                        ASSERT_MSG(memcmp(out_one, ot,
                                          (size_t)ng * hd * sizeof *ot) == 0,
                                   "hd=%d ng=%d nt=%d n_pos=%d token %d: "
                                   "alone differs from in the unit",
                                   hd, ng, nt, n, t);
                    }
                }
            }
        }
    }
    fprintf(stderr, "%d attention heads bit-identical\n", checked);
    return 0;
}

TEST_IMPL(kernels_attn_group) {
    eng_quant_init();
    eng_attn_group_fn best = eng__attn_group_best();
    if (best == eng__attn_group_ref)
        TEST_SKIP("no SIMD attention on this CPU (%s)", eng_quant_isa());
    return attn_group_check(best);
}

/* The AVX2 unit, which CPUs without AVX-512 run, whatever this one runs. */
TEST_IMPL(kernels_attn_group_avx2) {
#if defined(__x86_64__)
    eng_quant_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma") ||
        !__builtin_cpu_supports("f16c"))
        TEST_SKIP("no AVX2, FMA and F16C on this CPU");
    return attn_group_check(eng__attn_group_avx2);
#else
    TEST_SKIP("not an x86-64 CPU");
#endif
}

/* The reference for a unit is the head reference row by row, each token
 * over its own positions (the scalar path runs it under NIB_FORCE_SCALAR
 * and without AVX-512). */
TEST_IMPL(kernels_attn_group_ref) {
    enum { HD = 80, NG = 3, NT = 4, N = 37, TS = NG * HD + 8 };
    static eng_fp16 k[(N + NT) * HD], v[(N + NT) * HD], q16[HD];
    static float q[NT * TS], att[N + NT + 16 + HD], a[NT * TS], b[HD];
    static float scratch[ENG_ATTN_SCRATCH(N + NT - 1, HD, NG, NT)];
    for (int i = 0; i < (N + NT) * HD; i++) {
        k[i] = eng_fp32_to_fp16(krng_sym());
        v[i] = eng_fp32_to_fp16(krng_sym());
    }
    for (int i = 0; i < NT * TS; i++)
        q[i] = krng_sym() * 4.0f;
    eng__attn_group_ref(a, q, TS, k, v, HD, HD, NG, NT, N, 0.125f, scratch);
    for (int t = 0; t < NT; t++)
        for (int g = 0; g < NG; g++) {
            eng__attn_head_ref(b, q + t * TS + g * HD, k, v, HD, HD, N + t,
                               0.125f, att, q16);
            ASSERT(memcmp(a + t * TS + g * HD, b, sizeof b) == 0);
        }
    return 0;
}

/* The vector exp against eng__expf_vec over the whole range softmax feeds
 * it (x - max <= 0), through attention on one position pair: p = exp(s0 -
 * s1) / (1 + exp(s0 - s1)) rounds identically only if the exps do. */
TEST_IMPL(kernels_attn_exp_range) {
    eng_quant_init();
    eng_attn_group_fn best = eng__attn_group_best();
    if (best == eng__attn_group_ref)
        TEST_SKIP("no SIMD attention on this CPU (%s)", eng_quant_isa());
    enum { HD = 16, N = 17 };
    static eng_fp16 k[N * HD], v[N * HD], q16[HD];
    static float q[HD], att[N + 16 + HD], a[HD], b[HD];
    for (int i = 0; i < N * HD; i++)
        v[i] = eng_fp32_to_fp16(krng_sym());
    int checked = 0;
    /* key j is e_0 * (j * step): scores are q0 * j * step, spread from 0
     * to far below the exp underflow point as step grows */
    for (float step = 0.01f; step < 2000.0f; step *= 1.37f) {
        memset(k, 0, sizeof k);
        for (int j = 0; j < N; j++)
            k[j * HD] = eng_fp32_to_fp16(-(float)j * step / 16.0f);
        memset(q, 0, sizeof q);
        q[0] = 16.0f;
        eng__attn_head_ref(a, q, k, v, HD, HD, N, 1.0f, att, q16);
        ASSERT(att_run_simd(best, b, q, HD, k, v, HD, HD, 1, 1, N, 1.0f));
        ASSERT_MSG(memcmp(a, b, sizeof a) == 0, "step %g", step);
        checked++;
    }
    fprintf(stderr, "%d score spreads bit-identical\n", checked);
    return 0;
}

/* ---- SwiGLU: SIMD == scalar ---------------------------------------------- */

/* The vector SwiGLU against the scalar one over the gate values a
 * feed-forward produces and the edges of the exp: both signs far past
 * its overflow and underflow, zeros, infinities, NaN, subnormals; every
 * length 1..40 for the masked tail, and in place (o == g) as forward.c
 * calls it. */
TEST_IMPL(kernels_swiglu) {
    eng_quant_init();
    eng_swiglu_fn best = eng__swiglu_best();
    if (best == eng__swiglu_ref)
        TEST_SKIP("no SIMD SwiGLU on this CPU (%s)", eng_quant_isa());
    enum { N = 4864 };
    static float g[N], u[N], a[N], b[N];
    static const float spread[] = {0.01f, 1.0f, 8.0f, 90.0f, 300.0f};
    static const float edge[] = {0.0f,   -0.0f,   INFINITY, -INFINITY, NAN,
                                 1e-40f, -1e-40f, FLT_MAX,  -FLT_MAX,  87.3f,
                                 -87.3f, 88.8f,   -88.8f,   103.9f,    -103.9f,
                                 133.0f, -133.0f, 150.0f,   -150.0f,   1e30f};
    int checked = 0;
    for (size_t si = 0; si < NIB_ARRAY_LEN(spread); si++) {
        for (int i = 0; i < N; i++) {
            g[i] = krng_sym() * spread[si];
            u[i] = krng_sym() * 3.0f;
        }
        for (size_t e = 0; e < NIB_ARRAY_LEN(edge); e++)
            g[(e * 97 + si) % N] = edge[e];
        for (int n = 1; n <= N; n = n < 40 ? n + 1 : n < N ? N : N + 1) {
            eng__swiglu_ref(a, g, u, n);
            memcpy(b, g, sizeof(float) * (size_t)n);
            best(b, b, u, n);
            for (int i = 0; i < n; i++)
                ASSERT_MSG(memcmp(&a[i], &b[i], 4) == 0,
                           "n=%d g=%.9g u=%.9g: %.9g vs %.9g", n, g[i], u[i],
                           b[i], a[i]);
            checked += n;
        }
    }
    fprintf(stderr, "%d SwiGLU values bit-identical\n", checked);
    return 0;
}

/* ---- pool ------------------------------------------------------------------
 */

typedef struct {
    atomic_int runs[8];
    int n;
} pool_probe;

static void pool_probe_fn(void *arg, int ith, int nth) {
    pool_probe *p = arg;
    ASSERT(nth == p->n && ith >= 0 && ith < nth);
    atomic_fetch_add(&p->runs[ith], 1);
}

TEST_IMPL(kernels_pool_shares_once) {
    for (int nt = 1; nt <= 4; nt++) {
        eng_pool *pool = eng_pool_new(nt);
        ASSERT_EQ(eng_pool_size(pool), nt);
        for (int task = 0; task < 20000; task++) {
            pool_probe pr = {.n = nt};
            for (int i = 0; i < 8; i++)
                atomic_init(&pr.runs[i], 0);
            eng_pool_run(pool, pool_probe_fn, &pr);
            for (int i = 0; i < nt; i++)
                ASSERT_EQ(atomic_load(&pr.runs[i]), 1);
        }
        eng_pool_delete(pool);
    }
    return 0;
}

/* ---- exp -------------------------------------------------------------------
 */

/* eng__expf_vec's original formulation, with libm's ldexpf. */
static float expf_vec_ldexpf(float x) {
    const float shift = 0x1.8p23f;
    float z = fmaf(x, 0x1.715476p+0f, shift);
    float n = z - shift;
    if (!(fabsf(n) <= 192.0f))
        return n > 0 ? INFINITY : (x != x ? x : 0.0f);
    float b = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x));
    float u = b * b;
    float j = fmaf(fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u,
                        fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
                   u, fmaf(0x1.ffffecp-1f, b, 1.0f));
    return ldexpf(j, (int)n);
}

/* The inline power-of-two scaling equals ldexpf everywhere exp goes,
 * subnormal results and overflow included: every float in [-140, 140] at
 * a fine step, and the edges around the subnormal and overflow points. */
TEST_IMPL(kernels_expf_vec_exact) {
    int checked = 0;
    for (float x = -140.0f; x <= 140.0f; x += 0.0009765625f * 1.37f) {
        float a = eng__expf_vec(x), b = expf_vec_ldexpf(x);
        ASSERT_MSG(memcmp(&a, &b, 4) == 0, "x=%.9g: %.9g vs %.9g", x, a, b);
        checked++;
    }
    for (uint32_t k = 0; k < 200000; k++) {
        float x = -150.0f + 70.0f * (float)k / 200000.0f;
        float a = eng__expf_vec(x), b = expf_vec_ldexpf(x);
        ASSERT_MSG(memcmp(&a, &b, 4) == 0, "x=%.9g: %.9g vs %.9g", x, a, b);
        x = 80.0f + 60.0f * (float)k / 200000.0f;
        a = eng__expf_vec(x);
        b = expf_vec_ldexpf(x);
        ASSERT_MSG(memcmp(&a, &b, 4) == 0, "x=%.9g: %.9g vs %.9g", x, a, b);
        checked += 2;
    }
    const float special[] = {0.0f,   -0.0f,   INFINITY, -INFINITY,
                             NAN,    1e30f,   -1e30f,   88.72f,
                             88.73f, -87.33f, -103.97f, -103.98f};
    for (size_t i = 0; i < NIB_ARRAY_LEN(special); i++) {
        float a = eng__expf_vec(special[i]), b = expf_vec_ldexpf(special[i]);
        ASSERT_MSG(memcmp(&a, &b, 4) == 0 || (a != a && b != b),
                   "x=%.9g: %.9g vs %.9g", special[i], a, b);
        checked++;
    }
    fprintf(stderr, "%d exps bit-identical to the ldexpf form\n", checked);
    return 0;
}
