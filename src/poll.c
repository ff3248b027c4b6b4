/* shmkit — PROVISIONAL poller and role functions so that topic.c links; helper "chan" replaces this file with the code moved out of chan.c (roles go to live.c). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>
#include "wait.h"
static void addr(uint64_t token, struct sockaddr_un *a, socklen_t *alen)
{
	memset(a, 0, sizeof *a);
	a->sun_family = AF_UNIX;
	int n = snprintf(a->sun_path + 1, sizeof a->sun_path - 1, "shmkit-poll-%016llx", (unsigned long long)token);
	*alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}
void shmkit__poller_init(struct shmkit__poller *p) { memset(p, 0, sizeof *p); p->epfd = p->dsock = p->pidfd = p->timerfd = -1; }
int shmkit__poller_open(struct shmkit__poller *p, uint64_t salt)
{
	int ep = epoll_create1(EPOLL_CLOEXEC), s = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	uint64_t tok = 0;
	for (int i = 0; i < 8; i++) {
		if (getrandom(&tok, 8, GRND_NONBLOCK) != 8) tok = salt ^ (uint64_t)shmkit__now_ns();
		tok |= 1;
		struct sockaddr_un a; socklen_t al; addr(tok, &a, &al);
		if (bind(s, (struct sockaddr *)&a, al) == 0) break;
	}
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = s};
	epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
	p->epfd = ep; p->dsock = s; p->token = tok;
	return ep;
}
void shmkit__poller_close(struct shmkit__poller *p)
{
	if (p->epfd >= 0) close(p->epfd);
	if (p->dsock >= 0) close(p->dsock);
	if (p->timerfd >= 0) close(p->timerfd);
	if (p->pidfd >= 0) close(p->pidfd);
	shmkit__poller_init(p);
}
void shmkit__poller_signal(int *sock, uint64_t token)
{
	if (*sock < 0) *sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct sockaddr_un a; socklen_t al; addr(token, &a, &al);
	(void)sendto(*sock, "", 1, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&a, al);
}
void shmkit__poller_keep_ready(struct shmkit__poller *p)
{
	if (p->epfd < 0 || p->ready_sent) return;
	struct sockaddr_un a; socklen_t al; addr(p->token, &a, &al);
	if (sendto(p->dsock, "", 1, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&a, al) == 1) p->ready_sent = 1;
}
int shmkit__poller_drain(struct shmkit__poller *p)
{
	struct epoll_event ev[4]; int live = 0;
	int n = epoll_wait(p->epfd, ev, 4, 0);
	for (int i = 0; i < n; i++) {
		if (ev[i].data.fd == p->dsock) { char b[16]; while (recv(p->dsock, b, sizeof b, MSG_DONTWAIT) >= 0); p->ready_sent = 0; }
		else { uint64_t x; if (read(ev[i].data.fd, &x, 8) < 0) x = 0; live = 1; }
	}
	return live;
}
int shmkit__poller_use_timer(struct shmkit__poller *p, int64_t period_ns)
{
	int t = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	struct itimerspec its = {{0, period_ns}, {0, period_ns}};
	timerfd_settime(t, 0, &its, NULL);
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = t};
	epoll_ctl(p->epfd, EPOLL_CTL_ADD, t, &ev);
	p->timerfd = t; return 0;
}
uint64_t shmkit__pidns_self(void) { struct stat st; return stat("/proc/self/ns/pid", &st) == 0 ? (uint64_t)st.st_ino : 0; }
void shmkit__role_release(_Atomic uint64_t *owner, uint64_t me) { uint64_t cur = me; atomic_compare_exchange_strong(owner, &cur, 0); }
void shmkit__who_set(struct shmkit__who *w, uint64_t me, uint64_t ns)
{ atomic_thread_fence(memory_order_release); atomic_store(&w->pid, (int32_t)getpid()); atomic_store(&w->ns, ns); atomic_store(&w->tok, me); }
int32_t shmkit__who_pid(const _Atomic uint64_t *owner, const struct shmkit__who *w)
{ uint64_t cur = atomic_load(owner); if (cur == 0 || atomic_load(&w->tok) != cur) return 0; return atomic_load(&w->pid); }
