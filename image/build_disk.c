/*
 * image build's ext4 disk image: `mkfs.ext4 -d` from a staging directory,
 * with debugfs fixing what an unprivileged staging directory cannot hold
 * (owners, device nodes); UUID and hash seed derived from the content.
 */
#include "image/build_priv.h"
#include "lib/log.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#define BUILD_FS_BLOCK 4096
#define BUILD_INODE_SIZE 256
/* Room for the journal, metadata and what the guest writes in full mode. */
#define BUILD_DISK_SLACK (64ULL << 20)
#define BUILD_EXTRA_INODES 4096

static int run_cmd(char *const argv[], const char *log_path, char *err, size_t errlen)
{
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execvp(argv[0], argv);
		log_error("cannot run %s: %s", argv[0], strerror(errno));
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	char tail[600] = "";
	FILE *f = fopen(log_path, "r");
	if (f) {
		size_t n = fread(tail, 1, sizeof(tail) - 1, f);
		tail[n] = '\0';
		fclose(f);
	}
	snprintf(err, errlen, "%s failed (exit %d): %s", argv[0],
		 WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), tail);
	return -1;
}

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)ftw;
	if (flag == FTW_DP || flag == FTW_D)
		chmod(p, 0700), rmdir(p);
	else
		unlink(p);
	return 0;
}

static void rm_rf(const char *dir)
{
	/* Directories staged 0555 must be writable before they can be emptied. */
	nftw(dir, rm_cb, 32, FTW_DEPTH | FTW_PHYS);
	rmdir(dir);
}

/* debugfs reads one command per line and takes "..." with "" for a quote
 * (lib/ss/parse.c). A newline cannot be expressed. */
static bool debugfs_quote(FILE *f, const char *path)
{
	if (strchr(path, '\n'))
		return false;
	fputs("\"/", f);
	for (const char *p = path; *p; p++) {
		if (*p == '"')
			fputc('"', f);
		fputc(*p, f);
	}
	fputc('"', f);
	return true;
}

