/* shmkit — the poller: a descriptor that an event loop (poll, epoll, libuv, asyncio)
 * waits on beside its sockets, made readable by a peer's signal, by a peer's death,
 * or by the waiter itself while a condition lasts. See wait.h.
 *
 * It is an epoll descriptor watching an abstract-namespace datagram socket bound by
 * the waiter (its address is a random token, which the waiter publishes in shared
 * memory), and, when a peer is watched, a pidfd of that peer or a periodic timer.
 * Signals are one sendto() of one byte; a peer pays it only after the waiter
 * announced that it polls (each kind has its own word for that). The pidfd turns
 * readable when the peer dies, so a dead peer is reported without its cooperation.
 * It is opened from the pid the peer recorded beside its role word and only then
 * trusted, once the token says the peer still lives (so the pid was not reused in
 * between). A peer in another pid namespace, or no pidfd_open, gets a timer instead,
 * which makes the waiter come back and check the token. Abstract sockets leave
 * nothing in any file system and vanish with their owner; waiter and signaller must
 * share a network namespace.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "wait.h"

#define PID_LIMIT 4194304 /* PID_MAX_LIMIT on 64-bit Linux */
/* Tries to bind a fresh random token before giving up (EADDRINUSE). */
#define BIND_TRIES 8

static void token_addr(uint64_t token, struct sockaddr_un *a, socklen_t *alen)
{
	memset(a, 0, sizeof *a);
	a->sun_family = AF_UNIX;
	int n = snprintf(a->sun_path + 1, sizeof a->sun_path - 1, "shmkit-poll-%016llx",
			 (unsigned long long)token);
	*alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

void shmkit__poller_init(struct shmkit__poller *p)
{
	p->epfd = p->dsock = p->pidfd = p->timerfd = -1;
	p->token = p->watched = 0;
	p->ready_sent = 0;
}

int shmkit__poller_open(struct shmkit__poller *p, uint64_t salt)
{
	if (p->epfd >= 0)
		return p->epfd;
	int r, ep = -1, s = -1;
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		return -errno;
	s = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s < 0) {
		r = -errno;
		goto fail;
	}
	uint64_t token = 0;
	for (int i = 0;; i++) {
		if (getrandom(&token, sizeof token, GRND_NONBLOCK) != sizeof token)
			token = (uint64_t)shmkit__now_ns() * UINT64_C(0x9e3779b97f4a7c15) ^ salt;
		token |= 1; /* never 0, which means "nobody polls" */
		struct sockaddr_un a;
		socklen_t alen;
		token_addr(token, &a, &alen);
		if (bind(s, (struct sockaddr *)&a, alen) == 0)
			break;
		r = -errno;
		if (r != -EADDRINUSE || i == BIND_TRIES)
			goto fail;
	}
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = s};
	if (epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev) < 0) {
		r = -errno;
		goto fail;
	}
	p->epfd = ep;
	p->dsock = s;
	p->token = token;
	p->watched = 0;
	p->ready_sent = 0;
	return ep;
fail:
	if (s >= 0)
		close(s);
	close(ep);
	return r;
}

static void drop_pidfd(struct shmkit__poller *p)
{
	if (p->pidfd >= 0) {
		epoll_ctl(p->epfd, EPOLL_CTL_DEL, p->pidfd, NULL);
		close(p->pidfd);
		p->pidfd = -1;
	}
}

void shmkit__poller_close(struct shmkit__poller *p)
{
	if (p->epfd >= 0) {
		drop_pidfd(p);
		close(p->epfd);
	}
	if (p->dsock >= 0)
		close(p->dsock);
	if (p->timerfd >= 0)
		close(p->timerfd);
	shmkit__poller_init(p);
}

void shmkit__poller_signal(int *sock, uint64_t token)
{
	if (token == 0)
		return;
	if (*sock < 0) {
		*sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (*sock < 0)
			return;
	}
	struct sockaddr_un a;
	socklen_t alen;
	token_addr(token, &a, &alen);
	/* Failures are harmless: EAGAIN means wake-ups are already queued; a missing
	 * socket means the waiter is gone. */
	(void)sendto(*sock, "", 1, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&a, alen);
}

