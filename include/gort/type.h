/* Type descriptors (docs/api.md "Type descriptors"): what the collector
 * needs to scan an object precisely, which words may hold pointers.
 *
 *     struct node { int key; struct node *left, *right; };
 *     GORT_TYPE(node, left, right);   // at file scope: const gort_type node_type
 *     gort_chan *c = gort_chan_make_typed(&node_type, 16);
 *
 * GORT_TYPE(T, fields...) describes struct T; each named field holds GC
 * pointers in every word (a pointer, or an array of pointers: every element
 * counts). GORT_TYPE(T) with no fields is a pointer-free type. Fields must be
 * pointer-aligned and a whole number of pointers long (a compile-time error
 * otherwise); at most 32 fields are named.
 *
 * The descriptor keeps the named fields as (offset, length) runs, and the
 * pointer bitmap of the first 64 words, computed at compile time: what the
 * collector copies into its per-object bitmaps. */
#ifndef GORT_TYPE_H
#define GORT_TYPE_H

#include "gort/config.h"

#include <stddef.h>
#include <stdint.h>

GORT_EXTERN_C_BEGIN

/* A run of pointer words: bytes [offset, offset + len) of the object. */
typedef struct gort_field {
    size_t offset, len;
} gort_field;

typedef struct gort_type {
    size_t size;              /* sizeof the type */
    size_t ptrdata;           /* bytes from the start that may hold pointers (0: none) */
    size_t nfields;           /* pointer runs in fields, by increasing offset as named */
    const gort_field *fields; /* nfields runs */
    const char *name;         /* the struct's tag */
    uint64_t ptrmask;         /* bit i set: word i holds pointers (words 0-63, what the
                                 collector keeps per object; GORT_TYPE computes it) */
    int has_ptrmask;          /* nonzero: ptrmask is filled in (a descriptor built by hand
                                 may leave both 0: the collector then derives it from
                                 fields); 2: also, the type has pointers and is at most
                                 512 bytes (gort_new's fastest path; GORT_TYPE sets it) */
} gort_type;

/* Whether word i (i * sizeof(void *) bytes in) of an object of type t may
 * hold a pointer. */
static inline int gort_type_is_pointer(const gort_type *t, size_t i) {
    size_t off = i * sizeof(void *);
    for (size_t k = 0; k < t->nfields; k++)
        if (off >= t->fields[k].offset && off - t->fields[k].offset < t->fields[k].len) return 1;
    return 0;
}

/* ---- GORT_TYPE's machinery ---- */

/* A compile-time check inside an expression: 0, or an error if !(cond). */
#define GORT__CHECK0(cond) (0 * sizeof(char[(cond) ? 1 : -1]))
#define GORT__OFF(T, f)    offsetof(struct T, f)
#define GORT__LEN(T, f)    sizeof(((struct T *)0)->f)
#define GORT__FIELD(T, f)                                                                          \
    {GORT__OFF(T, f) + GORT__CHECK0(GORT__OFF(T, f) % sizeof(void *) == 0 &&                       \
                                    GORT__LEN(T, f) % sizeof(void *) == 0),                        \
     GORT__LEN(T, f)},

/* The macros take T and the field names as one list (T, f1, ..., fn), so
 * that every variadic macro gets at least one argument: ISO C11 and C++
 * before 20 have no __VA_OPT__, and -pedantic rejects an empty `...`. */

/* The number of arguments, 1 to 33 (T and up to 32 fields). */
#define GORT__NARGS(...)                                                                           \
    GORT__NARGS_(__VA_ARGS__, 33, 32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17,  \
                 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)
#define GORT__NARGS_(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15, _16, _17,   \
                     _18, _19, _20, _21, _22, _23, _24, _25, _26, _27, _28, _29, _30, _31, _32,    \
                     _33, n, ...)                                                                  \
    n
