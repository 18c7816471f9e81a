/* randread.c: random-read IOPS and SEEK_DATA/SEEK_HOLE map of a file, for scripts/bench.sh. */
/*
 * randread FILE THREADS READS_PER_THREAD SEED [BLOCK]
 *     THREADS threads, each with its own descriptor (POSIX_FADV_RANDOM), read
 *     READS_PER_THREAD blocks of BLOCK bytes (default 4096) at block-aligned offsets
 *     drawn from a xorshift generator seeded with SEED + thread number; prints
 *     "iops SECONDS READS IOPS".
 * randread --seekmap FILE
 *     walks the file with SEEK_DATA/SEEK_HOLE; prints "seekmap EXTENTS DATA_BYTES SIZE".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct job {
    const char *path;
    uint64_t seed;
    long reads;
    size_t block;
    uint64_t blocks;
    int failed;
};

static uint64_t
xorshift(uint64_t *s)
{
    uint64_t x = *s;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

static void *
worker(void *arg)
{
    struct job *j = arg;
    uint64_t s = j->seed * 0x9E3779B97F4A7C15ull + 1;
    char *buf = malloc(j->block);
    int fd = open(j->path, O_RDONLY);

    if (fd < 0 || buf == NULL) {
        perror(j->path);
        j->failed = 1;
        free(buf);
        return NULL;
    }
    posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
    for (long i = 0; i < j->reads; i++) {
        off_t off = (off_t)(xorshift(&s) % j->blocks) * (off_t)j->block;

        if (pread(fd, buf, j->block, off) != (ssize_t)j->block) {
            perror("pread");
            j->failed = 1;
            break;
        }
    }
    close(fd);
    free(buf);
    return NULL;
}

static int
seekmap(const char *path)
{
    int fd = open(path, O_RDONLY);
    struct stat st;
    off_t pos = 0, data_bytes = 0;
    long extents = 0;

    if (fd < 0 || fstat(fd, &st) < 0) {
        perror(path);
        return 1;
    }
    while (pos < st.st_size) {
        off_t data = lseek(fd, pos, SEEK_DATA);
        off_t hole;

        if (data < 0) {
            if (errno == ENXIO)
                break;
            perror("SEEK_DATA");
            return 1;
        }
        hole = lseek(fd, data, SEEK_HOLE);
        if (hole < 0) {
            perror("SEEK_HOLE");
            return 1;
        }
        extents++;
        data_bytes += hole - data;
        pos = hole;
    }
    printf("seekmap %ld %lld %lld\n", extents, (long long)data_bytes, (long long)st.st_size);
    close(fd);
    return 0;
}

int
main(int argc, char **argv)
{
    struct stat st;
    struct timespec t0, t1;
    int threads;
    long reads;
    size_t block = 4096;
    struct job *jobs;
    pthread_t *tids;
    double secs;
    int failed = 0;

    if (argc == 3 && strcmp(argv[1], "--seekmap") == 0)
        return seekmap(argv[2]);
    if (argc < 5) {
        fprintf(stderr, "usage: randread FILE THREADS READS_PER_THREAD SEED [BLOCK]\n"
                        "       randread --seekmap FILE\n");
        return 2;
    }
    threads = atoi(argv[2]);
    reads = atol(argv[3]);
    if (argc > 5)
        block = (size_t)atol(argv[5]);
    if (stat(argv[1], &st) < 0 || threads < 1 || reads < 1 || block < 1 ||
        (uint64_t)st.st_size < block) {
        fprintf(stderr, "randread: bad arguments or file\n");
        return 2;
    }
    jobs = calloc((size_t)threads, sizeof(*jobs));
    tids = calloc((size_t)threads, sizeof(*tids));
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < threads; i++) {
        jobs[i] = (struct job){ argv[1], strtoull(argv[4], NULL, 10) + (uint64_t)i, reads, block,
                                (uint64_t)st.st_size / block, 0 };
        pthread_create(&tids[i], NULL, worker, &jobs[i]);
    }
    for (int i = 0; i < threads; i++) {
        pthread_join(tids[i], NULL);
        failed |= jobs[i].failed;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("iops %.6f %ld %.0f\n", secs, reads * threads, (double)(reads * threads) / secs);
    free(jobs);
    free(tids);
    return failed;
}
