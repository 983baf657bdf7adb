/*
 * Making a directory and its missing parents, like `mkdir -p` (lib/mkdir_p.c),
 * for the cache's and an image store's folders.
 */
#ifndef MINIVMM_LIB_MKDIR_P_H
#define MINIVMM_LIB_MKDIR_P_H

#include <sys/types.h>

/* Create path and every missing directory above it with mode (less the
 * umask). Directories already there (or symlinks to them) are fine;
 * anything else already under one of those names is EEXIST. 0, or -1
 * with errno (ENAMETOOLONG past PATH_MAX). */
int mkdir_p(const char *path, mode_t mode);

#endif
