/* A cache prefetch hint, which Swift has no spelling for: a loop over keys
 * known in advance (the flush's changed users) asks for the next keys' state
 * while it works on the current one, so their cache misses overlap instead
 * of coming one after another. A hint only: no effect on results. */
#ifndef FRESHET_PREFETCH_H
#define FRESHET_PREFETCH_H

static inline void freshet_prefetch(const void *address) {
    __builtin_prefetch(address, 0, 3);
}

#endif
