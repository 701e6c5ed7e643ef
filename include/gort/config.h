#ifndef GORT_CONFIG_H
#define GORT_CONFIG_H

/* The version (CMake's project VERSION matches it: CMakeLists.txt checks). */
#define GORT_VERSION_MAJOR  0
#define GORT_VERSION_MINOR  2
#define GORT_VERSION_PATCH  0
#define GORT_VERSION_STRING "0.2.0"

#define GORT_API __attribute__((visibility("default")))

#ifdef __cplusplus
#define GORT_EXTERN_C_BEGIN extern "C" {
#define GORT_EXTERN_C_END   }
#else
#define GORT_EXTERN_C_BEGIN
#define GORT_EXTERN_C_END
#endif

GORT_EXTERN_C_BEGIN
/* The library's version, "MAJOR.MINOR.PATCH" (GORT_VERSION_STRING of the
 * headers it was built with: compare to catch a header/library mismatch). */
GORT_API const char *gort_version(void);
GORT_EXTERN_C_END

#endif
