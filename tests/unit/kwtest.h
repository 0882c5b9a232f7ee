/*
 * kwtest.h — the unit-test harness: a test is a function; KWT_RUN counts it passed when
 * none of its checks failed. Each binary ends with one line `RESULT passed=N failed=M`
 * that tests/run.sh adds up. Header-only so every test file is one self-contained binary.
 */
#ifndef KEYWAVE_KWTEST_H
#define KEYWAVE_KWTEST_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int kwt_cases_passed, kwt_cases_failed, kwt_checks_failed;

static inline int kwt_check(int ok, const char *what, const char *file, int line)
{
    if (!ok) {
        kwt_checks_failed++;
        printf("  FAIL %s:%d: %s\n", file, line, what);
    }
    return ok;
}

/* Checks a condition; evaluates to the condition so a test can stop early. */
#define KWT_CHECK(cond) kwt_check(!!(cond), #cond, __FILE__, __LINE__)

/* Checks two integers are equal and prints both when not. */
#define KWT_EQ(a, b)                                                                               \
    do {                                                                                           \
        long long kwt_a_ = (long long)(a), kwt_b_ = (long long)(b);                                \
        if (!kwt_check(kwt_a_ == kwt_b_, #a " == " #b, __FILE__, __LINE__))                        \
            printf("    got %lld, want %lld\n", kwt_a_, kwt_b_);                                   \
    } while (0)

/* Checks a kw_err equals the expected code, naming both on failure. */
#define KWT_ERR(got, want)                                                                         \
    do {                                                                                           \
        kw_err kwt_g_ = (got), kwt_w_ = (want);                                                    \
        if (!kwt_check(kwt_g_ == kwt_w_, #got " == " #want, __FILE__, __LINE__))                   \
            printf("    got %s (%d), want %s (%d)\n", kw_err_name(kwt_g_), (int)kwt_g_,            \
                   kw_err_name(kwt_w_), (int)kwt_w_);                                              \
    } while (0)

#define KWT_STREQ(a, b)                                                                            \
    do {                                                                                           \
        const char *kwt_sa_ = (a), *kwt_sb_ = (b);                                                 \
        int kwt_ok_ = kwt_sa_ && kwt_sb_ && strcmp(kwt_sa_, kwt_sb_) == 0;                         \
        if (!kwt_check(kwt_ok_, #a " equals " #b, __FILE__, __LINE__))                             \
            printf("    got \"%s\", want \"%s\"\n", kwt_sa_ ? kwt_sa_ : "(null)",                  \
                   kwt_sb_ ? kwt_sb_ : "(null)");                                                  \
    } while (0)

#define KWT_MEMEQ(a, b, n) KWT_CHECK(memcmp((a), (b), (n)) == 0)

/* Runs one test function and counts it. */
#define KWT_RUN(fn)                                                                                \
    do {                                                                                           \
        int kwt_before_ = kwt_checks_failed;                                                       \
        fn();                                                                                      \
        if (kwt_checks_failed == kwt_before_) {                                                    \
            kwt_cases_passed++;                                                                    \
            printf("ok   %s\n", #fn);                                                              \
        } else {                                                                                   \
            kwt_cases_failed++;                                                                    \
            printf("FAIL %s\n", #fn);                                                              \
        }                                                                                          \
    } while (0)

/* Prints the RESULT line; returns the process exit status. */
static inline int kwt_finish(void)
{
    printf("RESULT passed=%d failed=%d\n", kwt_cases_passed, kwt_cases_failed);
    fflush(stdout);
    return kwt_cases_failed ? 1 : 0;
}

/* Decodes a hex string into out (capacity cap); returns the byte count or -1. */
static inline int kwt_hex(const char *hex, unsigned char *out, size_t cap)
{
    size_t n = strlen(hex);
    if (n % 2 || n / 2 > cap)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (unsigned char)v;
    }
    return (int)(n / 2);
}

#endif
