#ifndef GORT_CONFIG_H
#define GORT_CONFIG_H

#define GORT_VERSION_MAJOR 0
#define GORT_VERSION_MINOR 1
#define GORT_VERSION_PATCH 0

#define GORT_API __attribute__((visibility("default")))

#ifdef __cplusplus
#define GORT_EXTERN_C_BEGIN extern "C" {
#define GORT_EXTERN_C_END   }
#else
#define GORT_EXTERN_C_BEGIN
#define GORT_EXTERN_C_END
#endif

#endif