#define GORT__HEAD(...)     GORT__HEAD_(__VA_ARGS__, ~)
#define GORT__HEAD_(t, ...) t
#define GORT__CAT(a, b)     GORT__CAT_(a, b)
#define GORT__CAT_(a, b)    a##b
/* m(T, f) for each field f of the list (T, f1, ..., f(n-1)), n its length. */
#define GORT__FIELDS(m, T, n, ...) GORT__CAT(GORT__TAIL_, n)(m, T, __VA_ARGS__)
#define GORT__TAIL_1(m, T, t)
#define GORT__TAIL_2(m, T, t, ...)  GORT__EACH_1(m, T, __VA_ARGS__)
#define GORT__TAIL_3(m, T, t, ...)  GORT__EACH_2(m, T, __VA_ARGS__)
#define GORT__TAIL_4(m, T, t, ...)  GORT__EACH_3(m, T, __VA_ARGS__)
#define GORT__TAIL_5(m, T, t, ...)  GORT__EACH_4(m, T, __VA_ARGS__)
#define GORT__TAIL_6(m, T, t, ...)  GORT__EACH_5(m, T, __VA_ARGS__)
#define GORT__TAIL_7(m, T, t, ...)  GORT__EACH_6(m, T, __VA_ARGS__)
#define GORT__TAIL_8(m, T, t, ...)  GORT__EACH_7(m, T, __VA_ARGS__)
#define GORT__TAIL_9(m, T, t, ...)  GORT__EACH_8(m, T, __VA_ARGS__)
#define GORT__TAIL_10(m, T, t, ...) GORT__EACH_9(m, T, __VA_ARGS__)
#define GORT__TAIL_11(m, T, t, ...) GORT__EACH_10(m, T, __VA_ARGS__)
#define GORT__TAIL_12(m, T, t, ...) GORT__EACH_11(m, T, __VA_ARGS__)
#define GORT__TAIL_13(m, T, t, ...) GORT__EACH_12(m, T, __VA_ARGS__)
#define GORT__TAIL_14(m, T, t, ...) GORT__EACH_13(m, T, __VA_ARGS__)
#define GORT__TAIL_15(m, T, t, ...) GORT__EACH_14(m, T, __VA_ARGS__)
#define GORT__TAIL_16(m, T, t, ...) GORT__EACH_15(m, T, __VA_ARGS__)
#define GORT__TAIL_17(m, T, t, ...) GORT__EACH_16(m, T, __VA_ARGS__)
#define GORT__TAIL_18(m, T, t, ...) GORT__EACH_17(m, T, __VA_ARGS__)
#define GORT__TAIL_19(m, T, t, ...) GORT__EACH_18(m, T, __VA_ARGS__)
#define GORT__TAIL_20(m, T, t, ...) GORT__EACH_19(m, T, __VA_ARGS__)
#define GORT__TAIL_21(m, T, t, ...) GORT__EACH_20(m, T, __VA_ARGS__)
#define GORT__TAIL_22(m, T, t, ...) GORT__EACH_21(m, T, __VA_ARGS__)
#define GORT__TAIL_23(m, T, t, ...) GORT__EACH_22(m, T, __VA_ARGS__)
#define GORT__TAIL_24(m, T, t, ...) GORT__EACH_23(m, T, __VA_ARGS__)
#define GORT__TAIL_25(m, T, t, ...) GORT__EACH_24(m, T, __VA_ARGS__)
#define GORT__TAIL_26(m, T, t, ...) GORT__EACH_25(m, T, __VA_ARGS__)
#define GORT__TAIL_27(m, T, t, ...) GORT__EACH_26(m, T, __VA_ARGS__)
#define GORT__TAIL_28(m, T, t, ...) GORT__EACH_27(m, T, __VA_ARGS__)
#define GORT__TAIL_29(m, T, t, ...) GORT__EACH_28(m, T, __VA_ARGS__)
#define GORT__TAIL_30(m, T, t, ...) GORT__EACH_29(m, T, __VA_ARGS__)
#define GORT__TAIL_31(m, T, t, ...) GORT__EACH_30(m, T, __VA_ARGS__)
#define GORT__TAIL_32(m, T, t, ...) GORT__EACH_31(m, T, __VA_ARGS__)
#define GORT__TAIL_33(m, T, t, ...) GORT__EACH_32(m, T, __VA_ARGS__)
#define GORT__EACH_1(m, T, f)       m(T, f)
#define GORT__EACH_2(m, T, f, ...)  m(T, f) GORT__EACH_1(m, T, __VA_ARGS__)
#define GORT__EACH_3(m, T, f, ...)  m(T, f) GORT__EACH_2(m, T, __VA_ARGS__)
#define GORT__EACH_4(m, T, f, ...)  m(T, f) GORT__EACH_3(m, T, __VA_ARGS__)
#define GORT__EACH_5(m, T, f, ...)  m(T, f) GORT__EACH_4(m, T, __VA_ARGS__)
#define GORT__EACH_6(m, T, f, ...)  m(T, f) GORT__EACH_5(m, T, __VA_ARGS__)
#define GORT__EACH_7(m, T, f, ...)  m(T, f) GORT__EACH_6(m, T, __VA_ARGS__)
#define GORT__EACH_8(m, T, f, ...)  m(T, f) GORT__EACH_7(m, T, __VA_ARGS__)
#define GORT__EACH_9(m, T, f, ...)  m(T, f) GORT__EACH_8(m, T, __VA_ARGS__)
#define GORT__EACH_10(m, T, f, ...) m(T, f) GORT__EACH_9(m, T, __VA_ARGS__)
#define GORT__EACH_11(m, T, f, ...) m(T, f) GORT__EACH_10(m, T, __VA_ARGS__)
#define GORT__EACH_12(m, T, f, ...) m(T, f) GORT__EACH_11(m, T, __VA_ARGS__)
#define GORT__EACH_13(m, T, f, ...) m(T, f) GORT__EACH_12(m, T, __VA_ARGS__)
#define GORT__EACH_14(m, T, f, ...) m(T, f) GORT__EACH_13(m, T, __VA_ARGS__)
#define GORT__EACH_15(m, T, f, ...) m(T, f) GORT__EACH_14(m, T, __VA_ARGS__)
#define GORT__EACH_16(m, T, f, ...) m(T, f) GORT__EACH_15(m, T, __VA_ARGS__)
#define GORT__EACH_17(m, T, f, ...) m(T, f) GORT__EACH_16(m, T, __VA_ARGS__)
#define GORT__EACH_18(m, T, f, ...) m(T, f) GORT__EACH_17(m, T, __VA_ARGS__)
#define GORT__EACH_19(m, T, f, ...) m(T, f) GORT__EACH_18(m, T, __VA_ARGS__)
#define GORT__EACH_20(m, T, f, ...) m(T, f) GORT__EACH_19(m, T, __VA_ARGS__)
#define GORT__EACH_21(m, T, f, ...) m(T, f) GORT__EACH_20(m, T, __VA_ARGS__)
#define GORT__EACH_22(m, T, f, ...) m(T, f) GORT__EACH_21(m, T, __VA_ARGS__)
#define GORT__EACH_23(m, T, f, ...) m(T, f) GORT__EACH_22(m, T, __VA_ARGS__)
#define GORT__EACH_24(m, T, f, ...) m(T, f) GORT__EACH_23(m, T, __VA_ARGS__)
#define GORT__EACH_25(m, T, f, ...) m(T, f) GORT__EACH_24(m, T, __VA_ARGS__)
#define GORT__EACH_26(m, T, f, ...) m(T, f) GORT__EACH_25(m, T, __VA_ARGS__)
#define GORT__EACH_27(m, T, f, ...) m(T, f) GORT__EACH_26(m, T, __VA_ARGS__)
#define GORT__EACH_28(m, T, f, ...) m(T, f) GORT__EACH_27(m, T, __VA_ARGS__)
#define GORT__EACH_29(m, T, f, ...) m(T, f) GORT__EACH_28(m, T, __VA_ARGS__)
#define GORT__EACH_30(m, T, f, ...) m(T, f) GORT__EACH_29(m, T, __VA_ARGS__)
#define GORT__EACH_31(m, T, f, ...) m(T, f) GORT__EACH_30(m, T, __VA_ARGS__)
#define GORT__EACH_32(m, T, f, ...) m(T, f) GORT__EACH_31(m, T, __VA_ARGS__)

