/* shmkit — the SIGBUS guard: a segment truncated under a shmkit call becomes -EFAULT.
 *
 * Registry. Every POSIX mapping the seg layer makes is entered in a table of slots
 * (its start, size, protection, whether a shmkit header starts it, and a poison word)
 * and removed before it is unmapped. The handler must find a mapping from a fault
 * address without locks or allocation, so the table is chunks of slots that are
 * allocated on demand (mmap), published with a CAS and never freed; slots are claimed
 * with a CAS on their start word. The table is kept whether or not the guard is
 * installed, so that handles opened before shmkit_guard_sigbus() are covered too.
 *
 * Marker. A thread is "inside a shmkit call" while its thread-local word (internal.h)
 * has a nonzero depth; the guarded entry points raise it around their work, and the
 * handler sets SHMKIT__GUARD_FAULT in it when it turns a SIGBUS into an error, so the
 * entry point learns that its call failed. Initial-exec TLS: no allocation on first
 * touch, so reading it in a signal handler is safe. The channel's fast paths (send,
 * reserve, commit, peek, release) cannot afford the marker's stores: they live in a
 * section of their own (SHMKIT__GUARDED_CODE), and a fault whose instruction lies
 * there counts as inside a call (x86-64 and AArch64; elsewhere, and under TSan, they
 * take the marker too).
 *
 * Handler. A SIGBUS that is a fault (BUS_ADRERR: a page past the end of the file) in
 * a registered mapping, taken inside a shmkit call, is answered by replacing the whole
 * mapping with private zero memory whose header, if any, already says DELETED (so every
 * loop that watches for deletion stops, and the faulting access completes when the
 * handler returns). The poison word is set first, then the replacement appears with one
 * mremap(2) (atomically, for threads sharing the handle). Everything else goes where it
 * went before the guard: the previous handler, or the default action. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <ucontext.h>

#include <shmkit/guard.h>
#include "internal.h"

/* 1024 slots per chunk and 256 chunks: 262 144 mappings, beyond the kernel's default
 * limit of 65 530 mappings per process (vm.max_map_count). */
#define SLOTS 1024u
#define CHUNKS 256u

/* poison word values */
enum { INTACT = 0, REPLACING = 1, REPLACED = 2 };

/* A registered mapping. Written by the registering thread (base last, with release),
 * read by the handler on any thread (base first, with acquire, then rechecked).
 * poison is written by the handler only, read by every call on the handle. */
struct shmkit__guard_slot {
	_Atomic uintptr_t base;  /* 0: free; CLAIMED: being filled; else the mapping's start */
	_Atomic size_t size;     /* bytes mapped */
	_Atomic int prot;        /* its protection, kept by the replacement */
	_Atomic int hdr;         /* 1: a shmkit header starts it */
	_Atomic uint32_t poison; /* INTACT, REPLACING or REPLACED */
};
#define CLAIMED ((uintptr_t)1)

_Thread_local _Atomic uint32_t shmkit__guard_tls __attribute__((tls_model("initial-exec")));

static _Atomic(struct shmkit__guard_slot *) chunks[CHUNKS];

/* SHMKIT__GUARDED_CODE's bounds, from the linker (weak: none on other architectures). */
extern const char __start_shmkit_guarded[] __attribute__((weak, visibility("hidden")));
extern const char __stop_shmkit_guarded[] __attribute__((weak, visibility("hidden")));

static pthread_mutex_t install_lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t installed_pid;         /* under install_lock: the process that installed it
                                     * (a forked child decides afresh) */
static struct sigaction prev;       /* written (under install_lock) before the handler
                                     * is installed, read by it */

