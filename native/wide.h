/* wide.h: exact unsigned 128-bit products and quotients from 64-bit halves.
 *
 * The step schedule multiplies a step count by a rate's denominator and by 1e9 before it
 * divides: a 72-hour infusion's products pass 2^64. GCC's unsigned __int128 exists only on
 * 64-bit targets, and the Pi 3 and Zero 2 W still run 32-bit Raspberry Pi OS (armhf), so the
 * arithmetic is done here on two 64-bit halves, the same code on every target.
 * native/test_stepgen.c checks it against __int128 where the compiler has that type, and
 * against the defining inequality of a quotient (q*d <= n < (q+1)*d) everywhere.
 */
#ifndef PCA_WIDE_H
#define PCA_WIDE_H

#include <stdint.h>

typedef struct {
    uint64_t hi, lo;
} wide;

static inline wide wide_of(uint64_t x)
{
    wide w = {0, x};
    return w;
}

/* a * b, exactly (schoolbook on 32-bit limbs). */
static inline wide wide_mul(uint64_t a, uint64_t b)
{
    uint64_t a0 = (uint32_t)a, a1 = a >> 32, b0 = (uint32_t)b, b1 = b >> 32;
    uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    uint64_t mid = (p00 >> 32) + (uint32_t)p01 + (uint32_t)p10; /* < 3 * 2^32 */
    wide w;
    w.lo = (mid << 32) | (uint32_t)p00;
    w.hi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
    return w;
}

/* a * b into *out; 0, or -1 when the product does not fit in 128 bits. */
static inline int wide_mul_by(wide a, uint64_t b, wide *out)
{
    wide lo = wide_mul(a.lo, b), hi = wide_mul(a.hi, b);
    if (hi.hi != 0 || lo.hi > UINT64_MAX - hi.lo)
        return -1;
    out->lo = lo.lo;
    out->hi = lo.hi + hi.lo;
    return 0;
}

static inline int wide_cmp(wide a, wide b)
{
    if (a.hi != b.hi)
        return a.hi < b.hi ? -1 : 1;
    return a.lo < b.lo ? -1 : a.lo > b.lo;
}

static inline wide wide_dec(wide a)
{
    if (a.lo == 0)
        a.hi--;
    a.lo--;
    return a;
}

/* floor(n / d) for d > 0, the whole 128-bit quotient (restoring division, one bit a turn;
 * a quotient that fits in 64 bits with a 64-bit dividend takes the hardware's division). */
static inline wide wide_div(wide n, uint64_t d)
{
    if (n.hi == 0)
        return wide_of(n.lo / d);
    wide q = {0, 0};
    uint64_t r = 0;
    for (int i = 127; i >= 0; i--) {
        uint64_t bit = i >= 64 ? (n.hi >> (i - 64)) & 1u : (n.lo >> i) & 1u;
        uint64_t carry = r >> 63; /* r*2 + bit may pass 2^64 when d does too */
        r = (r << 1) | bit;
        if (carry || r >= d) {
            r -= d;
            if (i >= 64)
                q.hi |= (uint64_t)1 << (i - 64);
            else
                q.lo |= (uint64_t)1 << i;
        }
    }
    return q;
}

/* min(w, limit) as a uint64_t: for results that are compared or capped afterwards. */
static inline uint64_t wide_clamp(wide w, uint64_t limit)
{
    return (w.hi != 0 || w.lo > limit) ? limit : w.lo;
}

#endif