int build_disk(struct build *b, struct manifest *m, const uint8_t seed[MANIFEST_DIGEST_LEN],
	       int64_t fixed_time, char *err, size_t errlen)
{
	char stage[4200], img[4200], cmds[4200], log[4200], show[600];
	snprintf(stage, sizeof(stage), "%s/.stage.%d", b->out, (int)getpid());
	snprintf(img, sizeof(img), "%s/.disk.%d.img", b->out, (int)getpid());
	snprintf(cmds, sizeof(cmds), "%s/.debugfs.%d.cmds", b->out, (int)getpid());
	snprintf(log, sizeof(log), "%s/.mkfs.%d.log", b->out, (int)getpid());
	bool root = geteuid() == 0;
	int rc = -1;
	FILE *dbg = NULL;
	size_t n_dbg = 0;
	uint64_t data = 0;
	rm_rf(stage);
	if (mkdir(stage, 0755) < 0) {
		snprintf(err, errlen, "%s: %s", stage, strerror(errno));
		return -1;
	}
	int sfd = open(stage, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	for (size_t i = 1; i < m->n_entries; i++) {
		const struct manifest_entry *e = &m->entries[i];
		int r = 0;
		data += BUILD_FS_BLOCK;
		switch (e->type) {
		case MF_DIR: r = mkdirat(sfd, e->path, 0700); break;
		case MF_REG: {
			char blob[4300];
			image_blob_path(b->out, manifest_blob_name(e), blob, sizeof(blob));
			int in = open(blob, O_RDONLY | O_CLOEXEC);
			int o = openat(sfd, e->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
			r = in < 0 || o < 0 || image_blob_expand(in, o, e, m->chunk_size) < 0 ? -1 : 0;
			if (in >= 0)
				close(in);
			if (o >= 0)
				close(o);
			break;
		}
		case MF_SYMLINK: r = symlinkat(e->target, sfd, e->path); break;
		case MF_HARDLINK: r = linkat(sfd, e->target, sfd, e->path, 0); break;
		case MF_FIFO: r = mknodat(sfd, e->path, S_IFIFO | 0600, 0); break;
		case MF_SOCK: r = mknodat(sfd, e->path, S_IFSOCK | 0600, 0); break;
		case MF_CHR:
		case MF_BLK:
			if (root) {
				r = mknodat(sfd, e->path, (e->type == MF_CHR ? S_IFCHR : S_IFBLK) | 0600,
					    (dev_t)e->rdev);
			}
			/* Else made by debugfs after mkfs: an unprivileged
			 * process cannot create device nodes. */
			break;
		}
		if (r < 0) {
			snprintf(err, errlen, "staging %s for the disk image: %s",
				 build_shown(e->path, show, sizeof(show)), strerror(errno));
			close(sfd);
			goto out;
		}
	}
	/* The debugfs script: devices (non-root), owners wherever the staging
	 * directory could not hold them, and ctime, which mkfs -d copies from
	 * the staging files (the time they were made) and utimensat cannot set:
	 * set to mtime, so that the disk's digest depends on the content only. */
	dbg = fopen(cmds, "w");
	for (size_t i = 0; dbg && i < m->n_entries; i++) {
		const struct manifest_entry *e = &m->entries[i];
		bool dev = (e->type == MF_CHR || e->type == MF_BLK) && !root;
		bool owner = !root && (e->uid != geteuid() || e->gid != getegid());
		/* Bytes that are not holes: a sparse file costs only its data. */
		if (e->type == MF_REG)
			data += (b->v[i].data_bytes + BUILD_FS_BLOCK - 1) / BUILD_FS_BLOCK * BUILD_FS_BLOCK;
		if (e->type == MF_HARDLINK)
			continue; /* shares the inode of its target */
		if (strchr(e->path, '\n')) {
			log_warn("image build: %s has a newline in its name, "
				"which debugfs cannot take: its ctime%s in the disk image are left as "
				"staged", build_shown(e->path, show, sizeof(show)),
				dev ? " (and the device node)" : owner ? " and owner" : "");
			b->warnings++;
			continue;
		}
		if (dev) {
			/* debugfs mknod links the name into its current
			 * directory as given: cd to the parent first. */
			const char *slash = strrchr(e->path, '/');
			fprintf(dbg, "cd \"/%.*s\"\nmknod \"", slash ? (int)(slash - e->path) : 0, e->path);
			for (const char *p = slash ? slash + 1 : e->path; *p; p++)
				fprintf(dbg, *p == '"' ? "\"\"" : "%c", *p);
			fprintf(dbg, "\" %c %u %u\ncd /\n", e->type == MF_CHR ? 'c' : 'b',
				major((dev_t)e->rdev), minor((dev_t)e->rdev));
			fprintf(dbg, "sif ");
			debugfs_quote(dbg, e->path);
			fprintf(dbg, " mode 0%o\n", (e->type == MF_CHR ? S_IFCHR : S_IFBLK) | e->mode);
			fprintf(dbg, "sif ");
			debugfs_quote(dbg, e->path);
			fprintf(dbg, " mtime @%lld\n", (long long)e->mtime_sec);
		}
		if (owner || dev) {
			fprintf(dbg, "sif ");
			debugfs_quote(dbg, e->path);
			fprintf(dbg, " uid %u\nsif ", e->uid);
			debugfs_quote(dbg, e->path);
			fprintf(dbg, " gid %u\n", e->gid);
		}
		const char *tf[] = {"ctime", "atime"};
		for (int k = 0; k < 2; k++) {
			fprintf(dbg, "sif ");
			debugfs_quote(dbg, e->path);
			fprintf(dbg, " %s @%lld\n", tf[k], (long long)e->mtime_sec);
		}
		n_dbg++;
	}
	if (!dbg || fclose(dbg) != 0) {
		dbg = NULL;
		snprintf(err, errlen, "%s: %s", cmds, strerror(errno));
		close(sfd);
		goto out;
	}
	dbg = NULL;
	/* Modes, owners and times last, deepest first, so a read-only
	 * directory is filled before it becomes read-only. */
	for (size_t i = m->n_entries; i-- > 0;) {
		const struct manifest_entry *e = &m->entries[i];
		const char *p = e->path[0] ? e->path : ".";
		if ((e->type == MF_CHR || e->type == MF_BLK) && !root)
			continue;
		if (e->type == MF_HARDLINK)
			continue;
		if (root && fchownat(sfd, p, e->uid, e->gid, AT_SYMLINK_NOFOLLOW) < 0)
			goto stage_err;
		if (e->type != MF_SYMLINK && fchmodat(sfd, p, e->mode, 0) < 0)
			goto stage_err;
		struct timespec ts[2] = {{e->mtime_sec, e->mtime_nsec}, {e->mtime_sec, e->mtime_nsec}};
		if (utimensat(sfd, p, ts, AT_SYMLINK_NOFOLLOW) < 0)
			goto stage_err;
		continue;
	stage_err:
		snprintf(err, errlen, "staging %s: %s", build_shown(p, show, sizeof(show)), strerror(errno));
		close(sfd);
		goto out;
	}
	close(sfd);

	uint64_t inodes = m->n_entries + BUILD_EXTRA_INODES;
	uint64_t bytes = data + inodes * BUILD_INODE_SIZE;
	bytes = bytes + bytes / 4 + BUILD_DISK_SLACK;
	bytes = (bytes + (1 << 20) - 1) & ~((uint64_t)(1 << 20) - 1);
	char uuid[40], seed_hex[2 * MANIFEST_DIGEST_LEN + 1], size_arg[32], inodes_arg[32],
		ext_arg[128], fake_time[32];
	manifest_digest_hex(seed, seed_hex);
	snprintf(uuid, sizeof(uuid), "%.8s-%.4s-%.4s-%.4s-%.12s", seed_hex, seed_hex + 8,
		 seed_hex + 12, seed_hex + 16, seed_hex + 20);
	snprintf(size_arg, sizeof(size_arg), "%" PRIu64 "k", bytes >> 10);
	snprintf(inodes_arg, sizeof(inodes_arg), "%" PRIu64, inodes);
	snprintf(ext_arg, sizeof(ext_arg), "hash_seed=%s,root_owner=%u:%u", uuid,
		 m->entries[0].uid, m->entries[0].gid);
	snprintf(fake_time, sizeof(fake_time), "%lld", (long long)fixed_time);
	/* mke2fs reads E2FSPROGS_FAKE_TIME for the times it sets itself. */
	setenv("E2FSPROGS_FAKE_TIME", fake_time, 1);
	unlink(img);
	char *mkfs[] = {"mkfs.ext4", "-q", "-F", "-b", "4096", "-I", "256", "-L", "minivmm-root",
			"-U", uuid, "-E", ext_arg, "-N", inodes_arg, "-d", stage, img, size_arg, NULL};
	if (run_cmd(mkfs, log, err, errlen) < 0)
		goto out;
	if (n_dbg) {
		char *dbgfs[] = {"debugfs", "-w", "-f", cmds, img, NULL};
		if (run_cmd(dbgfs, log, err, errlen) < 0)
			goto out;
		/* debugfs reports a failed command but still exits 0. */
		FILE *lf = fopen(log, "r");
		char line[512];
		while (lf && fgets(line, sizeof(line), lf))
			if (strstr(line, "Could not") || strstr(line, "not found") ||
			    strstr(line, "Invalid")) {
				snprintf(err, errlen, "debugfs on the disk image: %s", line);
				fclose(lf);
				goto out;
			}
		if (lf)
			fclose(lf);
	}
	/* Check the result the way the guest will mount it. */
	char *fsck[] = {"e2fsck", "-fn", img, NULL};
	if (run_cmd(fsck, log, err, errlen) < 0)
		goto out;
	if (image_blob_from_file(b->out, img, m->chunk_size, &m->disk, err, errlen) < 0)
		goto out;
	rc = 0;
out:
	unsetenv("E2FSPROGS_FAKE_TIME");
	if (dbg)
		fclose(dbg);
	rm_rf(stage);
	unlink(img);
	unlink(cmds);
	unlink(log);
	return rc;
}

