/*
 * What `minivmm --version` names: the release (MINIVMM_VERSION, lib/cli.h)
 * and the commit it was built from. The Makefile passes MINIVMM_COMMIT
 * (`git describe --always --dirty` at build time) to this file alone, so
 * a new commit recompiles one file; outside git it is "unknown".
 */
#include "lib/version.h"

#ifndef MINIVMM_COMMIT
#define MINIVMM_COMMIT "unknown"
#endif

const char *version_commit(void)
{
	return MINIVMM_COMMIT[0] ? MINIVMM_COMMIT : "unknown";
}
