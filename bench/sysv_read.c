/* The floor for `shmctl write sysv:ID FILE`: read() of FILE straight into the shmat mapping,
   in chunks of CHUNK bytes (default 1 MiB). Compiled by bench_io.py at run time.
   usage: sysv_read SHMID FILE [CHUNK] */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/shm.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s SHMID FILE [CHUNK]\n", argv[0]);
        return 2;
    }
    int shmid = atoi(argv[1]);
    size_t chunk = argc > 3 ? strtoull(argv[3], NULL, 0) : 1 << 20;
    struct shmid_ds ds;
    if (shmctl(shmid, IPC_STAT, &ds) < 0) { perror("shmctl"); return 1; }
    char *base = shmat(shmid, NULL, 0);
    if (base == (void *)-1) { perror("shmat"); return 1; }
    int fd = open(argv[2], O_RDONLY);
    if (fd < 0) { perror("open"); return 1; }
    size_t done = 0, size = ds.shm_segsz;
    while (done < size) {
        size_t want = size - done < chunk ? size - done : chunk;
        ssize_t got = read(fd, base + done, want);
        if (got < 0) { perror("read"); return 1; }
        if (got == 0) break;
        done += (size_t)got;
    }
    close(fd);
    shmdt(base);
    return 0;
}
