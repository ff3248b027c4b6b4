/* What the gcc replays see of the fuzz targets. Each target (tests/fuzz/fuzz_*.c) is a
 * translation unit of its own: `make fuzz` links it with libFuzzer, and the build links
 * it into the program that replays it (tests/test_fuzz_*.c, tests/test_chan_corrupt.c),
 * which reaches it only through this header. */
#ifndef SHMKIT_FUZZ_TARGETS_H
#define SHMKIT_FUZZ_TARGETS_H

#include <stddef.h>
#include <stdint.h>

/* The entry point of every target; one target per program. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* fuzz_seg.c: removes the target's segment (the replay calls it at exit). */
void fuzz_seg_cleanup(void);

/* fuzz_blob.c: the blob's data area the patches land in: src/blob.c's control block
 * (SLOT_OFF bytes), then 2 slots of 256 bytes. */
#define FB_SLOT_OFF 2048u
#define FB_AREA (FB_SLOT_OFF + 2u * 256u)

/* fuzz_chan.c: the layout of src/chan.c (its _Static_asserts pin these), the ring's
 * data area as the target set it up before any patch (fz_snapshot), whether that
 * setup worked (fz_state: 0 not yet, 1 ready, -1 failed) and the removal of its
 * segment (fz_cleanup, also run at exit). */
#define FZ_CAP 4096u
#define FZ_RING_OFF 4096u
#define FZ_AREA (FZ_RING_OFF + FZ_CAP)
#define FZ_OFF_P_OWNER 64u
#define FZ_OFF_P_WHO 80u /* token, pid namespace, pid of the producer */
#define FZ_OFF_C_OWNER 128u
#define FZ_OFF_C_WHO 152u
#define FZ_OFF_TAIL 192u
#define FZ_OFF_HEAD 256u
#define FZ_OFF_C_STATE 384u
#define FZ_OFF_P_STATE 448u
extern unsigned char fz_snapshot[FZ_AREA];
extern int fz_state;
void fz_cleanup(void);

/* fuzz_topic.c: two topics, [0] lossy and [1] reliable, made with these limits (the
 * layout follows from them: src/topic.c's control block, 4 publisher slots, 4
 * subscriber slots, the ring at 4096); their names, their segments (a plain view to
 * patch), their data areas as set up before any patch (ft_snapshot, ft_area bytes),
 * whether the setup worked (ft_state as fz_state), how many runs met -EPROTO, and the
 * removal of both segments (ft_cleanup, also run at exit). */
#define FT_CAP 4096u /* ring bytes */
#define FT_MAX 1024u /* largest message: FT_CAP / 4 */
#define FT_SUBS 4u   /* subscriber slots */
#define FT_PUBS 4u   /* publisher slots */
struct shmkit_seg;
extern char ft_name[2][64];
extern struct shmkit_seg *ft_seg[2];
extern unsigned char *ft_snapshot[2];
extern size_t ft_area[2];
extern int ft_state;
extern unsigned long ft_eproto;
void ft_cleanup(void);

#endif
