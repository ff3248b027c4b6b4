/* shmkit — umbrella header: the whole public API. */
#ifndef SHMKIT_H
#define SHMKIT_H

#include <shmkit/base.h>
#include <shmkit/version.h>
#include <shmkit/seg.h>
#include <shmkit/sync.h>
#include <shmkit/blob.h>
#include <shmkit/chan.h>
#include <shmkit/topic.h>
#include <shmkit/guard.h>
#include <shmkit/stream.h>
#include <shmkit/shmem.h>
#include <shmkit/shmfile.h>

#endif
