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
    int line_fd; /* the request's fd, -1 once released; the chip fd is not kept */
} chardev_backend;

/* Called by the pulse thread, or by a caller holding the generator's api_mu; never at the
 * same time as chardev_release (sg_stop joins the thread and holds api_mu around it). */
static int chardev_set(sg_backend *b, unsigned mask, unsigned values, int64_t *t_ns)
{
    chardev_backend *c = (chardev_backend *)b;
    struct gpio_v2_line_values v;
    memset(&v, 0, sizeof(v));
    v.mask = mask;
    v.bits = values & mask;
    *t_ns = sg_now_ns();
    if (c->line_fd < 0)
        return -EBADF;
    if (ioctl(c->line_fd, GPIO_V2_LINE_SET_VALUES_IOCTL, &v) < 0)
        return -errno;
    return 0;
}

/* Closing the request hands the lines back to the kernel (gpio-sim, like the board's
 * resistors, then holds them at their pulls: nENABLE high, STEP and DIR low). */
static void chardev_release(sg_backend *b)
{
    chardev_backend *c = (chardev_backend *)b;
    if (c->line_fd >= 0)
        close(c->line_fd);
    c->line_fd = -1;
}

static void chardev_close(sg_backend *b)
{
    chardev_release(b);
    free(b);
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

/* Appends `text` to the string in `buf`, cutting it short rather than overflowing. */
static void append(char *buf, size_t size, const char *text)
{
    size_t used = strlen(buf);
    size_t n = strlen(text);
    if (used + 1 >= size)
        return;
    if (n > size - used - 1)
        n = size - used - 1;
    memcpy(buf + used, text, n);
    buf[used + n] = '\0';
}

/* Opens the first chip (in label order) whose label is wanted; -1 and a message if none.
 * The message says which chips exist and which could not be opened, so a wrong label, a
 * missing driver and a permission problem read differently. */
static int find_chip(const char *dev_dir, const char *labels, char *found, size_t foundlen,
                     char *err, size_t errlen)
{
    if (labels[0] == '/') {
        int fd = open(labels, O_RDWR | O_CLOEXEC);
        if (fd < 0)
            snprintf(err, errlen, "cannot open GPIO chip %s: %s%s", labels, strerror(errno),
                     errno == EACCES ? " (add this user to the gpio group: "
                                       "hardware/99-pca-gpio.rules)" : "");
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
    int denied = 0;
    char seen_labels[256] = "";
    char denied_names[128] = "";
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, "gpiochip", 8) != 0)
            continue;
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", dev_dir, de->d_name);
        int fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0) {
            if (errno == EACCES || errno == EPERM) {
                append(denied_names, sizeof(denied_names), denied ? ", " : "");
                append(denied_names, sizeof(denied_names), de->d_name);
                denied++;
            }
            continue;
        }
        struct gpiochip_info info;
        memset(&info, 0, sizeof(info));
        if (ioctl(fd, GPIO_GET_CHIPINFO_IOCTL, &info) < 0) {
            close(fd);
            continue;
        }
        info.label[sizeof(info.label) - 1] = '\0';
        append(seen_labels, sizeof(seen_labels), seen ? ", " : "");
        append(seen_labels, sizeof(seen_labels), de->d_name);
        append(seen_labels, sizeof(seen_labels), " \"");
        append(seen_labels, sizeof(seen_labels), info.label);
        append(seen_labels, sizeof(seen_labels), "\"");
        seen++;
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
    if (best_fd >= 0)
        return best_fd;
    if (denied > 0)
        snprintf(err, errlen,
                 "no GPIO chip labelled %s could be opened: permission denied on %s in %s "
                 "(add this user to the gpio group: hardware/99-pca-gpio.rules)%s%s",
                 labels, denied_names, dev_dir, seen ? "; readable chips: " : "", seen_labels);
    else if (seen > 0)
        snprintf(err, errlen, "no GPIO chip labelled %s in %s; the chips there are %s",
                 labels, dev_dir, seen_labels);
    else
        snprintf(err, errlen,
                 "no GPIO chip labelled %s in %s: no GPIO chip at all (is this a Raspberry Pi, "
                 "with its GPIO driver loaded?)", labels, dev_dir);
    return -1;
}

/* After a refused request: the first of our lines that someone else holds, and who. */
static void describe_busy(int chip, const uint32_t offsets[SG_NUM_LINES], char *out,
                          size_t outlen)
{
    static const char *const names[SG_NUM_LINES] = {"STEP", "DIR", "ENABLE"};
    out[0] = '\0';
    for (unsigned i = 0; i < SG_NUM_LINES; i++) {
        struct gpio_v2_line_info info;
        memset(&info, 0, sizeof(info));
        info.offset = offsets[i];
        if (ioctl(chip, GPIO_V2_GET_LINEINFO_IOCTL, &info) < 0)
            continue;
        if (info.flags & GPIO_V2_LINE_FLAG_USED) {
            info.consumer[sizeof(info.consumer) - 1] = '\0';
            snprintf(out, outlen, "; line %u (%s) is already used by \"%s\"", offsets[i],
                     names[i], info.consumer[0] ? info.consumer : "another consumer");
            return;
        }
    }
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
        int claim_errno = errno;
        char busy[160] = "";
        if (claim_errno == EBUSY)
            describe_busy(chip, offsets, busy, sizeof(busy));
        snprintf(err, errlen, "cannot claim lines %u,%u,%u (STEP,DIR,ENABLE) on %s: %s%s",
                 offsets[0], offsets[1], offsets[2], found, strerror(claim_errno), busy);
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
    c->base.release = chardev_release;
    c->base.read_edges = NULL;
    c->base.close = chardev_close;
    c->base.concurrent_safe = 1; /* one ioctl per call; the kernel serialises line access */
    return &c->base;
}
