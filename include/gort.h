/* gort: Go's runtime as a C library.
 *
 * #include <gort.h> and link -lgort (pkg-config gort). See README.md and
 * docs/ for the guide; every public name is gort_ or GORT_. */
#ifndef GORT_H
#define GORT_H

#include "gort/config.h"
#include "gort/chan.h"
#include "gort/gc.h"
#include "gort/malloc.h"
#include "gort/memstats.h"
#include "gort/net.h"
#include "gort/prof.h"
#include "gort/sched.h"
#include "gort/sync.h"
#include "gort/type.h"

#endif
