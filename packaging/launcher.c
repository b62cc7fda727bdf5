/* The front of dist/tracker on Linux and macOS (packaging/build_binary.py compiles it and appends the payload).
 *
 * PyInstaller's own one-file bootloader unpacks into TMPDIR without looking first: on a noexec file system the
 * program then dies in the dynamic loader, on a full one it prints low-level errors and leaves its partial
 * _MEI directory behind, and a missing TMPDIR silently becomes /tmp (issue 23). This launcher checks the
 * directory first, unpacks PyInstaller's one-folder build of tracker into a directory of its own there, runs
 * it, and removes that directory whatever happens; when the directory cannot serve, it says so in one sentence
 * and what to set instead.
 *
 * The file is this program, then the payload, then a trailer (all integers little-endian):
 *   payload: per entry, kind (1 byte: 'd' directory, 'f' file, 'l' symbolic link), mode (4), path length (4),
 *            stored length (8), unpacked length (8), the path, then the stored bytes (a zlib stream when the
 *            stored length differs from the unpacked one, else the bytes themselves; a link's target)
 *   trailer: "TRKPACK1", payload offset (8), entry count (8), bytes needed on disk (8)
 */

#if defined(__linux__)
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#if defined(__APPLE__)
#include <mach-o/dyld.h>
#include <sys/mount.h>
#endif

#define TRAILER_MAGIC "TRKPACK1"
#define TRAILER_SIZE 32
#define ENTRY_HEADER_SIZE 25
#define MEBIBYTE (1024.0 * 1024.0)
/* The one-folder build's own executable, inside the unpacked directory. */
#define PROGRAM_NAME "tracker"
/* How the unpacked program learns the path of this file (packaging/tracker_main.py), for `service install`. */
#define LAUNCHER_PATH_VARIABLE "TRACKER_LAUNCHER_PATH"
#define NOEXEC_PROBLEM "it is on a file system mounted noexec, which does not allow running programs"

/* The signals that end a program by default: caught while unpacking, so that the directory is removed first. */
static const int ENDING_SIGNALS[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM, SIGPIPE};
#define ENDING_SIGNAL_COUNT (sizeof(ENDING_SIGNALS) / sizeof(ENDING_SIGNALS[0]))

static volatile sig_atomic_t pending_signal = 0;
static volatile pid_t child_pid = 0;

/* Where we unpack, as given (for messages) and whether TMPDIR named it. */
struct place {
    const char *directory;
    int from_tmpdir;
    uint64_t needed_bytes;
};

static uint64_t read_le(const unsigned char *bytes, int count)
{
    uint64_t value = 0;
    for (int i = count - 1; i >= 0; i--) {
        value = (value << 8) | bytes[i];
    }
    return value;
}

/* The one sentence a user sees when the directory cannot serve: what is wrong with which directory, what to set. */
static void explain(const struct place *place, const char *problem)
{
    unsigned long needed_mb = (unsigned long)((double)place->needed_bytes / MEBIBYTE + 0.999);
    if (place->from_tmpdir) {
        fprintf(stderr, "Error: Cannot unpack tracker into TMPDIR=%s: %s; ", place->directory, problem);
    } else {
        fprintf(stderr, "Error: Cannot unpack tracker into %s (TMPDIR is not set): %s; ", place->directory, problem);
    }
    fprintf(stderr, "set TMPDIR to a directory on a file system that allows running programs and has %lu MB free, "
            "e.g. TMPDIR=~/.cache\n", needed_mb);
}

static const char *problem_of_errno(int error)
{
    switch (error) {
    case ENOENT: return "it does not exist";
    case ENOTDIR: return "it is not a directory";
    case EACCES:
    case EPERM: return "it is not writable";
    case EROFS: return "it is on a read-only file system";
    case ENOSPC:
#ifdef EDQUOT
    case EDQUOT:
#endif
        return "it ran out of room while tracker was unpacked";
    default: return strerror(error);
    }
}

/* Why `place` cannot take the unpacked program, or NULL when it looks fit. Checked before writing anything, so a
 * noexec or small file system costs no partial directory. */
