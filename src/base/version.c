/* gort_version (include/gort/config.h). */
#include "gort/config.h"

const char *gort_version(void) {
    return GORT_VERSION_STRING;
}