static struct shmkit__guard_slot *chunk(unsigned i, int create)
{
	struct shmkit__guard_slot *c = atomic_load_explicit(&chunks[i], memory_order_acquire);
	if (c || !create)
		return c;
	/* mmap, not malloc: zeroed, and nothing a signal handler could meet half built. */
	void *p = mmap(NULL, SLOTS * sizeof *c, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	/* Release: the zeroed slots are visible to whoever finds the chunk. A thread that
	 * lost the race uses the winner's chunk. */
	if (atomic_compare_exchange_strong_explicit(&chunks[i], &c, p, memory_order_acq_rel,
						    memory_order_acquire))
		return p;
	munmap(p, SLOTS * sizeof *c);
	return c;
}

int shmkit__guard_add(void *base, size_t size, int prot, int hdr, struct shmkit__guard_slot **out)
{
	*out = NULL;
	for (unsigned i = 0; i < CHUNKS; i++) {
		struct shmkit__guard_slot *c = chunk(i, 1);
		if (!c)
			return -ENOMEM;
		for (unsigned j = 0; j < SLOTS; j++) {
			struct shmkit__guard_slot *s = &c[j];
			uintptr_t free_ = 0;
			if (atomic_load_explicit(&s->base, memory_order_relaxed) != 0 ||
			    !atomic_compare_exchange_strong_explicit(&s->base, &free_, CLAIMED,
								     memory_order_acquire,
								     memory_order_relaxed))
				continue;
			atomic_store_explicit(&s->size, size, memory_order_relaxed);
			atomic_store_explicit(&s->prot, prot, memory_order_relaxed);
			atomic_store_explicit(&s->hdr, hdr, memory_order_relaxed);
			atomic_store_explicit(&s->poison, INTACT, memory_order_relaxed);
			/* Release: a handler that sees this base sees the fields above. */
			atomic_store_explicit(&s->base, (uintptr_t)base, memory_order_release);
			*out = s;
			return 0;
		}
	}
	return -ENOMEM;
}

void shmkit__guard_remove(struct shmkit__guard_slot *s)
{
	/* Before the unmap: the handler must never replace an address range that may be
	 * reused by an unrelated mapping. */
	if (s)
		atomic_store_explicit(&s->base, 0, memory_order_release);
}

int shmkit__guard_poisoned(const struct shmkit__guard_slot *s)
{
	/* Acquire pairs with the handler's store; it comes before the replacement, so a
	 * thread that read the replacement's zeros and then looks here sees the poison. */
	return s && atomic_load_explicit(&s->poison, memory_order_acquire) != INTACT;
}

/* The registered mapping holding addr, or NULL. */
static struct shmkit__guard_slot *find(uintptr_t addr, uintptr_t *base, size_t *size)
{
	for (unsigned i = 0; i < CHUNKS; i++) {
		struct shmkit__guard_slot *c = chunk(i, 0);
		if (!c)
			return NULL; /* chunks are filled in order */
		for (unsigned j = 0; j < SLOTS; j++) {
			uintptr_t b = atomic_load_explicit(&c[j].base, memory_order_acquire);
			if (b <= CLAIMED)
				continue;
			size_t n = atomic_load_explicit(&c[j].size, memory_order_relaxed);
			/* Recheck: a slot reused meanwhile describes another mapping. */
			if (addr - b < n && atomic_load_explicit(&c[j].base, memory_order_acquire) == b) {
				*base = b;
				*size = n;
				return &c[j];
			}
		}
	}
	return NULL;
}

/* Zero memory in place of [base, base + size): prepared aside (header marked DELETED,
 * protection set), then moved over the mapping in one step, so no thread sharing the
 * handle ever reads a zero state word. 0, or -1 if the kernel refused (no memory). */
static int replace(struct shmkit__guard_slot *s, uintptr_t base, size_t size)
{
	int prot = atomic_load_explicit(&s->prot, memory_order_relaxed);
	int hdr = atomic_load_explicit(&s->hdr, memory_order_relaxed);
	int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, flags, -1, 0);
	int aside = p != MAP_FAILED;
	if (!aside) {
		/* Room for a second copy of the range is lacking: replace in place, and the
		 * header says DELETED a moment later. */
		p = mmap((void *)base, size, PROT_READ | PROT_WRITE, flags | MAP_FIXED, -1, 0);
		if (p == MAP_FAILED)
			return -1;
	}
	if (hdr && size >= sizeof(struct shmkit__hdr))
		atomic_store_explicit(&((struct shmkit__hdr *)p)->state, SHMKIT_STATE_DELETED,
				      memory_order_release);
	if (prot != (PROT_READ | PROT_WRITE))
		mprotect(p, size, prot);
	if (aside && mremap(p, size, size, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)base) == MAP_FAILED) {
		munmap(p, size);
		return -1;
	}
	return 0;
}

/* Turn the fault at addr into a poisoned handle. 1 if done (return and let the access
 * complete), 0 if it is not ours to handle. */
static int convert(uintptr_t addr)
{
	uintptr_t base;
	size_t size;
	struct shmkit__guard_slot *s = find(addr, &base, &size);
	if (!s)
		return 0;
	uint32_t p = INTACT;
	if (atomic_compare_exchange_strong_explicit(&s->poison, &p, REPLACING, memory_order_seq_cst,
						    memory_order_acquire)) {
		if (replace(s, base, size) < 0) {
			atomic_store_explicit(&s->poison, INTACT, memory_order_release);
			return 0; /* cannot recover: the default action follows */
		}
		atomic_store_explicit(&s->poison, REPLACED, memory_order_release);
		return 1;
	}
	/* Another thread sharing the handle faulted first and is replacing the mapping:
	 * once it is done, our access completes on the replacement. */
	while ((p = atomic_load_explicit(&s->poison, memory_order_acquire)) == REPLACING)
		sched_yield();
	return p == REPLACED;
}

