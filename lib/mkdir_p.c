/* mkdir -p (lib/mkdir_p.h). */
#include "lib/mkdir_p.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>

/* mkdir, where an existing directory counts as made. */
static int mkdir_one(const char *path, mode_t mode)
{
	if (mkdir(path, mode) == 0)
		return 0;
	int e = errno;
	struct stat st;
	if (e == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	errno = e;
	return -1;
}

int mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	int n = snprintf(buf, sizeof(buf), "%s", path);
	if (n < 0 || (size_t)n >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	/* Each parent in turn, by cutting the path at its slashes (the
	 * leading one names the root, which is there). */
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		int rc = mkdir_one(buf, mode);
		*p = '/';
		if (rc < 0)
			return -1;
	}
	return mkdir_one(buf, mode);
}
