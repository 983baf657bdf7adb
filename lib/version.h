/*
 * The commit minivmm was built from: `git describe --always --dirty` when
 * it was built in a git checkout (e.g. "9035bc9" or "9035bc9-dirty"), else
 * "unknown". Never NULL.
 */
#ifndef MINIVMM_LIB_VERSION_H
#define MINIVMM_LIB_VERSION_H

const char *version_commit(void);

#endif
