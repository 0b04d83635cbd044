/* schedule.c: the exact integer step schedule, one copy for real time and virtual time. */
#include <errno.h>

#include "stepgen.h"

typedef unsigned __int128 u128;

#define NS_PER_S 1000000000ULL
#define U128_MAX (~(u128)0)

int sg_step_time(int64_t t0_ns, uint64_t k, uint64_t num, uint64_t den, int64_t *out_ns)
{
    if (num == 0 || den == 0 || k == 0)
        return -EINVAL;
    /* k * den always fits in 128 bits; the factor 1e9 can overflow only for absurd k or den. */
    u128 kd = (u128)k * den;
    if (kd > U128_MAX / NS_PER_S)
        return -ERANGE;
    u128 offset = kd * NS_PER_S / num;
    /* t0 + offset must fit in int64: work in 128 bits to compare without wrapping. */
    __int128 t = (__int128)t0_ns + (__int128)offset;
    if (offset > (u128)INT64_MAX || t > (__int128)INT64_MAX)
        return -ERANGE;
    *out_ns = (int64_t)t;
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
    /* Largest k with floor(k*den*1e9/num) <= dt is floor(((dt+1)*num - 1) / (den*1e9)). */
    u128 span = (u128)((__int128)t_ns - (__int128)t0_ns) + 1;
    if (span > U128_MAX / num)
        return -ERANGE;
    u128 steps = (span * num - 1) / ((u128)den * NS_PER_S);
    if (steps > (u128)UINT64_MAX)
        return -ERANGE;
    *out_steps = (uint64_t)steps;
    return 0;
}