void shmkit__poller_keep_ready(struct shmkit__poller *p)
{
	if (p->epfd < 0 || p->ready_sent)
		return;
	struct sockaddr_un a;
	socklen_t alen;
	token_addr(p->token, &a, &alen);
	if (sendto(p->dsock, "", 1, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&a, alen) == 1)
		p->ready_sent = 1;
}

int shmkit__poller_drain(struct shmkit__poller *p)
{
	if (p->epfd < 0)
		return 0;
	struct epoll_event ev[4];
	int fired = 0;
	int n = epoll_wait(p->epfd, ev, 4, 0);
	for (int i = 0; i < n; i++) {
		int fd = ev[i].data.fd;
		if (fd == p->dsock) {
			char b[16];
			while (recv(p->dsock, b, sizeof b, MSG_DONTWAIT) >= 0)
				;
			p->ready_sent = 0;
		} else if (fd == p->timerfd) {
			uint64_t ticks;
			if (read(p->timerfd, &ticks, sizeof ticks) < 0)
				ticks = 0;
			fired = 1;
		} else {
			fired = 1; /* the pidfd: the peer exited (it stays readable) */
		}
	}
	return fired;
}

int shmkit__poller_use_timer(struct shmkit__poller *p, int64_t period_ns)
{
	if (p->timerfd >= 0)
		return 0;
	int t = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (t < 0)
		return -errno;
	struct timespec ts = {period_ns / SHMKIT_SEC, period_ns % SHMKIT_SEC};
	struct itimerspec its = {ts, ts};
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = t};
	if (timerfd_settime(t, 0, &its, NULL) < 0 ||
	    epoll_ctl(p->epfd, EPOLL_CTL_ADD, t, &ev) < 0) {
		int r = -errno;
		close(t);
		return r;
	}
	p->timerfd = t;
	return 0;
}

/* A pidfd of the holder @owner of the role word @owner_word, or -1 when none can be
 * trusted: it lives in another pid namespace (its pid names another process here, or
 * none), has not recorded itself yet, or pidfd_open is missing. The caller then
 * confirms with the token that the holder still lives: had the pid been reused before
 * the pidfd pinned it, the holder would have been dead already. */
static int holder_pidfd(const _Atomic uint64_t *owner_word, const struct shmkit__who *w,
			uint64_t owner, uint64_t pidns)
{
	/* Acquire pairs with the release store of tok in shmkit__who_set(): pid and ns
	 * are what the holder of this token recorded, or newer. */
	if (atomic_load_explicit(&w->tok, memory_order_acquire) != owner)
		return -1;
	int32_t pid = atomic_load_explicit(&w->pid, memory_order_relaxed);
	uint64_t ns = atomic_load_explicit(&w->ns, memory_order_relaxed);
	if (ns == 0 || ns != pidns || pid <= 0 || pid > PID_LIMIT)
		return -1;
	int fd = -1;
#ifdef SYS_pidfd_open
	fd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
#endif
	if (fd < 0)
		return -1;
	/* Newer values come only from a successor, which claims the role before it
	 * writes them: if the role still names our token after the loads above (the fence
	 * keeps them before this one; pairs with the fence in shmkit__who_set()), they
	 * were our holder's. */
	atomic_thread_fence(memory_order_acquire);
	if (atomic_load_explicit(owner_word, memory_order_relaxed) != owner) {
		close(fd);
		return -1;
	}
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	return fd;
}

int shmkit__poller_watch(struct shmkit__poller *p, const _Atomic uint64_t *owner_word,
			 const struct shmkit__who *w, uint64_t pidns)
{
	/* Acquire pairs with the claiming CAS: a new holder is the one to watch. */
	uint64_t owner = atomic_load_explicit(owner_word, memory_order_acquire);
	if (p->epfd < 0 || owner == p->watched)
		return 0;
	drop_pidfd(p);
	p->watched = owner;
	if (owner == 0)
		return 0;
	int fd = holder_pidfd(owner_word, w, owner, pidns);
	/* After the pidfd is open (see holder_pidfd()). */
	int alive = shmkit__live_check(owner);
	if (alive == 0) {
		if (fd >= 0)
			close(fd);
		/* Known dead: the caller remembers it (a wake-up it queues for that may be
		 * drained before anyone looks). */
		return 1;
	}
	if (fd >= 0 && alive > 0) {
		struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
		if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev) == 0) {
			p->pidfd = fd;
			return 0;
		}
	}
	if (fd >= 0)
		close(fd);
	/* No pidfd to trust (or the check could not be made): come back and check. A
	 * timer that cannot be made leaves the caller's own checks (at every call). */
	(void)shmkit__poller_use_timer(p, SHMKIT__POLL_TIMER_NS);
	return 0;
}

