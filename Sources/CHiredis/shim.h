#include <hiredis/hiredis.h>
#include <signal.h>
#include <string.h>

/* Small helpers for FreshetRedis (the only module that imports CHiredis). */

/* hiredis 0.14 writes with write(2), so a peer that went away raises SIGPIPE,
 * whose default action kills the process. Ignore SIGPIPE, but only when its
 * disposition is still the default, so an embedding application's own handler
 * is left alone. Returns 0 on success, -1 when sigaction fails. */
static inline int freshet_ignore_sigpipe_if_default(void) {
    struct sigaction old;
    if (sigaction(SIGPIPE, NULL, &old) != 0) return -1;
    if (!(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_DFL) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = SIG_IGN;
        sigemptyset(&sa.sa_mask);
        return sigaction(SIGPIPE, &sa, NULL);
    }
    return 0;
}

/* The context's error string (a fixed char array, awkward to read from Swift). */
static inline const char *freshet_redis_errstr(const redisContext *c) {
    return c->errstr;
}

/* Bytes in the context's output buffer not yet written (an sds string, whose
 * length sits before its pointer: awkward to read from Swift). */
static inline size_t freshet_redis_output_pending(const redisContext *c) {
    return c->obuf ? sdslen(c->obuf) : 0;
}
