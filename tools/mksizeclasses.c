/* mksizeclasses: generates src/mem/sizeclasses.h, the small-object size classes.
 *
 * The classes are Go 1.19's, derived from the same waste criteria rather than
 * copied, so that the reasoning stays in the tree next to its result and a
 * change of criteria is a change here, regenerated and reviewed as a diff.
 * tests/CMakeLists.txt runs this program and compares its output byte for byte
 * with the checked-in header (ctest sizeclasses_regen).
 *
 * The algorithm, as Go's runtime/mksizeclasses.go:
 *  1. Walk candidate sizes from 8 to 32 KiB in steps of the current alignment.
 *     The alignment grows at each power of two (16 from 32 B, size/8 from
 *     128 B, 256 from 2 KiB), so that rounding a request up to the next
 *     candidate wastes at most 12.5% of it (beyond the tiny sizes, where the
 *     8/16-byte alignment dominates).
 *  2. Give each candidate the fewest 8 KiB pages whose tail, the bytes left
 *     after cutting the span into whole objects, is at most 1/8 of the span.
 *  3. A candidate that has the same page count and the same number of objects
 *     per span as the class before it replaces that class: the larger size
 *     costs nothing more per span and saves a class.
 *  4. Grow every class to the largest multiple of 128 that still fits the
 *     same number of objects in its span, turning tail waste into object
 *     space. 128 keeps size_to_class128 exact: every class above 1 KiB then
 *     ends on a 128-byte boundary.
 * This gives 68 classes counting the unused class 0; the count is checked
 * because span classes and the uint8 lookup tables are built around it.
 *
 * Division by the object size (offset in span -> object index) is done by
 * multiplication: magic = 2^32 / size rounded up, index = (off * magic) >> 32.
 * Go 1.19 proves it exact for every class; we check it exhaustively here, for
 * every offset up to and including the span size, before writing anything.
 *
 * The header is clang-format stable under the repository's .clang-format: the
 * generated tables sit between clang-format off/on markers (clang-format's
 * column layout for long initializer lists is a heuristic that changes between
 * its versions), and everything else is emitted exactly as clang-format writes
 * it.
 *
 * Usage: mksizeclasses [output-file]   (stdout when no file is named) */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The constants the runtime shares with the tables. */
#define PAGE_SHIFT   13
#define PAGE_SIZE    (1 << PAGE_SHIFT)
#define MAX_SMALL    32768
#define SMALL_DIV    8
#define SMALL_MAX    1024
#define LARGE_DIV    128
#define WANT_CLASSES 68

/* Room for the candidates before merging: one per 8 bytes is an upper bound. */
#define MAX_CANDIDATES (MAX_SMALL / 8 + 1)

struct sizeclass {
    int size;   /* bytes per object; 0 for class 0 */
    int npages; /* pages per span */
};

static struct sizeclass classes[MAX_CANDIDATES];
static int nclasses;

static void die(const char *msg) {
    fprintf(stderr, "mksizeclasses: %s\n", msg);
    exit(1);
}

static int is_pow2(int x) {
    return x > 0 && (x & (x - 1)) == 0;
}

/* Pages for a span of size-byte objects: the fewest whose tail is <= 1/8. */
static int span_pages(int size) {
    int bytes = PAGE_SIZE;
    while (bytes % size > bytes / 8) bytes += PAGE_SIZE;
    return bytes / PAGE_SIZE;
}

