/* backend_chardev.c: STEP/DIR/ENABLE through the Linux GPIO character device, uapi v2 (every Pi). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/gpio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "stepgen.h"

typedef struct chardev_backend {
    sg_backend base;
    int line_fd; /* the request's fd; the chip fd is not needed once lines are held */
} chardev_backend;

static int chardev_set(sg_backend *b, unsigned mask, unsigned values, int64_t *t_ns)
{
    chardev_backend *c = (chardev_backend *)b;
    struct gpio_v2_line_values v;
    memset(&v, 0, sizeof(v));
    v.mask = mask;
    v.bits = values & mask;
    *t_ns = sg_now_ns();
    if (ioctl(c->line_fd, GPIO_V2_LINE_SET_VALUES_IOCTL, &v) < 0)
        return -errno;
    return 0;
}

static void chardev_close(sg_backend *b)
{
    chardev_backend *c = (chardev_backend *)b;
    close(c->line_fd);
    free(c);
}

/* Position of `label` in the comma-separated `labels` (0 first), or -1 when not listed. */
static int label_rank(const char *labels, const char *label)
{
    size_t n = strlen(label);
    const char *p = labels;
    for (int rank = 0; n > 0; rank++) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && strncmp(p, label, n) == 0)
            return rank;
        if (!end)
            break;
        p = end + 1;
    }
    return -1;
}

/* Opens the first chip (in label order) whose label is wanted; -1 and a message if none. */
static int find_chip(const char *dev_dir, const char *labels, char *found, size_t foundlen,
                     char *err, size_t errlen)
{
    if (labels[0] == '/') {
        int fd = open(labels, O_RDWR | O_CLOEXEC);
        if (fd < 0)
            snprintf(err, errlen, "cannot open GPIO chip %s: %s", labels, strerror(errno));
        else
            snprintf(found, foundlen, "%s", labels);
        return fd;
    }
    DIR *d = opendir(dev_dir);
    if (!d) {
        snprintf(err, errlen, "no GPIO chip: cannot list %s: %s", dev_dir, strerror(errno));
        return -1;
    }
    int best_fd = -1;
    int best_rank = -1;
    int seen = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, "gpiochip", 8) != 0)
            continue;
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", dev_dir, de->d_name);
        int fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0)
            continue;
        struct gpiochip_info info;
        memset(&info, 0, sizeof(info));
        if (ioctl(fd, GPIO_GET_CHIPINFO_IOCTL, &info) < 0) {
            close(fd);
            continue;
        }
        seen++;
        info.label[sizeof(info.label) - 1] = '\0';
        /* Rank by position in `labels` so the caller's preference wins over readdir order. */
        int rank = label_rank(labels, info.label);
        if (rank >= 0 && (best_rank < 0 || rank < best_rank)) {
            if (best_fd >= 0)
                close(best_fd);
            best_fd = fd;
            best_rank = rank;
            snprintf(found, foundlen, "%s (%s)", path, info.label);
        } else {
            close(fd);
        }
    }
    closedir(d);
    if (best_fd < 0)
        snprintf(err, errlen,
                 "no GPIO chip labelled %s in %s (%d chip%s found); on a Raspberry Pi check "
                 "that /dev/gpiochip* exists and is readable by this user",
                 labels, dev_dir, seen, seen == 1 ? "" : "s");
    return best_fd;
}

sg_backend *sg_backend_chardev_open(const char *dev_dir, const char *labels,
                                    const uint32_t offsets[SG_NUM_LINES], int enable_active_low,
                                    char *err, size_t errlen)
{
    if (!labels || !labels[0]) {
        snprintf(err, errlen, "no GPIO chip label given");
        return NULL;
    }
    char found[600] = "";
    int chip = find_chip(dev_dir ? dev_dir : "/dev", labels, found, sizeof(found), err, errlen);
    if (chip < 0)
        return NULL;

    struct gpio_v2_line_request req;
    memset(&req, 0, sizeof(req));
    for (unsigned i = 0; i < SG_NUM_LINES; i++)
        req.offsets[i] = offsets[i];
    req.num_lines = SG_NUM_LINES;
    snprintf(req.consumer, sizeof(req.consumer), "pca-stepgen");
    req.config.flags = GPIO_V2_LINE_FLAG_OUTPUT;
    /* Start with every line logically 0: STEP low, DIR 0, driver disabled. */
    req.config.attrs[0].attr.id = GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES;
    req.config.attrs[0].attr.values = 0;
    req.config.attrs[0].mask = (1u << SG_NUM_LINES) - 1;
    req.config.num_attrs = 1;
    if (enable_active_low) {
        /* nEN on A4988/DRV8825/TMC2209: logical 1 (enabled) must drive the pin low. */
        req.config.attrs[1].attr.id = GPIO_V2_LINE_ATTR_ID_FLAGS;
        req.config.attrs[1].attr.flags = GPIO_V2_LINE_FLAG_OUTPUT | GPIO_V2_LINE_FLAG_ACTIVE_LOW;
        req.config.attrs[1].mask = 1u << SG_LINE_ENABLE;
        req.config.num_attrs = 2;
    }
    if (ioctl(chip, GPIO_V2_GET_LINE_IOCTL, &req) < 0) {
        snprintf(err, errlen, "cannot claim lines %u,%u,%u (STEP,DIR,ENABLE) on %s: %s",
                 offsets[0], offsets[1], offsets[2], found, strerror(errno));
        close(chip);
        return NULL;
    }
    close(chip);

    chardev_backend *c = calloc(1, sizeof(*c));
    if (!c) {
        close(req.fd);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->line_fd = req.fd;
    c->base.set = chardev_set;
    c->base.read_edges = NULL;
    c->base.close = chardev_close;
    c->base.concurrent_safe = 1; /* one ioctl per call; the kernel serialises line access */
    return &c->base;
}