static const char *unfit(const struct place *place, char *buffer, size_t buffer_size)
{
    struct stat status;
    if (stat(place->directory, &status) != 0) {
        return problem_of_errno(errno);
    }
    if (!S_ISDIR(status.st_mode)) {
        return "it is not a directory";
    }
    struct statvfs file_system;
    if (statvfs(place->directory, &file_system) == 0) {
        if (file_system.f_flag & ST_RDONLY) {
            return "it is on a read-only file system";
        }
#ifdef ST_NOEXEC
        if (file_system.f_flag & ST_NOEXEC) {
            return NOEXEC_PROBLEM;
        }
#endif
        uint64_t free_bytes = (uint64_t)file_system.f_bavail * (uint64_t)file_system.f_frsize;
        if (free_bytes < place->needed_bytes) {
            snprintf(buffer, buffer_size, "it has only %.1f MB free", (double)free_bytes / MEBIBYTE);
            return buffer;
        }
    }
#if defined(__APPLE__)
    struct statfs mount_flags;  /* macOS's statvfs has no noexec flag */
    if (statfs(place->directory, &mount_flags) == 0 && (mount_flags.f_flags & MNT_NOEXEC)) {
        return NOEXEC_PROBLEM;
    }
#endif
    if (access(place->directory, W_OK | X_OK) != 0) {
        return problem_of_errno(errno);
    }
    return NULL;
}

/* A copy cut short or changed: no directory would do, so TMPDIR is not blamed. */
static int damaged(const char *executable)
{
    fprintf(stderr, "Error: %s is damaged: build it again with make binary, or copy it again\n", executable);
    return 1;
}

static int remove_entry(const char *path, const struct stat *status, int type, struct FTW *walk)
{
    (void)status; (void)type; (void)walk;
    remove(path);
    return 0;
}

