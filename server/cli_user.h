/*
 * cli_user.h — `keywaved user add <name>` and `keywaved user code <name>` (DESIGN.md
 * section 4): an administrator creates a member, or issues another one-time enrollment
 * code for an existing member's next device.
 */
#ifndef KEYWAVE_SERVER_CLI_USER_H
#define KEYWAVE_SERVER_CLI_USER_H

#include <stdio.h>

/*
 * Runs the `user` command; argv[0] is "user". Opens the data directory of the same
 * configuration the server uses (environment, then `--config FILE` or ./keywave.conf),
 * works while the server runs (WAL, busy timeout), and prints the enrollment code alone on
 * one line of stdout, nothing else. Messages go to stderr. Returns the exit status: 0 done,
 * 1 failed (unknown or existing user, configuration, storage), 2 bad usage.
 */
int kw_cli_user(int argc, char **argv);

/* Writes the usage lines of the `user` command to out. */
void kw_cli_user_usage(FILE *out);

#endif
