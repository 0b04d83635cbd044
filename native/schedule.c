/* schedule.c: the exact integer step schedule, one copy for real time and virtual time. */
#include <errno.h>

#include "stepgen.h"
#include "wide.h"

#define NS_PER_S 1000000000ULL

int sg_step_time(int64_t t0_ns, uint64_t k, uint64_t num, uint64_t den, int64_t *out_ns)
{
    if (num == 0 || den == 0 || k == 0)
        return -EINVAL;
    /* k * den always fits in 128 bits; the factor 1e9 can overflow only for absurd k or den. */
    wide kd_ns;
    if (wide_mul_by(wide_mul(k, den), NS_PER_S, &kd_ns) != 0)
        return -ERANGE;
    wide offset = wide_div(kd_ns, num);
    /* t0 + offset must fit in int64 without wrapping. */
    if (offset.hi != 0 || offset.lo > (uint64_t)INT64_MAX ||
        (t0_ns > 0 && offset.lo > (uint64_t)(INT64_MAX - t0_ns)))
        return -ERANGE;
    *out_ns = t0_ns + (int64_t)offset.lo;
    return 0;
}

int sg_steps_by(int64_t t0_ns, int64_t t_ns, uint64_t num, uint64_t den, uint64_t *out_steps)
{
    if (den == 0)
        return -EINVAL;
    if (num == 0 || t_ns < t0_ns) {
        *out_steps = 0;
        return 0;
    }
    /* Largest k with floor(k*den*1e9/num) <= dt is floor(((dt+1)*num - 1) / (den*1e9)),
     * divided in two steps (floor(floor(x/a)/b) = floor(x/(a*b)) for positive integers). */
    uint64_t dt = (uint64_t)t_ns - (uint64_t)t0_ns; /* exact: 0 <= t - t0 < 2^64 */
    wide span = dt == UINT64_MAX ? (wide){1, 0} : wide_of(dt + 1);
    wide product;
    if (wide_mul_by(span, num, &product) != 0)
        return -ERANGE;
    wide steps = wide_div(wide_div(wide_dec(product), NS_PER_S), den);
    if (steps.hi != 0)
        return -ERANGE;
    *out_steps = steps.lo;
    return 0;
}