static void make_classes(void) {
    nclasses = 1; /* class 0 stands for "not a small object" */
    int align = 8;
    for (int size = 8; size <= MAX_SMALL; size += align) {
        if (is_pow2(size)) {
            if (size >= 2048)
                align = 256;
            else if (size >= 128)
                align = size / 8;
            else if (size >= 32)
                align = 16; /* Go's heap bitmap wants 16-byte objects from 32 B up */
        }
        int npages = span_pages(size);
        int span = npages * PAGE_SIZE;
        struct sizeclass *prev = &classes[nclasses - 1];
        if (nclasses > 1 && prev->npages == npages && span / prev->size == span / size) {
            prev->size = size;
            continue;
        }
        classes[nclasses].size = size;
        classes[nclasses].npages = npages;
        nclasses++;
    }

    for (int c = 1; c < nclasses; c++) {
        int span = classes[c].npages * PAGE_SIZE;
        int grown = span / (span / classes[c].size) / LARGE_DIV * LARGE_DIV;
        if (grown > classes[c].size) classes[c].size = grown;
    }

    if (nclasses != WANT_CLASSES) die("the number of size classes has changed");
}

static uint32_t divmagic(int size) {
    return size == 0 ? 0 : UINT32_MAX / (uint32_t)size + 1;
}

/* Exhaustive: cheap (a few million multiplications) and leaves no doubt. */
static void check_divmagic(void) {
    for (int c = 1; c < nclasses; c++) {
        uint32_t size = (uint32_t)classes[c].size, magic = divmagic(classes[c].size);
        uint32_t span = (uint32_t)classes[c].npages * PAGE_SIZE;
        for (uint32_t off = 0; off <= span; off++)
            if ((uint32_t)(((uint64_t)off * magic) >> 32) != off / size)
                die("32-bit division magic is inexact for a size class");
    }
}

/* The smallest class whose objects hold n bytes. */
static int class_for(int n) {
    for (int c = 0; c < nclasses; c++)
        if (classes[c].size >= n) return c;
    die("no class for a small size");
    return 0;
}

static int ctz(int x) {
    int b = 0;
    while (!(x & 1)) x >>= 1, b++;
    return b;
}

/* The table of Go's sizeclasses.go header, as a block comment. */
static void print_comment(FILE *f) {
    fprintf(f, "/* %-5s  %-9s  %-10s  %-7s  %-10s  %-9s  %-9s\n", "class", "bytes/obj",
            "bytes/span", "objects", "tail waste", "max waste", "min align");
    int prev = 0;
    int min_align[PAGE_SHIFT + 1] = {0}; /* smallest object size with each alignment */
    for (int c = 1; c < nclasses; c++) {
        int size = classes[c].size, span = classes[c].npages * PAGE_SIZE;
        int objs = span / size, tail = span - objs * size;
        /* The worst request is one byte over the previous class, in every slot. */
        double max_waste = (double)((size - prev - 1) * objs + tail) / span;
        int bits = ctz(size);
        if (bits > PAGE_SHIFT) bits = PAGE_SHIFT; /* spans are only page aligned */
        for (int b = 0; b <= PAGE_SHIFT; b++) {
            if (b > bits)
                min_align[b] = 0;
            else if (min_align[b] == 0)
                min_align[b] = size;
        }
        prev = size;
        fprintf(f, " * %5d  %9d  %10d  %7d  %10d  %8.2f%%  %9d\n", c, size, span, objs, tail,
                100 * max_waste, 1 << bits);
    }
    fprintf(f, " *\n");
    fprintf(f, " * %-9s  %-4s  %-12s\n", "alignment", "bits", "min obj size");
    for (int b = 0; b <= PAGE_SHIFT && min_align[b] != 0; b++) {
        if (b < PAGE_SHIFT && min_align[b] == min_align[b + 1]) continue;
        fprintf(f, " * %9d  %4d  %12d\n", 1 << b, b, min_align[b]);
    }
    fprintf(f, " */\n");
}

/* One table, `per_row` values a row, each row led by the index of its first.
 * The tables are unused in most files that include the header: the attribute
 * keeps every warning level quiet about that. */
