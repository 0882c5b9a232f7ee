/*
 * test_err.c — the error-code names: every code has a name, and kw_err_from_name turns
 * each name back into the lowest code of that name (the client maps a server's `error`
 * token this way). Two server codes reuse a library token on purpose (no_session,
 * invalid_signature: the wire token is the same); no other name is shared.
 */
#include <string.h>

#include "keywave/err.h"
#include "kwtest.h"

static void every_name_round_trips(void)
{
    for (int c = KW_OK; c <= KW_ERR_TIMEOUT; c++) {
        const char *name = kw_err_name((kw_err)c);
        KWT_CHECK(strcmp(name, "unknown_error") != 0);
        kw_err back = kw_err_from_name(name);
        KWT_CHECK((int)back <= c);
        KWT_STREQ(kw_err_name(back), name);
        int shared = 0;
        for (int d = KW_OK; d < c; d++)
            shared += strcmp(kw_err_name((kw_err)d), name) == 0;
        if (c == KW_ERR_UNKNOWN_CLIENT || c == KW_ERR_AUTH_SIGNATURE)
            KWT_EQ(shared, 1);
        else
            KWT_EQ(shared, 0);
    }
}

static void unknown_names(void)
{
    KWT_EQ((int)kw_err_from_name(NULL), (int)KW_ERR_INTERNAL);
    KWT_EQ((int)kw_err_from_name(""), (int)KW_ERR_INTERNAL);
    KWT_EQ((int)kw_err_from_name("no_such_token"), (int)KW_ERR_INTERNAL);
    KWT_EQ((int)kw_err_from_name("Forbidden"), (int)KW_ERR_INTERNAL);
    KWT_EQ((int)kw_err_from_name("forbidden"), (int)KW_ERR_FORBIDDEN);
    KWT_EQ((int)kw_err_from_name("timeout"), (int)KW_ERR_TIMEOUT);
    KWT_STREQ(kw_err_name((kw_err)(KW_ERR_TIMEOUT + 1)), "unknown_error");
}

int main(void)
{
    KWT_RUN(every_name_round_trips);
    KWT_RUN(unknown_names);
    return kwt_finish();
}