/* The bits of field f's words among words 0-63 (shift counts masked so that
 * no branch, even one not taken, shifts by 64 or more). */
#define GORT__W0(T, f) (GORT__OFF(T, f) / sizeof(void *))
#define GORT__NW(T, f) (GORT__LEN(T, f) / sizeof(void *))
#define GORT__MASKBITS(T, f)                                                                       \
    (GORT__W0(T, f) >= 64                                                                          \
         ? 0                                                                                       \
         : (GORT__NW(T, f) >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << (GORT__NW(T, f) & 63)) - 1))    \
               << (GORT__W0(T, f) & 63)) |
#define GORT__PTRMASK(T, n, ...) (GORT__FIELDS(GORT__MASKBITS, T, n, __VA_ARGS__)(uint64_t) 0)

/* ptrdata, the largest field end: the size of a union of char arrays, one
 * per field, each as long as its field's end (0 without fields). */
#define GORT__ENDMEMBER(T, f) char f[GORT__OFF(T, f) + GORT__LEN(T, f)];
#define GORT__PTRDATA(T, n, ...)                                                                   \
    ((n) == 1 ? 0 : sizeof(union {                                                                 \
        char gort__none;                                                                           \
        GORT__FIELDS(GORT__ENDMEMBER, T, n, __VA_ARGS__)                                           \
    }))
#define GORT__TYPE(T, n, ...)                                                                      \
    static const gort_field gort__fields_##T[] = {                                                 \
        GORT__FIELDS(GORT__FIELD, T, n, __VA_ARGS__){0, 0}};                                       \
    const gort_type T##_type = {sizeof(struct T),                                                  \
                                GORT__PTRDATA(T, n, __VA_ARGS__),                                  \
                                (n)-1,                                                             \
                                gort__fields_##T,                                                  \
                                #T,                                                                \
                                GORT__PTRMASK(T, n, __VA_ARGS__),                                  \
                                1 + ((n) > 1 && sizeof(struct T) <= 512)}

/* At file scope: defines const gort_type T_type for struct T, whose named
 * fields hold pointers: GORT_TYPE(T, fields...), or GORT_TYPE(T) for a
 * pointer-free type (C only: C++ forbids the type in sizeof). */
#define GORT_TYPE(...)                                                                             \
    GORT__TYPE_(GORT__HEAD(__VA_ARGS__), GORT__NARGS(__VA_ARGS__), __VA_ARGS__)
#define GORT__TYPE_(T, n, ...) GORT__TYPE(T, n, __VA_ARGS__) /* expands T before ## */

GORT_EXTERN_C_END

#endif