/* ---- many pollers on one condition ---- */

int shmkit__poll_join(struct shmkit__poll_slot *tab, unsigned n, _Atomic uint32_t *count,
		      uint64_t me, uint64_t token)
{
	int err = -EUSERS;
	/* First a free slot; only when there is none, one whose registrant died (each
	 * check costs a few system calls). */
	for (int pass = 0; pass < 2; pass++) {
		for (unsigned i = 0; i < n; i++) {
			struct shmkit__poll_slot *s = &tab[i];
			/* Acquire pairs with the release CAS in shmkit__poll_leave(). */
			uint64_t cur = atomic_load_explicit(&s->owner, memory_order_acquire);
			if (cur != 0) {
				if (pass == 0)
					continue;
				int r = shmkit__live_check(cur);
				if (r != 0) {
					if (r < 0)
						err = r; /* never robbed on a guess */
					continue;
				}
			}
			/* acq_rel: one joiner wins a slot. */
			if (!atomic_compare_exchange_strong_explicit(
				&s->owner, &cur, me, memory_order_acq_rel, memory_order_relaxed))
				continue;
			if (cur == 0)
				atomic_fetch_add_explicit(count, 1, memory_order_relaxed);
			/* Disarmed before the token changes: a changer that still reads the
			 * dead registrant's armed flag only signals a spare wake-up. Relaxed;
			 * the token's release store publishes both. */
			atomic_store_explicit(&s->armed, 0, memory_order_relaxed);
			/* Release pairs with the changer's acquire of armed (our later seq_cst
			 * store of it comes after this one). */
			atomic_store_explicit(&s->token, token, memory_order_release);
			return (int)i;
		}
	}
	return err;
}

void shmkit__poll_leave(struct shmkit__poll_slot *tab, unsigned i, _Atomic uint32_t *count,
			uint64_t me)
{
	struct shmkit__poll_slot *s = &tab[i];
	uint64_t cur = me;
	atomic_store_explicit(&s->armed, 0, memory_order_relaxed);
	/* Release: our stores to the slot come before a successor's claim. CAS: a
	 * registrant declared dead and replaced never frees its successor's slot. */
	if (atomic_compare_exchange_strong_explicit(&s->owner, &cur, 0, memory_order_release,
						    memory_order_relaxed)) {
		/* A count a peer wrote as 0 stays 0 rather than wrapping to 2^32 - 1,
		 * which would only make every change scan the table. */
		uint32_t c = atomic_load_explicit(count, memory_order_relaxed);
		while (c != 0 && !atomic_compare_exchange_weak_explicit(
				     count, &c, c - 1, memory_order_relaxed, memory_order_relaxed))
			;
	}
}

void shmkit__poll_arm(struct shmkit__poll_slot *s)
{
	/* The handshake, poller side: announce, then the caller rechecks. Pairs with the
	 * fence in shmkit__poll_ring(): either the changer sees armed, or the recheck
	 * sees its change. The fence, because the recheck may be an acquire load, which
	 * C11 lets pass a seq_cst store. */
	atomic_store_explicit(&s->armed, 1, memory_order_seq_cst);
	atomic_thread_fence(memory_order_seq_cst);
}

void shmkit__poll_ring(struct shmkit__poll_slot *tab, unsigned n, _Atomic uint32_t *count,
		       int *sock)
{
	/* The handshake, changer side: our change (stored before) is visible before we
	 * look at count and armed. */
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(count, memory_order_relaxed) == 0)
		return;
	for (unsigned i = 0; i < n; i++) {
		struct shmkit__poll_slot *s = &tab[i];
		uint32_t a = 1;
		/* Acquire pairs with the registrant's release of its token (and its seq_cst
		 * arming): the token we send to is the armed registrant's. One changer
		 * signals each arming. */
		if (atomic_load_explicit(&s->armed, memory_order_relaxed) != 1 ||
		    !atomic_compare_exchange_strong_explicit(&s->armed, &a, 0, memory_order_acquire,
							     memory_order_relaxed))
			continue;
		shmkit__poller_signal(sock, atomic_load_explicit(&s->token, memory_order_relaxed));
	}
}