static void print_table(FILE *f, const char *decl, const uint32_t *v, int n, int per_row,
                        int width) {
    const char *attr = "__attribute__((unused)) = {";
    int len = (int)(strlen("static const ") + strlen(decl) + 1 + strlen(attr));
    fprintf(f, "static const %s%s%s\n", decl, len > 100 ? "\n    " : " ", attr);
    for (int i = 0; i < n; i++) {
        if (i % per_row == 0) fprintf(f, "    /* %3d */", i);
        fprintf(f, " %*" PRIu32 ",", width, v[i]);
        if (i % per_row == per_row - 1 || i == n - 1) fprintf(f, "\n");
    }
    fprintf(f, "};\n");
}

static void print_header(FILE *f) {
    uint32_t v[MAX_CANDIDATES];
    int max_objs = 0;
    for (int c = 1; c < nclasses; c++) {
        int objs = classes[c].npages * PAGE_SIZE / classes[c].size;
        if (objs > max_objs) max_objs = objs;
    }

    fprintf(f, "/* Code generated by tools/mksizeclasses.c; DO NOT EDIT. */\n"
               "\n"
               "/* Small-object size classes (Go 1.19's runtime/sizeclasses.go).\n"
               " *\n"
               " * A request of n bytes, 0 < n <= MAX_SMALL_SIZE, is served from size class\n"
               " * size_to_class(n), whose objects are class_to_size[] bytes, carved from spans\n"
               " * of class_to_allocnpages[] pages holding class_to_nelems[] objects each.\n"
               " * Tail waste (span bytes not covered by objects) is at most 1/8 of the span.\n"
               " * Class 0 is not a size: it stands for large objects, which get their own\n"
               " * span.\n"
               " *\n"
               " * class_to_divmagic[c] turns a byte offset in a span into an object index\n"
               " * without dividing: (uint32_t)(((uint64_t)off * magic) >> 32) == off / size\n"
               " * for every off <= the span's size (checked by the generator and by\n"
               " * tests/test_sizeclasses.c).\n"
               " *\n"
               " * \"max waste\" below is the worst case: a request one byte larger than the\n"
               " * previous class in every slot, plus the tail. */\n"
               "\n");
    print_comment(f);

    int npages_max = 0;
    for (int c = 1; c < nclasses; c++)
        if (classes[c].npages > npages_max) npages_max = classes[c].npages;
    if (classes[nclasses - 1].size > UINT16_MAX || npages_max > UINT8_MAX ||
        max_objs > UINT16_MAX || nclasses - 1 > UINT8_MAX)
        die("a table value does not fit its type");

    fprintf(f, "\n"
               "#ifndef GORT_MEM_SIZECLASSES_H\n"
               "#define GORT_MEM_SIZECLASSES_H\n"
               "\n"
               "#include <stddef.h>\n"
               "#include <stdint.h>\n"
               "\n");
    /* AlignConsecutiveMacros: values start one column after the longest name. */
    fprintf(f, "#define NUM_SIZE_CLASSES      %d\n", nclasses);
    fprintf(f, "#define SMALL_SIZE_DIV        %d\n", SMALL_DIV);
    fprintf(f, "#define SMALL_SIZE_MAX        %d\n", SMALL_MAX);
    fprintf(f, "#define LARGE_SIZE_DIV        %d\n", LARGE_DIV);
    fprintf(f, "#define MAX_SMALL_SIZE        %d\n", MAX_SMALL);
    fprintf(f, "#define SIZE_CLASS_PAGE_SHIFT %d\n", PAGE_SHIFT);
    fprintf(f, "#define MAX_OBJS_PER_SPAN     %d /* the most objects in any class's span */\n",
            max_objs);
    fprintf(f, "\n// clang-format off\n");

    for (int c = 0; c < nclasses; c++) v[c] = (uint32_t)classes[c].size;
    print_table(f, "uint16_t class_to_size[NUM_SIZE_CLASSES]", v, nclasses, 8, 5);
    for (int c = 0; c < nclasses; c++) v[c] = (uint32_t)classes[c].npages;
    print_table(f, "uint8_t class_to_allocnpages[NUM_SIZE_CLASSES]", v, nclasses, 8, 5);
    for (int c = 0; c < nclasses; c++)
        v[c] = c == 0 ? 0 : (uint32_t)(classes[c].npages * PAGE_SIZE / classes[c].size);
    print_table(f, "uint16_t class_to_nelems[NUM_SIZE_CLASSES]", v, nclasses, 8, 5);
    for (int c = 0; c < nclasses; c++) v[c] = divmagic(classes[c].size);
    print_table(f, "uint32_t class_to_divmagic[NUM_SIZE_CLASSES]", v, nclasses, 6, 9);

    fprintf(f, "\n/* size_to_class8[(n + 7) / 8] for n <= SMALL_SIZE_MAX. */\n");
    int n8 = SMALL_MAX / SMALL_DIV + 1;
    for (int i = 0; i < n8; i++) v[i] = (uint32_t)class_for(i * SMALL_DIV);
    print_table(f, "uint8_t size_to_class8[SMALL_SIZE_MAX / SMALL_SIZE_DIV + 1]", v, n8, 16, 2);

    /* C's malloc must return memory aligned for max_align_t (16 bytes on
     * x86_64) for every request over 8 bytes; compilers assume it. Go's 24-byte
     * class (the only class above 16 that is not a multiple of 16) would hand
     * out 8-aligned objects, so the C malloc family skips it. */
    fprintf(f, "\n/* malloc_size_to_class8: size_to_class8 for the C malloc family, whose objects\n"
               " * over 8 bytes must be 16-aligned (max_align_t): a class whose size is not a\n"
               " * multiple of 16 is replaced by the next class that is. */\n");
    for (int i = 0; i < n8; i++) {
        int c = class_for(i * SMALL_DIV);
        while (i * SMALL_DIV > 8 && classes[c].size % 16) c++;
        v[i] = (uint32_t)c;
    }
    print_table(f, "uint8_t malloc_size_to_class8[SMALL_SIZE_MAX / SMALL_SIZE_DIV + 1]", v, n8, 16,
                2);

    fprintf(f, "\n/* size_to_class128[(n - SMALL_SIZE_MAX + 127) / 128] for SMALL_SIZE_MAX < n <= "
               "MAX_SMALL_SIZE. */\n");
    int n128 = (MAX_SMALL - SMALL_MAX) / LARGE_DIV + 1;
    for (int i = 0; i < n128; i++) v[i] = (uint32_t)class_for(SMALL_MAX + i * LARGE_DIV);
    print_table(f,
                "uint8_t size_to_class128[(MAX_SMALL_SIZE - SMALL_SIZE_MAX) / LARGE_SIZE_DIV + 1]",
                v, n128, 16, 2);
    fprintf(f, "// clang-format on\n");

    fprintf(f, "\n"
               "/* The class for a request of n bytes, 0 < n <= MAX_SMALL_SIZE: the smallest\n"
               " * class whose objects hold n bytes. */\n"
               "static inline unsigned size_to_class(size_t n) {\n"
               "    if (n <= SMALL_SIZE_MAX) return size_to_class8[(n + SMALL_SIZE_DIV - 1) / "
               "SMALL_SIZE_DIV];\n"
               "    return size_to_class128[(n - SMALL_SIZE_MAX + LARGE_SIZE_DIV - 1) / "
               "LARGE_SIZE_DIV];\n"
               "}\n"
               "\n"
               "#endif\n");
}

int main(int argc, char **argv) {
    if (argc > 2) {
        fprintf(stderr, "usage: mksizeclasses [output-file]\n");
        return 2;
    }
    make_classes();
    check_divmagic();

    FILE *f = stdout;
    if (argc == 2 && !(f = fopen(argv[1], "w"))) {
        perror(argv[1]);
        return 1;
    }
    print_header(f);
    if (ferror(f) | (f == stdout ? fflush(f) : fclose(f))) {
        perror(argc == 2 ? argv[1] : "stdout");
        return 1;
    }
    return 0;
}