static void remove_tree(const char *directory)
{
    nftw(directory, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int write_all(int descriptor, const unsigned char *bytes, size_t length)
{
    while (length > 0) {
        ssize_t written = write(descriptor, bytes, length);
        if (written < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        bytes += written;
        length -= (size_t)written;
    }
    return 0;
}

static int write_file(const char *path, mode_t mode, const unsigned char *stored, uint64_t stored_length,
                      uint64_t length)
{
    int descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
    if (descriptor < 0) {
        return -1;
    }
    int failed = 0;
    if (stored_length == length) {
        failed = write_all(descriptor, stored, (size_t)length);
    } else {
        static unsigned char chunk[1 << 18];
        z_stream stream;
        memset(&stream, 0, sizeof(stream));
        if (inflateInit(&stream) != Z_OK) {
            close(descriptor);
            errno = ENOMEM;
            return -1;
        }
        stream.next_in = (unsigned char *)stored;
        stream.avail_in = (uInt)stored_length;
        int status = Z_OK;
        while (!failed && status != Z_STREAM_END) {
            stream.next_out = chunk;
            stream.avail_out = sizeof(chunk);
            status = inflate(&stream, Z_NO_FLUSH);
            if (status != Z_OK && status != Z_STREAM_END) {
                errno = EBADMSG;  /* damaged: no directory would do, so main says so instead of blaming TMPDIR */
                failed = -1;
                break;
            }
            failed = write_all(descriptor, chunk, sizeof(chunk) - stream.avail_out);
        }
        inflateEnd(&stream);
    }
    int saved_errno = errno;
    if (close(descriptor) != 0 && !failed) {  /* some file systems report a full disk only here */
        return -1;
    }
    errno = saved_errno;
    return failed;
}

/* Unpack every entry under `directory`; -1 with errno set on the first failure (EBADMSG: the payload is damaged),
 * or on a signal meant to end us. */
static int unpack(const unsigned char *payload, const unsigned char *end, uint64_t entry_count,
                  const char *directory)
{
    char path[PATH_MAX];
    const unsigned char *cursor = payload;
    for (uint64_t i = 0; i < entry_count; i++) {
        if (pending_signal) {
            errno = EINTR;
            return -1;
        }
        if (end - cursor < ENTRY_HEADER_SIZE) {
            errno = EBADMSG;
            return -1;
        }
        char kind = (char)cursor[0];
        mode_t mode = (mode_t)read_le(cursor + 1, 4);
        size_t path_length = (size_t)read_le(cursor + 5, 4);
        uint64_t stored_length = read_le(cursor + 9, 8);
        uint64_t length = read_le(cursor + 17, 8);
        const unsigned char *name = cursor + ENTRY_HEADER_SIZE;
        if ((uint64_t)(end - cursor) < ENTRY_HEADER_SIZE + path_length + stored_length) {
            errno = EBADMSG;
            return -1;
        }
        const unsigned char *stored = name + path_length;
        cursor = stored + stored_length;
        if (snprintf(path, sizeof(path), "%s/%.*s", directory, (int)path_length, (const char *)name)
                >= (int)sizeof(path)) {
            errno = ENAMETOOLONG;
            return -1;
        }
        int failed = 0;
        if (kind == 'd') {
            failed = mkdir(path, mode);
        } else if (kind == 'f') {
            failed = write_file(path, mode, stored, stored_length, length);
        } else if (kind == 'l') {
            char target[PATH_MAX];
            snprintf(target, sizeof(target), "%.*s", (int)stored_length, (const char *)stored);
            failed = symlink(target, path);
        }
        if (failed) {
            return -1;
        }
    }
    return 0;
}

static void on_signal(int signal_number)
{
    if (child_pid > 0) {
        kill(child_pid, signal_number);  /* the program decides what a signal means, as under PyInstaller's own */
    } else {
        pending_signal = signal_number;
    }
}

/* End the way `signal_number` would have ended us, so that whoever started us sees the same status. */
static void die_of(int signal_number)
{
    signal(signal_number, SIG_DFL);
    sigset_t only;
    sigemptyset(&only);
    sigaddset(&only, signal_number);
    sigprocmask(SIG_UNBLOCK, &only, NULL);
    raise(signal_number);
    _exit(128 + signal_number);
}

static int own_path(const char *argv0, char *path, size_t size)
{
#if defined(__linux__)
    ssize_t length = readlink("/proc/self/exe", path, size - 1);
    if (length > 0) {
        path[length] = '\0';
        return 0;
    }
#elif defined(__APPLE__)
    char given[PATH_MAX];
    uint32_t given_size = sizeof(given);
    if (_NSGetExecutablePath(given, &given_size) == 0 && realpath(given, path) != NULL) {
        return 0;
    }
#endif
    (void)size;
    return realpath(argv0, path) != NULL ? 0 : -1;
}

int main(int argc, char **argv)
{
    (void)argc;
    char executable[PATH_MAX];
    if (own_path(argv[0], executable, sizeof(executable)) != 0) {
        fprintf(stderr, "Error: Cannot find tracker's own file (%s): run it by its path\n", strerror(errno));
        return 1;
    }
    int descriptor = open(executable, O_RDONLY);
    struct stat status;
    if (descriptor < 0 || fstat(descriptor, &status) != 0) {
        fprintf(stderr, "Error: Cannot read tracker's own file %s: %s\n", executable, strerror(errno));
        return 1;
    }
    if (status.st_size < TRAILER_SIZE) {
        return damaged(executable);
    }
    /* Mapped, not read: only the pages unpacked are touched, and the page cache serves them on later starts. */
    const unsigned char *file = mmap(NULL, (size_t)status.st_size, PROT_READ, MAP_PRIVATE, descriptor, 0);
    close(descriptor);
    if (file == MAP_FAILED) {
        fprintf(stderr, "Error: Cannot read tracker's own file %s: %s\n", executable, strerror(errno));
        return 1;
    }
    const unsigned char *trailer = file + status.st_size - TRAILER_SIZE;
    uint64_t payload_offset = read_le(trailer + 8, 8);
    if (memcmp(trailer, TRAILER_MAGIC, 8) != 0 || payload_offset > (uint64_t)status.st_size - TRAILER_SIZE) {
        return damaged(executable);
    }
    uint64_t entry_count = read_le(trailer + 16, 8);

    const char *tmpdir = getenv("TMPDIR");
    struct place place = {
        .directory = (tmpdir != NULL && tmpdir[0] != '\0') ? tmpdir : "/tmp",
        .from_tmpdir = tmpdir != NULL && tmpdir[0] != '\0',
        .needed_bytes = read_le(trailer + 24, 8),
    };
    char problem_buffer[128];
    const char *problem = unfit(&place, problem_buffer, sizeof(problem_buffer));
    if (problem != NULL) {
        explain(&place, problem);
        return 1;
    }

    sigset_t ending, previous;
    sigemptyset(&ending);
    for (size_t i = 0; i < ENDING_SIGNAL_COUNT; i++) {
        signal(ENDING_SIGNALS[i], on_signal);
        sigaddset(&ending, ENDING_SIGNALS[i]);
    }

    char directory[PATH_MAX];
    size_t length = strlen(place.directory);
    const char *separator = (length > 0 && place.directory[length - 1] == '/') ? "" : "/";
    if (snprintf(directory, sizeof(directory), "%s%stracker-XXXXXX", place.directory, separator)
            >= (int)sizeof(directory)) {
        explain(&place, "its path is too long");
        return 1;
    }
    if (mkdtemp(directory) == NULL) {
        explain(&place, problem_of_errno(errno));
        return 1;
    }
    if (unpack(file + payload_offset, trailer, entry_count, directory) != 0) {
        int error = errno;
        remove_tree(directory);
        if (pending_signal) {
            die_of(pending_signal);
        }
        if (error == EBADMSG) {
            return damaged(executable);
        }
        explain(&place, problem_of_errno(error));
        return 1;
    }

    char program[PATH_MAX + sizeof(PROGRAM_NAME) + 1];
    snprintf(program, sizeof(program), "%s/%s", directory, PROGRAM_NAME);
    /* A failed exec reports its errno through this pipe; a successful one closes it unwritten. */
    int exec_report[2];
    if (pipe(exec_report) != 0) {
        remove_tree(directory);
        fprintf(stderr, "Error: Cannot start tracker: %s\n", strerror(errno));
        return 1;
    }
    fcntl(exec_report[1], F_SETFD, FD_CLOEXEC);
    sigprocmask(SIG_BLOCK, &ending, &previous);  /* the child's pid is known before any handler forwards */
    pid_t pid = fork();
    if (pid == 0) {
        close(exec_report[0]);
        for (size_t i = 0; i < ENDING_SIGNAL_COUNT; i++) {
            signal(ENDING_SIGNALS[i], SIG_DFL);
        }
        sigprocmask(SIG_SETMASK, &previous, NULL);
        setenv(LAUNCHER_PATH_VARIABLE, executable, 1);
        execv(program, argv);
        int error = errno;
        ssize_t ignored = write(exec_report[1], &error, sizeof(error));
        (void)ignored;
        _exit(127);
    }
    close(exec_report[1]);
    if (pid < 0) {
        int error = errno;
        close(exec_report[0]);
        remove_tree(directory);
        fprintf(stderr, "Error: Cannot start tracker: %s\n", strerror(error));
        return 1;
    }
    child_pid = pid;
    /* Like PyInstaller's own bootloader: every signal that may be caught goes on to the program, except those
     * that concern waiting for it (SIGCHLD) or stopping from the terminal (SIGTSTP). */
    for (int signal_number = 1; signal_number < NSIG; signal_number++) {
        if (signal_number != SIGCHLD && signal_number != SIGTSTP && signal_number != SIGKILL
                && signal_number != SIGSTOP) {
            signal(signal_number, on_signal);
        }
    }
    sigprocmask(SIG_SETMASK, &previous, NULL);
    if (pending_signal) {
        kill(pid, pending_signal);
    }

    int exec_error = 0;
    ssize_t got;
    do {
        got = read(exec_report[0], &exec_error, sizeof(exec_error));
    } while (got < 0 && errno == EINTR);
    close(exec_report[0]);

    int child_status = 0;
    while (waitpid(pid, &child_status, 0) < 0 && errno == EINTR) {
    }
    remove_tree(directory);
    if (got == (ssize_t)sizeof(exec_error)) {
        /* statvfs does not know every way a file system can refuse to run programs (FUSE, some containers) */
        explain(&place, (exec_error == EACCES || exec_error == EPERM)
                ? "it is on a file system that does not allow running programs" : strerror(exec_error));
        return 1;
    }
    if (WIFSIGNALED(child_status)) {
        die_of(WTERMSIG(child_status));
    }
    return WIFEXITED(child_status) ? WEXITSTATUS(child_status) : 1;
}