/* What would have happened without the guard. */
static void pass_on(int sig, siginfo_t *si, void *uc)
{
	if (prev.sa_flags & SA_SIGINFO) {
		prev.sa_sigaction(sig, si, uc);
		return;
	}
	if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN) {
		prev.sa_handler(sig);
		return;
	}
	/* A sent SIGBUS that was ignored stays ignored. A fault cannot be ignored: the
	 * kernel kills for it whatever the disposition, so we let it. */
	if (prev.sa_handler == SIG_IGN && si->si_code <= 0)
		return;
	struct sigaction dfl;
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	sigaction(SIGBUS, &dfl, NULL);
	/* A fault repeats when we return and now kills, with its own address in the core
	 * dump; a sent signal must be sent again (it stays pending until we return). */
	if (si->si_code <= 0)
		raise(SIGBUS);
}

/* 1 if the faulting instruction is in SHMKIT__GUARDED_CODE. */
static int in_guarded_code(const void *uc)
{
	uintptr_t pc;
#if defined(__x86_64__)
	pc = (uintptr_t)((const ucontext_t *)uc)->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
	pc = (uintptr_t)((const ucontext_t *)uc)->uc_mcontext.pc;
#else
	(void)uc;
	return 0;
#endif
	uintptr_t start = (uintptr_t)__start_shmkit_guarded;
	return start != 0 && pc - start < (uintptr_t)__stop_shmkit_guarded - start;
}

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	int saved = errno;
	uint32_t w = atomic_load_explicit(&shmkit__guard_tls, memory_order_relaxed);
	int depth = (w & SHMKIT__GUARD_DEPTH) != 0;
	if (si->si_code == BUS_ADRERR && (depth || in_guarded_code(uc)) &&
	    convert((uintptr_t)si->si_addr)) {
		/* Guarded code learns of it from the replacement's header instead; a mark
		 * outside a marked call would be taken by the next one. */
		if (depth)
			atomic_store_explicit(&shmkit__guard_tls, w | SHMKIT__GUARD_FAULT,
					      memory_order_relaxed);
	} else {
		pass_on(sig, si, uc);
	}
	errno = saved;
}

int shmkit_guard_sigbus(void)
{
	int r = 0;
	struct sigaction sa, old, cur;
	pthread_mutex_lock(&install_lock);
	if (sigaction(SIGBUS, NULL, &cur) < 0) {
		r = -errno;
		goto out;
	}
	/* Done if ours is in place, or if this process installed it and a handler of the
	 * program's replaced it since: that one now decides (it may chain to ours, and
	 * chaining back to it would loop). Reset to the default or ignored since, or never
	 * installed by this process (a forked child inherits the parent's bookkeeping but
	 * decides its own disposition): install. */
	int ours = (cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_sigbus;
	int reset = !(cur.sa_flags & SA_SIGINFO) &&
		    (cur.sa_handler == SIG_DFL || cur.sa_handler == SIG_IGN);
	if (ours || (installed_pid == getpid() && !reset))
		goto out;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_sigbus;
	/* SA_ONSTACK: a program that set an alternate stack for its own fault handlers
	 * keeps it. No SA_NODEFER: a SIGBUS inside the handler means it is broken, and the
	 * kernel then kills, which is the honest outcome. */
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	/* prev must be complete before the handler can run: read it first, install, and
	 * take the kernel's answer if someone changed it in between. */
	prev = cur;
	if (sigaction(SIGBUS, &sa, &old) < 0) {
		r = -errno;
		goto out;
	}
	if (old.sa_handler != prev.sa_handler || old.sa_flags != prev.sa_flags)
		prev = old;
	installed_pid = getpid();
out:
	pthread_mutex_unlock(&install_lock);
	return r;
}

void shmkit_guard_enter(void)
{
	shmkit__guard_enter();
}

void shmkit_guard_leave(void)
{
	/* An unbalanced leave must not wrap the depth into the fault mark. The user asks
	 * the handle whether a truncation was met, not this. */
	if (atomic_load_explicit(&shmkit__guard_tls, memory_order_relaxed) & SHMKIT__GUARD_DEPTH)
		(void)shmkit__guard_leave();
}

int64_t shmkit__guard_result(const shmkit_seg *seg, int64_t r)
{
	if (shmkit__guard_leave() || (seg && shmkit__seg_poisoned(seg)))
		return -EFAULT;
	return r;
}
